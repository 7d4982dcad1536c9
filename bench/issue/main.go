// Command issue fires SigV4-signed GetClusterCredentials at one or more
// running servers (shiftkey, moto) at several concurrencies, in interleaved
// rounds whose order rotates, and prints issues/s, latency percentiles and
// each server's CPU per issue (utime+stime of /proc/PID/stat), then the
// medians over rounds.
//
//	go run ./bench/issue -target shiftkey=http://127.0.0.1:29439,PID \
//	    -target moto=http://127.0.0.1:5055,PID -c 1,8,64 -rounds 3 -d 5s
//
// Every request names a DbUser from a pool of -users names, so after the
// first pass every login has its salt; -users 0 gives every request a new
// DbUser (a salt created per issue).
//
// For a kill -9 check, -creds FILE appends every credential a server
// acknowledged (warm-up included) as "DbUser<TAB>DbPassword" lines, and
// -login FILE -dsn DSN later logs in through a gateway with each of them
// (see README.md, "kill -9 in the middle of a burst").
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiftkey/shiftkey/bench/internal/query"
)

// target is one server, or several sharing the load (replicas): worker w
// calls urls[w % len(urls)], and the CPU of every pid is counted.
type target struct {
	name string
	urls []string
	pids []int // none: CPU not measured
}

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }
func (t *targets) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want NAME=URL[,PID][|URL[,PID]…]: %q", s)
	}
	tg := target{name: name}
	for _, one := range strings.Split(rest, "|") {
		u, pidText, _ := strings.Cut(one, ",")
		tg.urls = append(tg.urls, strings.TrimRight(u, "/"))
		if pidText != "" {
			pid, err := strconv.Atoi(pidText)
			if err != nil {
				return err
			}
			tg.pids = append(tg.pids, pid)
		}
	}
	*t = append(*t, tg)
	return nil
}

type result struct {
	n, errs     int
	secs        float64
	p50, p99    time.Duration
	max         time.Duration
	cpuPerIssue time.Duration // 0 when not measured
	firstErr    string
	errKinds    []string // "N× error", each distinct error once, most frequent first
	pg          pgDelta  // zero without -pg
}

func (r result) rate() float64 { return float64(r.n) / r.secs }

var (
	keyID    = flag.String("key", query.EnvOr("BENCH_KEY_ID", "AKIABENCHBENCH000001"), "access key id")
	secret   = flag.String("secret", query.EnvOr("BENCH_SECRET", "bench-secret-0123456789"), "secret access key")
	region   = flag.String("region", "us-east-1", "region to sign for")
	cluster  = flag.String("cluster", "bench", "ClusterIdentifier")
	users    = flag.Int("users", 1000, "distinct DbUser names cycled through (0: a new one per request)")
	duration = flag.Duration("d", 5*time.Second, "length of one run")
	rounds   = flag.Int("rounds", 3, "rounds; the median of each is reported")
	concs    = flag.String("c", "1,8,64", "concurrencies")
	setup    = flag.Bool("create-cluster", false, "first CreateCluster -cluster on every target (moto has none)")
	pgDSN    = flag.String("pg", "", "the store's PostgreSQL (DSN): also report its transactions, WAL flushes and CPU per issue")
	pgPID    = flag.Int("pgpid", 0, "with -pg: the postmaster's pid, whose processes' CPU is counted")
	credsOut = flag.String("creds", "", "append every acknowledged DbUser and DbPassword to this file, one tab-separated pair a line")
	loginIn  = flag.String("login", "", "log in with every pair in this file (written by -creds) through -dsn, report, and exit")
	loginDSN = flag.String("dsn", "", "with -login: the gateway's connection string, without user and password")
)

// acks is where -creds writes; nil without it.
var acks *ackLog

