// Command scale measures the issue and login cost of shiftkey at several
// numbers of live credentials (run.sh drives it; see README.md).
//
//	scale fill -db FILE -key KEYFILE -n 1000000 -per 10 -hot 10000
//
// fills a SQLite store (one `shiftkey serve` created and then stopped)
// through the store itself (sqlite.Open, LoginSalt, CreateCredential, the
// group writer), n live credentials spread over n/per login names
// IAM:f0…, of which -hot go to the one name IAM:hot.
//
//	scale run -target NAME=API_URL,GW_ADDR,PID,DBFILE,NAMES,HOT … -rounds 3
//
// then, in interleaved rounds whose order rotates, against each running
// serve: SigV4-signed GetClusterCredentials at each -c (issues/s, p50/p99,
// server CPU per issue), real SCRAM logins with pgx through the gateway,
// each the first after the credential's issue (logins/s, p50/p99, server
// CPU per login), logins of the name with many live credentials, and the
// server's RSS. What a round issued is deleted after it (by expiry, through
// the file), so every round starts at the filled count.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/bench/internal/query"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: scale fill|run …")
	}
	switch os.Args[1] {
	case "fill":
		fill(os.Args[2:])
	case "run":
		runAll(os.Args[2:])
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

// fillExpiry is how long filled credentials live; API-issued ones (3600 s)
// expire within issuedExpiry of now, which is how a round finds and deletes
// them (a store filled up to five hours ago can be measured again).
const (
	fillExpiry   = 6 * time.Hour
	issuedExpiry = time.Hour + time.Minute
)

func fill(args []string) {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	dbPath := fs.String("db", "", "SQLite store")
	keyPath := fs.String("key", "", "store key file (serve's store.secret_key_file)")
	n := fs.Int("n", 1000, "live credentials in all")
	per := fs.Int("per", 10, "live credentials per login name")
	hot := fs.Int("hot", 0, "of n, how many belong to the one login IAM:hot")
	iterations := fs.Int("iterations", 1, "SCRAM iterations of the salts created (serve's scram_iterations)")
	workers := fs.Int("workers", 512, "concurrent CreateCredential calls (the group writer batches them)")
	cluster := fs.String("cluster", "bench", "cluster")
	fs.Parse(args)
	ctx := context.Background()
	key, err := secretbox.LoadKeyFile(*keyPath)
	if err != nil {
		log.Fatal(err)
	}
	st, err := sqlite.Open(ctx, *dbPath, sqlite.WithKey(key, *keyPath))
	if err != nil {
		log.Fatal(err)
	}
	spread := *n - *hot
	names := (spread + *per - 1) / *per
	login := func(i int) string {
		if i >= spread {
			return "IAM:hot"
		}
		return "IAM:f" + strconv.Itoa(i%names)
	}
	start := time.Now()
	// Salts first, concurrently, so that the group writer batches them.
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i <= names; i = int(next.Add(1) - 1) {
				if i == names {
					i = spread // the hot name
				}
				salt(ctx, st, *cluster, login(i), *iterations)
			}
		})
	}
	wg.Wait()
	next.Store(0)
	arn := "arn:aws:iam::" + shiftkey.DefaultAccountID + ":user/bench"
	for range *workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				now := time.Now()
				created := now.Add(-time.Duration(mrand.Int64N(int64(50 * time.Minute)))).Truncate(time.Millisecond)
				ln := login(i)
				c := &shiftkey.Credential{ID: hex.EncodeToString(random(16)), Cluster: *cluster, LoginName: ln,
					DBUser: strings.TrimPrefix(ln, "IAM:"), AutoCreate: false, StoredKey: random(32), ServerKey: random(32),
					DigestSHA256: random(32), DigestMD5: random(16), PrincipalARN: arn, RequestID: shiftkey.NewUUID(),
					CreatedAt: created, ExpiresAt: now.Add(fillExpiry).Truncate(time.Millisecond)}
				if err := st.CreateCredential(ctx, c); err != nil {
					log.Fatal(err)
				}
				if d := done.Add(1); d%200000 == 0 {
					log.Printf("%d credentials, %.0f/s", d, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	if err := st.Close(); err != nil { // the last close checkpoints the WAL into the file
		log.Fatal(err)
	}
	size := diskBytes(*dbPath)
	log.Printf("filled %s: %d live credentials over %d login names (+%d for IAM:hot) in %v; %d bytes on disk, %.0f per credential",
		*dbPath, *n, names, *hot, time.Since(start).Round(time.Millisecond), size, float64(size)/float64(*n))
}

func salt(ctx context.Context, st *sqlite.DB, cluster, login string, iterations int) {
	if _, err := st.LoginSalt(ctx, cluster, login, "", shiftkey.LoginSalt{Salt: random(16), Iterations: iterations}); err != nil {
		log.Fatal(err)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// target is one running serve and the store it was filled with.
type target struct {
	name, api, gw, db string
	pid, names, hot   int
	active            []int // the names issued for: a sample of the spread, their salts cached by the warm-up
}

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }
func (t *targets) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	f := strings.Split(rest, ",")
	if !ok || len(f) != 6 {
		return fmt.Errorf("want NAME=API_URL,GW_ADDR,PID,DBFILE,NAMES,HOT: %q", s)
	}
	tg := target{name: name, api: strings.TrimRight(f[0], "/"), gw: f[1], db: f[3]}
	var err error
	for _, p := range []struct {
		v *int
		s string
	}{{&tg.pid, f[2]}, {&tg.names, f[4]}, {&tg.hot, f[5]}} {
		if *p.v, err = strconv.Atoi(p.s); err != nil {
			return err
		}
	}
	*t = append(*t, tg)
	return nil
}

var (
	cluster = "bench"
	caller  = query.Caller{
		Client: &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}, Timeout: 60 * time.Second},
		KeyID:  query.EnvOr("BENCH_KEY_ID", "AKIABENCHBENCH000001"), Secret: query.EnvOr("BENCH_SECRET", "bench-secret-0123456789"),
		Service: "redshift", Region: "us-east-1",
	}
)

