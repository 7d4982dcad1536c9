package pgwire

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A cancel request that reaches the wrong replica's gateway goes on to the
// gateway of the same cluster on the others, which cancels the query of
// its session; a forwarded request must carry the MAC of a gateway that
// shares the secret and the cluster, and a recent time. From a proxy's
// address it needs no PROXY header: its MAC vouches for it.
func TestCancelGoesOnToThePeerOfTheSession(t *testing.T) {
	var logs lockedBuffer
	holder, holderAddr := newGateway(t, func(g *Gateway) {
		g.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		g.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil }}
	})
	_, otherAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return []string{holderAddr}, nil }}
	})
	c := mustLogin(t, holderAddr)
	admin := superuser(t, holder.DefaultDB)
	pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()

	if err := sleepWhileCancelling(t, c, admin, func() { sendCancel(t, otherAddr, "", pid, secret) }); code(err) != "57014" {
		t.Fatalf("a cancel sent to the other replica: %v, want 57014", err)
	}
	if recs := logs.records(t, "cancel request forwarded"); len(recs) != 1 || recs[0]["from_peer"] != true {
		t.Fatalf("holder's cancel records %v, want one from a peer", recs)
	}

	forged := func(cluster string, secretOf []byte, at time.Time) []byte {
		g := &Gateway{Cluster: cluster, Secret: secretOf}
		return g.encodePeerCancel(pid, secret, at)
	}
	for _, tc := range []struct {
		name   string
		packet []byte
		log    string
	}{
		{"another secret", forged(holder.Cluster, []byte("not the store's"), time.Now()), "peer cancel request refused: not from a replica of this gateway (or its gateway secret differs)"},
		{"another cluster", forged("another", holder.Secret, time.Now()), "peer cancel request refused: not from a replica of this gateway (or its gateway secret differs)"},
		{"a minute old", forged(holder.Cluster, holder.Secret, time.Now().Add(-time.Minute)), "peer cancel request refused: its time is too far from ours"},
	} {
		before := len(logs.records(t, tc.log))
		if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, holderAddr, "127.0.0.1", tc.packet) }); err != nil {
			t.Fatalf("a peer cancel with %s cancelled: %v", tc.name, err)
		}
		if n := len(logs.records(t, tc.log)); n != before+1 {
			t.Fatalf("a peer cancel with %s: %d more %q records, want 1", tc.name, n-before, tc.log)
		}
	}

	// From the balancer's address, without a PROXY header.
	right := forged(holder.Cluster, holder.Secret, time.Now())
	if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, holderAddr, "127.0.0.2", right) }); code(err) != "57014" {
		t.Fatalf("a peer cancel from a proxy address: %v, want 57014", err)
	}
}

// sendPacket sends packet to the gateway at addr from local address from
// and waits for the gateway to hang up.
func sendPacket(t *testing.T, addr, from string, packet []byte) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write(packet)
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := raw.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a peer cancel got %d bytes, %v; want the connection closed", n, err)
	}
}
