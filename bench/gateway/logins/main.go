// Command logins measures logins with a Go client: each of -c workers
// connects with pgx, runs "select 1", closes, and starts again, for -d. It
// prints one line in pgbench's shape ("number of transactions actually
// processed: N", "tps = X"), so bench/gateway/run.sh reads it as it reads
// pgbench, plus the p50/p99 of one login.
//
//	go run ./bench/gateway/logins -dsn 'host=127.0.0.1 port=27439 user=… password=… dbname=postgres sslmode=require' -c 16 -d 6s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func main() {
	dsn := flag.String("dsn", "", "connection string")
	conc := flag.Int("c", 16, "concurrent workers")
	dur := flag.Duration("d", 6*time.Second, "how long to run")
	flag.Parse()
	cfg, err := pgconn.ParseConfig(*dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		failures int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var errOne error
			for ctx.Err() == nil {
				t0 := time.Now()
				c, err := pgconn.ConnectConfig(context.Background(), cfg)
				if err == nil {
					err = c.Exec(context.Background(), "select 1").Close()
					c.Close(context.Background())
				}
				if err != nil {
					bad++
					if errOne == nil {
						errOne = err
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			failures += bad
			if firstErr == nil {
				firstErr = errOne
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failures > 0 {
		fmt.Fprintf(os.Stderr, "%d failed logins, first: %v\n", failures, firstErr)
	}
	if len(lat) == 0 {
		os.Exit(1)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("number of transactions actually processed: %d\n", len(lat))
	fmt.Printf("tps = %.1f (logins per second)\n", float64(len(lat))/elapsed.Seconds())
	fmt.Printf("login p50 %.2f ms p99 %.2f ms\n", float64(q(0.5).Microseconds())/1000, float64(q(0.99).Microseconds())/1000)
}