// sample is what one phase of one round measured.
type sample struct {
	rate     float64 // per second
	p50, p99 time.Duration
	cpu      time.Duration // server CPU per operation
	written  float64       // bytes the server wrote per operation (write(2) and pwrite(2): WAL, checkpoints, sockets)
}

func runAll(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var ts targets
	fs.Var(&ts, "target", "NAME=API_URL,GW_ADDR,PID,DBFILE,NAMES,HOT (repeatable)")
	rounds := fs.Int("rounds", 3, "interleaved rounds")
	concs := fs.String("c", "8,64", "issue concurrencies")
	issues := fs.Int("issues", 4000, "issues per issue run (a count, not a time: every store gets the same)")
	logins := fs.Int("logins", 400, "logins per round, in batches of -batch names each issued a credential first")
	batch := fs.Int("batch", 100, "names per login batch")
	loginC := fs.Int("login-c", 4, "concurrent logins")
	hotLogins := fs.Int("hot-logins", 20, "logins of IAM:hot per round, each after an issue for it")
	active := fs.Int("active", 10000, "names issued for, a random sample of the spread (their salts cached after the warm-up, as in steady state)")
	fs.Parse(args)
	var cs []int
	for _, f := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(f)
		if err != nil {
			log.Fatal(err)
		}
		cs = append(cs, c)
	}
	results := map[string][]sample{} // target/phase → rounds
	rss := map[string]int64{}
	for i := range ts { // warm up: connections, caches, the backend roles of the login names
		t := &ts[i]
		t.active = mrand.Perm(t.names)[:min(t.names, *active)]
		parallel(*t, len(t.active), 64, func(i int) error { // each active name's salt read once, as in steady state
			_, _, err := issue(*t, "f"+strconv.Itoa(t.active[i]))
			return err
		})
		loginRun(*t, *batch, *batch, *loginC)
		cleanup(*t)
	}
	for r := range *rounds {
		for i := range ts {
			t := ts[(i+r)%len(ts)]
			for _, c := range cs {
				s := issueRun(t, c, *issues)
				k := t.name + "/issue c=" + strconv.Itoa(c)
				results[k] = append(results[k], s)
				report(r, k, s, "issues")
			}
			cleanup(t)
			s := loginRun(t, *logins, *batch, *loginC)
			results[t.name+"/login"] = append(results[t.name+"/login"], s)
			report(r, t.name+"/login", s, "logins")
			if t.hot > 0 {
				s := hotRun(t, *hotLogins)
				results[t.name+"/hot"] = append(results[t.name+"/hot"], s)
				report(r, t.name+"/login IAM:hot", s, "logins")
			}
			cleanup(t)
			rss[t.name] = max(rss[t.name], rssOf(t.pid))
		}
	}
	fmt.Printf("\nmedians of %d rounds (CPU: the server's, per operation)\n\n", *rounds)
	fmt.Print("| store | live credentials |")
	for _, c := range cs {
		fmt.Printf(" issue c=%d /s | p50 | p99 | CPU | written |", c)
	}
	fmt.Print(" login /s | p50 | p99 | CPU | hot login CPU | hot p50 | RssAnon | on disk now | disk/cred now |\n|---|---|")
	for range cs {
		fmt.Print("---|---|---|---|---|")
	}
	fmt.Println("---|---|---|---|---|---|---|---|---|")
	med := func(k string) sample { return medianSample(results[k]) }
	for _, t := range ts {
		n := liveCount(t)
		fmt.Printf("| %s | %d |", t.name, n)
		for _, c := range cs {
			s := med(t.name + "/issue c=" + strconv.Itoa(c))
			fmt.Printf(" %.0f | %s | %s | %s | %.1f KB |", s.rate, msText(s.p50), msText(s.p99), msText(s.cpu), s.written/1e3)
		}
		s := med(t.name + "/login")
		disk := diskBytes(t.db)
		hot := "-"
		hotP50 := "-"
		if t.hot > 0 {
			h := med(t.name + "/hot")
			hot, hotP50 = msText(h.cpu), msText(h.p50)
		}
		fmt.Printf(" %.0f | %s | %s | %s | %s | %s | %.1f MB | %.1f MB | %.0f B |\n", s.rate, msText(s.p50), msText(s.p99), msText(s.cpu),
			hot, hotP50, float64(rss[t.name])/1e6, float64(disk)/1e6, float64(disk)/float64(max(n, 1)))
	}
	if len(ts) > 1 {
		fmt.Println()
		base := ts[0]
		for _, t := range ts[1:] {
			fmt.Printf("%s / %s:", t.name, base.name)
			for _, c := range cs {
				k := "/issue c=" + strconv.Itoa(c)
				a, b := med(t.name+k), med(base.name+k)
				fmt.Printf("  issue c=%d CPU %.2f× p50 %.2f× rate %.2f× written %.2f×;", c, ratio(a.cpu, b.cpu), ratio(a.p50, b.p50), a.rate/b.rate, a.written/b.written)
			}
			a, b := med(t.name+"/login"), med(base.name+"/login")
			fmt.Printf("  login CPU %.2f× p50 %.2f× rate %.2f×;  RSS %+.1f MB (%.1f B per added credential)\n", ratio(a.cpu, b.cpu), ratio(a.p50, b.p50), a.rate/b.rate,
				float64(rss[t.name]-rss[base.name])/1e6, float64(rss[t.name]-rss[base.name])/float64(max(liveCount(t)-liveCount(base), 1)))
		}
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func report(r int, k string, s sample, what string) {
	fmt.Printf("round %d  %-22s %7.0f %s/s  p50 %s  p99 %s  cpu/op %s  written/op %.1f KB\n", r+1, k, s.rate, what, msText(s.p50), msText(s.p99), msText(s.cpu), s.written/1e3)
}

func msText(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

func medianSample(ss []sample) sample {
	m := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	return sample{rate: m(func(s sample) float64 { return s.rate }),
		p50:     time.Duration(m(func(s sample) float64 { return float64(s.p50) })),
		p99:     time.Duration(m(func(s sample) float64 { return float64(s.p99) })),
		cpu:     time.Duration(m(func(s sample) float64 { return float64(s.cpu) })),
		written: m(func(s sample) float64 { return s.written })}
}

// cpuNs is the CPU time of every thread of pid, from schedstat (ns).
func cpuNs(pid int) int64 {
	paths, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	var total int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			total += v
		}
	}
	return total
}

