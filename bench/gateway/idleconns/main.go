// Command idleconns opens N idle sessions through a gateway and reports the
// gateway process's resident memory before and after, per connection.
//
//	go run ./bench/gateway/idleconns -dsn 'host=127.0.0.1 port=57439 user=… password=… dbname=postgres sslmode=disable' -n 1000 -pid 1234
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func main() {
	dsn := flag.String("dsn", "", "connection string of the gateway")
	n := flag.Int("n", 1000, "idle sessions to open")
	pid := flag.Int("pid", 0, "gateway process id")
	flag.Parse()
	before, err := rssKiB(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conns := make([]*pgconn.PgConn, *n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var mu sync.Mutex
	var firstErr error
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := pgconn.Connect(context.Background(), *dsn)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "connect:", firstErr)
		os.Exit(1)
	}
	time.Sleep(2 * time.Second) // let the gateway settle
	after, err := rssKiB(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("idle sessions: %d  gateway RSS before %d KiB, after %d KiB: %.1f KiB per session\n",
		*n, before, after, float64(after-before)/float64(*n))
	for _, c := range conns {
		c.Close(context.Background())
	}
}
