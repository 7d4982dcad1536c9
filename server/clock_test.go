package server

import (
	"testing"
	"time"
)

// clockStore is a shared store whose clock is an hour from this machine's.
type clockStore struct {
	Store
	at time.Time
}

func (c clockStore) Now() time.Time { return c.at }

// A server on a store with a clock of its own (replicas sharing
// PostgreSQL) keeps the store's time: issuing, login and SigV4 checks of
// every replica then agree whatever their machines' clocks say. A clock a
// test injects comes first.
func TestServerKeepsStoreTime(t *testing.T) {
	at := time.Now().Add(time.Hour).Round(0)
	s := &Server{}
	s.UseStore(clockStore{at: at})
	if got := s.Clock(); !got.Equal(at) {
		t.Errorf("server time %v, want the store's %v", got, at)
	}
	if got := StoreTime(clockStore{at: at}); !got.Equal(at) {
		t.Errorf("a tool's time %v, want the store's %v", got, at)
	}
	fixed := at.Add(-5 * time.Hour)
	s.Now = func() time.Time { return fixed }
	if got := s.Clock(); !got.Equal(fixed) {
		t.Errorf("server time %v, want the injected %v", got, fixed)
	}
}
