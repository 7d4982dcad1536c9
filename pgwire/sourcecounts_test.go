package pgwire

import (
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
