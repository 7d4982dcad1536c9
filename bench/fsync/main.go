// Command fsync times write+fsync on one file, as the SQLite store's
// commits do, optionally while busy loops occupy the CPUs: on the shared
// development VM, busy cores alone (even at nice 19) took the fsync p99
// from a third of a millisecond to several (bench/issue/README.md).
//
//	go run ./bench/fsync -dir /var/tmp -busy 3 -nice 19
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory of the test file (the disk under test)")
	sizes := flag.String("kb", "4,16,74,150", "KB written before each fsync, comma-separated")
	n := flag.Int("n", 1000, "fsyncs per size")
	busy := flag.Int("busy", 0, "busy shell loops running meanwhile")
	nice := flag.Int("nice", 0, "their nice value")
	flag.Parse()

	for range *busy {
		cmd := exec.Command("nice", "-n", strconv.Itoa(*nice), "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		defer cmd.Process.Kill()
	}
	path := filepath.Join(*dir, "fsync-bench.data")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	// Preallocated, as a WAL that starts over is: writes overwrite blocks.
	const span = 16 << 20
	if _, err := f.WriteAt(make([]byte, span), 0); err != nil {
		log.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		log.Fatal(err)
	}
	for _, s := range strings.Split(*sizes, ",") {
		kb, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || kb <= 0 || kb<<10 > span {
			log.Fatalf("bad size %q", s)
		}
		buf := make([]byte, kb<<10)
		lats := make([]time.Duration, 0, *n)
		var off int64
		for range *n {
			if _, err := f.WriteAt(buf, off); err != nil {
				log.Fatal(err)
			}
			if off += int64(len(buf)); off+int64(len(buf)) > span {
				off = 0
			}
			t := time.Now()
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
			lats = append(lats, time.Since(t))
		}
		slices.Sort(lats)
		at := func(q float64) time.Duration { return lats[min(len(lats)-1, int(q*float64(len(lats))))] }
		fmt.Printf("%4d KB  p50 %8.3f ms  p90 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", kb,
			ms(at(0.5)), ms(at(0.9)), ms(at(0.99)), ms(lats[len(lats)-1]))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
