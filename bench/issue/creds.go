package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ackLog is the -creds file: every credential a server acknowledged, so
// that a kill -9 check can log in with each after the restart.
type ackLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func openAckLog(path string) (*ackLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600) // passwords
	if err != nil {
		return nil, err
	}
	return &ackLog{f: f, w: bufio.NewWriter(f)}, nil
}

// add records one acknowledged pair; a nil log records nothing.
func (a *ackLog) add(user, password string) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := fmt.Fprintf(a.w, "%s\t%s\n", user, password)
	return err
}

// flush writes what is buffered to the file (at the end of every run, so
// that an interrupted client has lost at most its current run).
func (a *ackLog) flush() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.w.Flush()
}

func (a *ackLog) close() {
	if a == nil {
		return
	}
	if err := a.flush(); err != nil {
		fmt.Fprintln(os.Stderr, "-creds:", err)
	}
	a.f.Close()
}

// parseCredentials is the DbUser and DbPassword of a GetClusterCredentials
// answer (shiftkey's or moto's), or empty strings.
func parseCredentials(body string) (user, password string) {
	var r struct {
		User     string `xml:"GetClusterCredentialsResult>DbUser"`
		Password string `xml:"GetClusterCredentialsResult>DbPassword"`
	}
	if xml.Unmarshal([]byte(body), &r) != nil {
		return "", ""
	}
	return r.User, r.Password
}

// localAddr is the client's side of a connection in an error ("read tcp
// 127.0.0.1:41234->127.0.0.1:29541: …"), a new port for every connection.
var localAddr = regexp.MustCompile(`tcp [0-9a-f.:\[\]]+:[0-9]+->`)

// countedKinds lists each distinct error with its count, most frequent
// first, at most five and a line for the rest. Errors that differ only by
// the client's port are one kind.
func countedKinds(raw map[string]int) []string {
	kinds := map[string]int{}
	for k, n := range raw {
		kinds[localAddr.ReplaceAllString(k, "tcp ")] += n
	}
	keys := slices.SortedFunc(maps.Keys(kinds), func(a, b string) int {
		return cmp.Or(cmp.Compare(kinds[b], kinds[a]), strings.Compare(a, b))
	})
	var out []string
	for i, k := range keys {
		if i == 5 {
			out = append(out, fmt.Sprintf("… and %d other kinds of error", len(keys)-5))
			break
		}
		out = append(out, fmt.Sprintf("%d× %s", kinds[k], k))
	}
	return out
}

// loginAll logs in through dsn (a gateway, without user and password) with
// every pair in the file path from c workers, runs "select 1" on each
// session, and writes how many logged in and every failure (with its
// SQLSTATE when the server sent one) to w. It returns the exit status: 0
// when every credential logged in.
func loginAll(path, dsn string, c int, w io.Writer) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(w, err)
		return 2
	}
	base, err := pgconn.ParseConfig(dsn)
	if err != nil {
		fmt.Fprintln(w, "-dsn:", err)
		return 2
	}
	type pair struct{ user, password string }
	var pairs []pair
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		u, p, ok := strings.Cut(line, "\t")
		if !ok {
			fmt.Fprintf(w, "%s:%d: not DbUser<TAB>DbPassword\n", path, i+1)
			return 2
		}
		pairs = append(pairs, pair{u, p})
	}
	var (
		mu       sync.Mutex
		ok       int
		failures []string
		next     = make(chan pair)
		wg       sync.WaitGroup
	)
	for range c {
		wg.Go(func() {
			for p := range next {
				cfg := base.Copy()
				cfg.User, cfg.Password = p.user, p.password
				err := loginOnce(cfg)
				mu.Lock()
				if err == nil {
					ok++
				} else {
					failures = append(failures, p.user+": "+describe(err))
				}
				mu.Unlock()
			}
		})
	}
	for _, p := range pairs {
		next <- p
	}
	close(next)
	wg.Wait()
	slices.Sort(failures)
	for _, f := range failures {
		fmt.Fprintln(w, "login failed:", f)
	}
	fmt.Fprintf(w, "acknowledged %d, logged in %d, failed %d\n", len(pairs), ok, len(failures))
	if len(failures) > 0 || len(pairs) == 0 {
		return 1
	}
	return 0
}

func loginOnce(cfg *pgconn.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Exec(ctx, "select 1").Close()
}

// describe is an error with the server's SQLSTATE in front when it sent one.
func describe(err error) string {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return "SQLSTATE " + pe.Code + ": " + pe.Message
	}
	return err.Error()
}
