package wakeset

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Keys noted while a round runs come in the next round, merged; the zero
// key stands alone for all of them.
func TestRoundsMergeNotesAndTheZeroKeyStandsForAll(t *testing.T) {
	var s Set[string]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := make(chan []string)
	release := make(chan struct{})
	go s.Run(ctx, time.Hour, func(keys map[string]bool) {
		var ks []string
		for k := range keys {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		rounds <- ks
		<-release
	})
	s.Note("a")
	if got := fmt.Sprint(<-rounds); got != "[a]" {
		t.Fatalf("first round %s, want [a]", got)
	}
	// The worker is busy: these wait, merged.
	s.Note("b")
	s.Note("c")
	s.Note("b")
	release <- struct{}{}
	if got := fmt.Sprint(<-rounds); got != "[b c]" {
		t.Fatalf("second round %s, want [b c]", got)
	}
	s.Note("d")
	s.Note("")
	release <- struct{}{}
	if got := <-rounds; len(got) != 1 || got[0] != "" {
		t.Fatalf("round after the zero key was noted %q, want the zero key alone", got)
	}
	release <- struct{}{}
}

// Recheck and WhileBehind note the zero key by themselves.
func TestRecheckAndWhileBehindNoteTheZeroKey(t *testing.T) {
	var s Set[int]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := make(chan map[int]bool, 16)
	go s.Run(ctx, 20*time.Millisecond, func(keys map[int]bool) { rounds <- keys })
	select {
	case keys := <-rounds:
		if len(keys) != 1 || !keys[0] {
			t.Fatalf("recheck round %v, want the zero key", keys)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no round from the recheck")
	}
	var w Set[int]
	behind := make(chan bool, 1)
	behind <- false
	asked := make(chan struct{}, 16)
	go w.WhileBehind(ctx, 5*time.Millisecond, func() bool {
		asked <- struct{}{}
		select {
		case b := <-behind:
			behind <- b
			return b
		default:
			return false
		}
	})
	for range 3 {
		<-asked
	}
	w.init()
	w.mu.Lock()
	n := len(w.pending)
	w.mu.Unlock()
	if n != 0 {
		t.Fatalf("WhileBehind noted %d keys while not behind", n)
	}
	<-behind
	behind <- true
	wRounds := make(chan map[int]bool, 16)
	go w.Run(ctx, time.Hour, func(keys map[int]bool) { wRounds <- keys })
	select {
	case keys := <-wRounds:
		if len(keys) != 1 || !keys[0] {
			t.Fatalf("round while behind %v, want the zero key", keys)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no round while behind")
	}
}
