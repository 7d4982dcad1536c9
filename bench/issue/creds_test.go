package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// -creds records exactly the credentials the server answered with: the
// pairs of every 200 with a DbPassword, none of the refusals, the answers
// without a password or the requests cut off, and the password as the XML
// carried it (escapes undone).
func TestCredsFileHoldsEveryAcknowledgedCredential(t *testing.T) {
	var (
		mu    sync.Mutex
		n     int
		given []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		user := r.PostForm.Get("DbUser")
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		switch i % 4 {
		case 1: // refused
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>`)
		case 2: // cut off before an answer, as a killed server's requests in flight are
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
		case 3: // 200 without a password
			fmt.Fprint(w, `<GetClusterCredentialsResponse><GetClusterCredentialsResult><DbUser>IAM:x</DbUser></GetClusterCredentialsResult></GetClusterCredentialsResponse>`)
		default:
			login, pw := "IAM:"+user, fmt.Sprintf("pw<&>%d", i)
			mu.Lock()
			given = append(given, login+"\t"+pw)
			mu.Unlock()
			fmt.Fprintf(w, `<GetClusterCredentialsResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><GetClusterCredentialsResult><DbUser>%s</DbUser><DbPassword>%s</DbPassword><Expiration>2026-12-07T16:00:00Z</Expiration></GetClusterCredentialsResult></GetClusterCredentialsResponse>`,
				html.EscapeString(login), html.EscapeString(pw))
		}
	}))
	defer srv.Close()

	path := filepath.Join(t.TempDir(), "creds")
	var err error
	if acks, err = openAckLog(path); err != nil {
		t.Fatal(err)
	}
	defer func() { acks = nil }()
	client := &http.Client{Timeout: 10 * time.Second}
	r := run(client, target{name: "fake", urls: []string{srv.URL}}, 8, 0, 400)
	acks.close()

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	slices.Sort(got)
	slices.Sort(given)
	if !slices.Equal(got, given) {
		t.Fatalf("-creds file holds %d lines, the server acknowledged %d:\nfile %q\nacknowledged %q", len(got), len(given), got[:min(3, len(got))], given[:min(3, len(given))])
	}
	if r.n != len(given) || r.errs != 300 || len(given) != 100 {
		t.Fatalf("run counted %d issues and %d errors; the server acknowledged %d of 400", r.n, r.errs, len(given))
	}
	if len(r.errKinds) != 3 {
		t.Fatalf("want the three kinds of failure counted, got %q", r.errKinds)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file of passwords: %v, %v", fi.Mode(), err)
	}
}

// -login logs in with every recorded pair through a real PostgreSQL and
// reports each failure with its SQLSTATE.
func TestLoginAllReportsEachFailureWithSQLSTATE(t *testing.T) {
	srv := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := "creds_" + db
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize()) })
	path := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(path, []byte(role+"\tany\n"+role+"\tany\nnobody_"+db+"\tany\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=%d dbname=%s sslmode=disable", srv.SocketDir(), srv.Port(), db)
	var out bytes.Buffer
	code := loginAll(path, dsn, 2, &out)
	if code != 1 || !strings.Contains(out.String(), "acknowledged 3, logged in 2, failed 1\n") ||
		!strings.Contains(out.String(), "login failed: nobody_"+db+": SQLSTATE 28000: ") {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
	if err := os.WriteFile(path, []byte(role+"\tany\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := loginAll(path, dsn, 2, &out); code != 0 || out.String() != "acknowledged 1, logged in 1, failed 0\n" {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
}

// A target whose process dies during a run (kill -9 mid-burst) has no CPU
// per issue: its last sample is missing, not zero. Before, the run
// subtracted the first sample from nothing and printed "cpu/issue
// -1.420 ms".
func TestCPUPerIssueOfAProcessKilledMidRunIsNotMeasured(t *testing.T) {
	// A process with some CPU time on its clock, then idle.
	busy := exec.Command("sh", "-c", `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 60`)
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer busy.Process.Kill()
	for cpuTicks(busy.Process.Pid) < 2 {
		time.Sleep(10 * time.Millisecond) // until it has used 20 ms of CPU
	}
	var (
		mu sync.Mutex
		n  int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		if n == 10 {
			busy.Process.Kill()
			busy.Wait() // reaped: its /proc entry is gone
		}
		mu.Unlock()
		fmt.Fprint(w, `<GetClusterCredentialsResponse><GetClusterCredentialsResult><DbUser>IAM:u</DbUser><DbPassword>p</DbPassword></GetClusterCredentialsResult></GetClusterCredentialsResponse>`)
	}))
	defer srv.Close()
	r := run(&http.Client{}, target{name: "dies", urls: []string{srv.URL}, pids: []int{busy.Process.Pid}}, 2, 0, 20)
	if r.n != 20 || r.cpuPerIssue != 0 {
		t.Fatalf("%d issues, CPU per issue %v; want 20 and none measured (0)", r.n, r.cpuPerIssue)
	}
}

// The kinds of error a killed server's clients see are counted once each,
// whatever port the client's connection had.
func TestCountedKindsIgnoreTheClientPort(t *testing.T) {
	got := countedKinds(map[string]int{
		`status 0 Post "http://127.0.0.1:24601/": read tcp 127.0.0.1:32774->127.0.0.1:24601: read: connection reset by peer`: 1,
		`status 0 Post "http://127.0.0.1:24601/": read tcp 127.0.0.1:32782->127.0.0.1:24601: read: connection reset by peer`: 2,
		`status 0 Post "http://127.0.0.1:24601/": EOF`: 4,
	})
	want := []string{`4× status 0 Post "http://127.0.0.1:24601/": EOF`,
		`3× status 0 Post "http://127.0.0.1:24601/": read tcp 127.0.0.1:24601: read: connection reset by peer`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
}
