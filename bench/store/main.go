// Command store measures the issue rate (GetClusterCredentials through
// redshift.Service: authorization, SCRAM derivation and the store's two
// calls, LoginSalt and CreateCredential) on the SQLite store and on the
// PostgreSQL store, in interleaved rounds, with c concurrent callers.
// Both are durable: SQLite with synchronous=FULL, PostgreSQL with fsync
// and synchronous_commit on. It starts its own PostgreSQL (pgserver).
//
//	go run ./bench/store -c 64 -rounds 5 -d 5s
//	go run ./bench/store -c 64 -rounds 5 -d 5s -iterations 1   # the store's share
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/redshift"
	"github.com/shiftkey/shiftkey/sqlite"
	"github.com/shiftkey/shiftkey/storecache"
)

func main() {
	c := flag.Int("c", 64, "concurrent callers")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	d := flag.Duration("d", 5*time.Second, "length of one measurement")
	logins := flag.Int("logins", 64, "distinct login names issued for")
	flag.IntVar(&iterations, "iterations", 0, "SCRAM iterations of new logins (0: the default, 4096); 1 leaves mostly the store to measure")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file (go tool pprof)")
	flag.Parse()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "bench-store-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // the postgres OS user must reach it when run as root
	pg, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(dir, "pg"), SocketDir: filepath.Join(dir, "run"), Fsync: true})
	if err != nil {
		log.Fatal(err)
	}
	defer pg.Stop(ctx)
	if err := pg.CreateDatabase(ctx, "shiftkey"); err != nil {
		log.Fatal(err)
	}
	pgStore, err := postgres.Open(ctx, pg.ConnString(pg.Superuser(), "shiftkey"), postgres.WithMaxConns(int32(*c)))
	if err != nil {
		log.Fatal(err)
	}
	defer pgStore.Close()
	liteStore, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer liteStore.Close()

	stores := []struct {
		name string
		st   shiftkey.Store
	}{{"sqlite", storecache.New(liteStore)}, {"postgres", storecache.New(pgStore)}} // as served: behind the cache
	rates := map[string][]float64{}
	for _, s := range stores {
		if err := setUp(ctx, s.st); err != nil {
			log.Fatalf("%s: %v", s.name, err)
		}
		run(ctx, s.st, *c, *logins, time.Second) // warm up: salts, caches, connections
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	for r := range *rounds {
		for i := range stores {
			s := stores[(i+r)%len(stores)] // alternate which goes first
			rate := run(ctx, s.st, *c, *logins, *d)
			rates[s.name] = append(rates[s.name], rate)
			fmt.Printf("round %d  %-8s  %7.0f issues/s\n", r+1, s.name, rate)
		}
	}
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	ms, mp := med(rates["sqlite"]), med(rates["postgres"])
	fmt.Printf("median   sqlite %.0f/s  postgres %.0f/s  postgres/sqlite %.2f  (c=%d, %d rounds of %v)\n", ms, mp, mp/ms, *c, *rounds, *d)
}

var iterations int

func setUp(ctx context.Context, st shiftkey.Store) error {
	now := time.Now()
	if err := st.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "bench", DBName: "dev", Status: "available", CreatedAt: now}); err != nil {
		return err
	}
	if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bench", ID: "AIDABENCH", Path: "/",
		ARN: "arn:aws:iam::" + shiftkey.DefaultAccountID + ":user/bench", CreatedAt: now}); err != nil {
		return err
	}
	return st.PutInlinePolicy(ctx, shiftkey.KindUser, "bench", shiftkey.PolicyDocument{Name: "issue",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}`})
}

// run issues from c goroutines for d and returns issues per second.
func run(ctx context.Context, st shiftkey.Store, c, logins int, d time.Duration) float64 {
	svc := &redshift.Service{Store: st, Authorizer: &authz.Authorizer{Store: st}, Iterations: iterations}
	p := &shiftkey.Principal{ARN: "arn:aws:iam::" + shiftkey.DefaultAccountID + ":user/bench", Account: shiftkey.DefaultAccountID,
		Type: shiftkey.PrincipalUser, UserName: "bench", UserID: "AIDABENCH"}
	var n atomic.Int64
	var failed atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range c {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				caller := &shiftkey.Caller{Principal: p, Region: shiftkey.DefaultRegion, RequestID: shiftkey.NewUUID(), Time: time.Now(), SecureTransport: true}
				user := "u" + strconv.Itoa((g+i*c)%logins)
				cluster, auto := "bench", true
				if _, err := svc.GetClusterCredentials(ctx, caller, &redshift.GetClusterCredentialsInput{
					CredentialTarget: redshift.CredentialTarget{ClusterIdentifier: &cluster}, DBUser: &user, AutoCreate: &auto}); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		log.Fatal(err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}
