package relay

import (
	"testing"
	"time"
)

// Callbacks run in the order posted, whether the runner is parked or busy
// when they come, and the runner ends after close once all have run.
func TestCallbacksRunInOrderThenEnd(t *testing.T) {
	c, err := newCallbacks()
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		c.run()
		close(ended)
	}()
	got := make(chan int, 1000)
	for i := range 1000 {
		c.post(func() { got <- i })
		if i%100 == 0 {
			// Let the runner drain and park now and then.
			for len(got) < i+1 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	c.close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("runner did not end after close")
	}
	if len(got) != 1000 {
		t.Fatalf("%d callbacks ran, want 1000", len(got))
	}
	for want := range 1000 {
		if i := <-got; i != want {
			t.Fatalf("callback %d ran in place %d", i, want)
		}
	}
}