// rssOf is the resident anonymous memory of pid (RssAnon: the heap, SQLite's
// page caches; not the pages of the database file a mapping may hold).
func rssOf(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func diskBytes(db string) int64 {
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(db + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func openFile(db string) *sql.DB {
	h, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		log.Fatal(err)
	}
	return h
}

// cleanup deletes what the API issued (it expires within issuedExpiry;
// the filled credentials later), so that every phase starts at the filled
// count. serve's login cache may hold them for seconds more; no later
// login uses them.
func cleanup(t target) {
	h := openFile(t.db)
	defer h.Close()
	if _, err := h.Exec(`DELETE FROM credentials WHERE expires_at < ?`, time.Now().Add(issuedExpiry).UnixMilli()); err != nil {
		log.Fatal(err)
	}
}

func liveCount(t target) int {
	h := openFile(t.db)
	defer h.Close()
	var n int
	if err := h.QueryRow(`SELECT count(*) FROM credentials WHERE expires_at > ?`, time.Now().UnixMilli()).Scan(&n); err != nil {
		log.Fatal(err)
	}
	return n
}

// issue calls GetClusterCredentials for DbUser user (no AutoCreate:
// run.sh creates the roles that log in) and
// returns the login name and password.
func issue(t target, user string) (string, string, error) {
	body := url.Values{"Action": {"GetClusterCredentials"}, "Version": {"2012-12-01"}, "ClusterIdentifier": {cluster},
		"DbUser": {user}, "DurationSeconds": {"3600"}}.Encode()
	st, b, err := caller.Call(context.Background(), t.api, body)
	if err != nil {
		return "", "", err
	}
	pw, login := between(string(b), "<DbPassword>", "</DbPassword>"), between(string(b), "<DbUser>", "</DbUser>")
	if st != http.StatusOK || pw == "" {
		return "", "", fmt.Errorf("status %d: %.300s", st, b)
	}
	return login, pw, nil
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

// parallel runs n calls of f from c workers and returns the latencies and
// the server's CPU over them.
func parallel(t target, n, c int, f func(i int) error) ([]time.Duration, time.Duration, time.Duration) {
	lats, wall, cpu, _ := parallelIO(t, n, c, f)
	return lats, wall, cpu
}

// writtenBytes is wchar of /proc/PID/io: bytes passed to write calls.
func writtenBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func parallelIO(t target, n, c int, f func(i int) error) ([]time.Duration, time.Duration, time.Duration, int64) {
	w0 := writtenBytes(t.pid)
	var next atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	cpu0, start := cpuNs(t.pid), time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var mine []time.Duration
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				t0 := time.Now()
				if err := f(i); err != nil {
					log.Fatalf("%s: %v", t.name, err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lats, time.Since(start), time.Duration(cpuNs(t.pid) - cpu0), writtenBytes(t.pid) - w0
}

func summarize(lats []time.Duration, wall, cpu time.Duration) sample {
	slices.Sort(lats)
	return sample{rate: float64(len(lats)) / wall.Seconds(), p50: lats[len(lats)/2], p99: lats[min(len(lats)-1, len(lats)*99/100)],
		cpu: cpu / time.Duration(len(lats))}
}

// issueRun issues n credentials from c workers, each for a random active
// name (as real use adds to names that already have some, anywhere in the
// store's index of logins).
func issueRun(t target, c, n int) sample {
	lats, wall, cpu, written := parallelIO(t, n, c, func(int) error {
		_, _, err := issue(t, "f"+strconv.Itoa(t.active[mrand.IntN(len(t.active))]))
		return err
	})
	s := summarize(lats, wall, cpu)
	s.written = float64(written) / float64(n)
	return s
}

// loginRun logs in n times, in batches: each batch issues one credential
// for each of the names f0…f(batch-1) (not measured), then logs each in once
// with pgx through the gateway (measured), so every login is the first
// after an issue for its name, as when a client asks for a credential and
// connects. The same names at every size: their backend roles exist and
// their pooled backend sessions wait alike, so only the store differs.
func loginRun(t target, n, batch, c int) sample {
	var all []time.Duration
	var wall, cpu time.Duration
	for done := 0; done < n; done += batch {
		k := min(batch, n-done, t.names)
		names := mrand.Perm(k)
		type cred struct{ login, pw string }
		creds := make([]cred, k)
		parallel(t, k, 8, func(i int) error {
			var err error
			creds[i].login, creds[i].pw, err = issue(t, "f"+strconv.Itoa(names[i]))
			return err
		})
		lats, w, cp := parallel(t, k, c, func(i int) error { return login(t, creds[i].login, creds[i].pw) })
		all, wall, cpu = append(all, lats...), wall+w, cpu+cp
	}
	return summarize(all, wall, cpu)
}

// hotRun logs IAM:hot in n times, each after an issue for it.
func hotRun(t target, n int) sample {
	var all []time.Duration
	var wall, cpu time.Duration
	for range n {
		l, pw, err := issue(t, "hot")
		if err != nil {
			log.Fatal(err)
		}
		lats, w, cp := parallel(t, 1, 1, func(int) error { return login(t, l, pw) })
		all, wall, cpu = append(all, lats...), wall+w, cpu+cp
	}
	return summarize(all, wall, cpu)
}

// login connects through the gateway (SCRAM, the backend hand-off), runs
// select 1 and disconnects.
func login(t target, user, pw string) error {
	host, port, _ := strings.Cut(t.gw, ":")
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=postgres sslmode=disable", host, port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = user, pw
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("login %s: %w", user, err)
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "select 1").Scan(&one)
}