func main() {
	var ts targets
	flag.Var(&ts, "target", "NAME=URL[,PID] (repeatable); NAME=URL[,PID]|URL[,PID] spreads the workers over replicas")
	flag.Parse()
	if *loginIn != "" {
		os.Exit(loginAll(*loginIn, *loginDSN, 8, os.Stdout))
	}
	if *credsOut != "" {
		var err error
		if acks, err = openAckLog(*credsOut); err != nil {
			fmt.Fprintln(os.Stderr, "-creds:", err)
			os.Exit(1)
		}
		defer acks.close()
	}
	if len(ts) == 0 {
		fmt.Fprintln(os.Stderr, "no -target")
		os.Exit(2)
	}
	var cs []int
	for _, f := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fmt.Fprintln(os.Stderr, "bad -c", f)
			os.Exit(2)
		}
		cs = append(cs, c)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}, Timeout: 60 * time.Second}
	if *setup {
		for _, t := range ts {
			body := url.Values{"Action": {"CreateCluster"}, "Version": {"2012-12-01"}, "ClusterIdentifier": {*cluster},
				"NodeType": {"dc2.large"}, "MasterUsername": {"bench"}, "MasterUserPassword": {"Bench12345"}}.Encode()
			st, msg, err := call(context.Background(), client, t.urls[0], body)
			fmt.Fprintf(os.Stderr, "%s CreateCluster: %d %v %.200s\n", t.name, st, err, msg)
		}
	}
	// Warm up: connections open and, with a user pool, every salt exists.
	for _, t := range ts {
		warm := *users
		if warm == 0 || warm > 2000 {
			warm = 200
		}
		r := run(client, t, 8, 0, warm)
		if r.errs > 0 {
			fmt.Fprintf(os.Stderr, "%s warm-up: %d errors, first: %s\n", t.name, r.errs, r.firstErr)
			acks.close()
			os.Exit(1)
		}
	}
	var pgs *pgStats
	if *pgDSN != "" {
		var err error
		if pgs, err = openPGStats(*pgDSN, *pgPID); err != nil {
			fmt.Fprintln(os.Stderr, "-pg:", err)
			os.Exit(1)
		}
	}
	all := map[string][]result{} // name/c → per round
	fmt.Printf("GetClusterCredentials, %d rounds × %s per run, DbUser pool %d, order rotates each round\n", *rounds, *duration, *users)
	for r := 0; r < *rounds; r++ {
		for _, c := range cs {
			for i := range ts {
				t := ts[(i+r)%len(ts)]
				pg0 := pgs.sample()
				res := run(client, t, c, *duration, 0)
				res.pg = pgs.sample().since(pg0)
				k := t.name + "/" + strconv.Itoa(c)
				all[k] = append(all[k], res)
				fmt.Printf("round %d  %-10s c=%-3d %8.0f issues/s  p50 %7.2f ms  p99 %8.2f ms  max %8.2f ms  cpu/issue %s  errors %d %s\n",
					r+1, t.name, c, res.rate(), ms(res.p50), ms(res.p99), ms(res.max), cpuText(res.cpuPerIssue), res.errs, res.firstErr)
				for _, k := range res.errKinds {
					fmt.Printf("         %s\n", k)
				}
				if pgs != nil {
					fmt.Printf("         postgres: %s\n", res.pg.perIssue(res.n))
				}
			}
		}
	}
	fmt.Printf("\nmedians of %d rounds\n\n| concurrency |", *rounds)
	for _, t := range ts {
		fmt.Printf(" %s issues/s | p50 | p99 | max | CPU/issue |", t.name)
	}
	fmt.Print("\n|---|")
	for range ts {
		fmt.Print("---|---|---|---|---|")
	}
	fmt.Println()
	for _, c := range cs {
		fmt.Printf("| %d |", c)
		for _, t := range ts {
			rs := all[t.name+"/"+strconv.Itoa(c)]
			fmt.Printf(" %.0f | %.2f ms | %.2f ms | %.1f ms | %s |",
				median(rs, func(r result) float64 { return r.rate() }),
				median(rs, func(r result) float64 { return ms(r.p50) }),
				median(rs, func(r result) float64 { return ms(r.p99) }),
				median(rs, func(r result) float64 { return ms(r.max) }),
				cpuText(time.Duration(median(rs, func(r result) float64 { return float64(r.cpuPerIssue) }))))
		}
		fmt.Println()
	}
	if pgs != nil {
		fmt.Println()
		for _, c := range cs {
			for _, t := range ts {
				rs := all[t.name+"/"+strconv.Itoa(c)]
				fmt.Printf("c=%d %s postgres, medians per issue: transactions %.3f, WAL flushes %.3f, CPU %.3f ms\n", c, t.name,
					median(rs, func(r result) float64 { return float64(r.pg.xacts) / float64(max(r.n, 1)) }),
					median(rs, func(r result) float64 { return float64(r.pg.walSyncs) / float64(max(r.n, 1)) }),
					median(rs, func(r result) float64 { return ms(r.pg.cpu) / float64(max(r.n, 1)) }))
			}
		}
	}
	if len(ts) > 1 {
		fmt.Println()
		for _, c := range cs {
			a := median(all[ts[0].name+"/"+strconv.Itoa(c)], func(r result) float64 { return r.rate() })
			for _, t := range ts[1:] {
				b := median(all[t.name+"/"+strconv.Itoa(c)], func(r result) float64 { return r.rate() })
				fmt.Printf("c=%d: %s/%s = %.2f×\n", c, ts[0].name, t.name, a/b)
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cpuText(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f ms", ms(d))
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// userSeq numbers DbUsers across runs, so -users 0 never repeats one.
var userSeq atomic.Int64

// run fires requests at t from c workers for d, or, when count > 0, until
// count requests are done.
func run(client *http.Client, t target, c int, d time.Duration, count int) result {
	ctx := context.Background()
	var (
		mu       sync.Mutex
		lats     []time.Duration
		errs     int
		firstErr string
		kinds    = map[string]int{}
		left     atomic.Int64
	)
	left.Store(int64(count))
	cpu0 := cpuTicks(t.pids...)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		base := t.urls[w%len(t.urls)]
		wg.Go(func() {
			var mine []time.Duration
			for {
				if count > 0 {
					if left.Add(-1) < 0 {
						break
					}
				} else if time.Now().After(deadline) {
					break
				}
				n := userSeq.Add(1)
				if *users > 0 {
					n %= int64(*users)
				}
				body := url.Values{"Action": {"GetClusterCredentials"}, "Version": {"2012-12-01"}, "ClusterIdentifier": {*cluster},
					"DbUser": {"u" + strconv.FormatInt(n, 10)}, "DurationSeconds": {"3600"}}.Encode()
				t0 := time.Now()
				st, msg, err := call(ctx, client, base, body)
				lat := time.Since(t0)
				ok := err == nil && st == http.StatusOK && strings.Contains(msg, "DbPassword")
				if ok && acks != nil {
					// Parsed only for -creds: the client's CPU counts against every target.
					user, password := parseCredentials(msg)
					ok = password != ""
					if ok {
						if err := acks.add(user, password); err != nil {
							fmt.Fprintln(os.Stderr, "-creds:", err)
							os.Exit(1)
						}
					}
				}
				if !ok {
					e := fmt.Sprintf("status %d %v %.300s", st, err, msg)
					mu.Lock()
					errs++
					if firstErr == "" {
						firstErr = e
					}
					kinds[e]++
					mu.Unlock()
					continue
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu1 := cpuTicks(t.pids...)
	slices.Sort(lats)
	if err := acks.flush(); err != nil {
		fmt.Fprintln(os.Stderr, "-creds:", err)
		os.Exit(1)
	}
	r := result{n: len(lats), errs: errs, secs: secs, firstErr: firstErr, errKinds: countedKinds(kinds)}
	if len(lats) > 0 {
		r.p50 = lats[len(lats)*50/100]
		r.p99 = lats[min(len(lats)-1, len(lats)*99/100)]
		r.max = lats[len(lats)-1]
	}
	if len(t.pids) > 0 && r.n > 0 && cpu0 >= 0 && cpu1 >= 0 {
		r.cpuPerIssue = time.Duration(float64(cpu1-cpu0) * float64(10*time.Millisecond) / float64(r.n))
	}
	return r
}

// call sends one signed Query API request and returns the status and body.
func call(ctx context.Context, client *http.Client, base, body string) (int, string, error) {
	c := query.Caller{Client: client, KeyID: *keyID, Secret: *secret, Service: "redshift", Region: *region}
	st, b, err := c.Call(ctx, base, body)
	return st, string(b), err
}

// cpuTicks is utime+stime of pids in clock ticks (USER_HZ, 100 on Linux),
// or -1 when one of them is gone (killed during the run).
func cpuTicks(pids ...int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return -1
		}
		// Fields after the command name, which is in parentheses and may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		// f[0] is field 3 (state); utime is field 14, stime 15.
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}
