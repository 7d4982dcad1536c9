package pgwire

import (
	"fmt"
	"testing"
	"time"
)

// The failed-login throttle and the cancel-guess budget count an IPv6
// client by its /64, the network a single host or subnet gets: counted by
// address, a /64 would give an attacker 2^64 budgets. IPv4 addresses, and
// IPv4 as IPv6 (::ffff:a.b.c.d), count one each.
func TestBudgetsCountIPv6ByItsNetwork(t *testing.T) {
	now := time.Now()
	var th throttle
	for i, src := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3", "2001:db8:0:1::4", "2001:db8:0:1::5"} {
		if d := th.fail(src, now); d != 0 {
			t.Fatalf("failure %d (%s) delayed %v, want none of the free ones", i+1, src, d)
		}
	}
	if d := th.fail("2001:db8:0:1::6", now); d == 0 {
		t.Fatal("a sixth failure from the same /64 (another address) was not delayed")
	}
	if d := th.fail("2001:db8:0:2::1", now); d != 0 {
		t.Fatalf("a failure from another /64 delayed %v", d)
	}
	var misses sourceCounts
	for _, pair := range [][2]string{{"192.0.2.1", "192.0.2.2"}, {"::ffff:198.51.100.1", "::ffff:198.51.100.2"}} {
		for range 3 {
			misses.add(pair[0], now)
		}
		if n := misses.count(pair[1], now); n != 0 {
			t.Fatalf("%s counts %d of %s's misses", pair[1], n, pair[0])
		}
		if n := misses.count(pair[0], now); n != 3 {
			t.Fatalf("%s counts %d misses, want 3", pair[0], n)
		}
	}
	misses.add("2001:db8::1", now)
	if n := misses.count("2001:db8::abcd", now); n != 1 {
		t.Fatalf("2001:db8::abcd counts %d, want the /64's 1", n)
	}
}

// Found in a review of the front door's limits: past 10000 sources, every
// event from a new one scanned the whole map for quiet sources, under the
// lock every cancel request and failed login takes. Cancel requests naming
// no session from 40000 /64s (one /32 holds 2^32) took 27 s of CPU to
// count, and the map grew without bound within the window. Now the scan
// runs as the map doubles (linear in all), and past maxTrackedSources the
// new sources share one budget.
func TestSourceCountsStayCheapAndBounded(t *testing.T) {
	var c sourceCounts
	now := time.Now()
	const n = 3 * 10000
	for i := range n {
		c.add(fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff), now)
	}
	if c.scanned > 2*n {
		t.Fatalf("%d fresh sources: %d entries scanned for quiet ones, want at most %d", n, c.scanned, 2*n)
	}
	defer func(m int) { maxTrackedSources = m }(maxTrackedSources)
	maxTrackedSources = 100
	c = sourceCounts{}
	for i := range 1000 {
		c.add(fmt.Sprintf("198.51.%d.%d", i>>8, i&0xff), now)
	}
	if len(c.sources) > maxTrackedSources+1 {
		t.Fatalf("%d sources tracked, want at most %d and the overflow", len(c.sources), maxTrackedSources)
	}
	if got := c.count("198.51.3.231", now); got != 900 {
		t.Fatalf("an untracked source's count: %d, want the 900 of the overflow it shares", got)
	}
	// Once the window has passed, the quiet sources make room again.
	later := now.Add(window + time.Second)
	if got := c.add("203.0.113.9", later); got != 1 || len(c.sources) != 1 {
		t.Fatalf("after the window: count %d, %d sources tracked; want 1 and 1", got, len(c.sources))
	}
}
