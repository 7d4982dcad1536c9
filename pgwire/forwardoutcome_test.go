package pgwire

import (
	"context"
	"maps"
	"net"
	"testing"
	"time"
)

// TestCancelForwardCountsWhatThePeersTook: a cancel request that names no
// session here is counted by what became of its forward, once it is over:
// forwarded when a peer took it, forward_failed when every peer's
// connection failed (a replica died), no_session when no peer was listed.
// Found in review: all three were counted forwarded the moment the
// forward was started, so that during an incident (a replica dead) the
// metric said the cancels were passed on while only a WARN said they
// were not.
func TestCancelForwardCountsWhatThePeersTook(t *testing.T) {
	// A closed port: a connection to it is refused at once, as one to a
	// dead replica's gateway is.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	// A live peer: a gateway of the same cluster and secret, which looks
	// the key up among its sessions (none).
	peerObs := &cancelOutcomes{}
	_, live := fakeGateway(t, &fakeBackend{}, func(g *Gateway) {
		g.Observer = peerObs
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil }}
	})
	for _, tc := range []struct {
		name  string
		peers []string
		want  string
	}{
		{"the only peer dead", []string{dead}, "forward_failed"},
		{"one peer dead, one live", []string{dead, live}, "forwarded"},
		{"no peer listed", nil, "no_session"},
	} {
		obs := &cancelOutcomes{}
		_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) {
			g.Observer = obs
			g.Peers = &Peers{List: func(context.Context) ([]string, error) { return tc.peers, nil }}
		})
		sendCancel(t, addr, "", 7, []byte{1, 2, 3, 4})
		total := func() (n int) {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			for _, c := range obs.got {
				n += c
			}
			return n
		}
		if !waitUntil(10*time.Second, func() bool { return total() > 0 }) {
			t.Fatalf("%s: the cancel request was never counted", tc.name)
		}
		obs.mu.Lock()
		got := maps.Clone(obs.got)
		obs.mu.Unlock()
		if len(got) != 1 || got[tc.want] != 1 {
			t.Errorf("%s: cancel outcomes %v, want {%s: 1}", tc.name, got, tc.want)
		}
	}
	if !waitUntil(10*time.Second, func() bool { return peerObs.count("peer_no_session") == 1 }) {
		n := peerObs.count("peer_no_session")
		t.Errorf("the live peer counted %d peer_no_session, want 1 (the forward it took)", n)
	}
}
