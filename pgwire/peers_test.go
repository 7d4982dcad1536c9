package pgwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shiftkey/shiftkey"
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
	// A peer that does not answer (TEST-NET-1: refused at once or dropped,
	// as the host's routes have it) comes first: it must not hold up the
	// others, each dialled on its own.
	_, otherAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return []string{"192.0.2.1:5439", holderAddr}, nil }}
	})
	c := mustLogin(t, holderAddr)
	admin := superuser(t, holder.DefaultDB)
	pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()

	start := time.Now()
	if err := sleepWhileCancelling(t, c, admin, func() { start = time.Now(); sendCancel(t, otherAddr, "", pid, secret) }); code(err) != "57014" {
		t.Fatalf("a cancel sent to the other replica: %v, want 57014", err)
	}
	if took := time.Since(start); took > peerDialTimeout {
		t.Fatalf("the forwarded cancel took %v: the peer that does not answer held it up", took)
	}
	// Logged once the cancel is on its way to PostgreSQL, which may
	// cancel the query first.
	var recs []map[string]any
	if !waitUntil(5*time.Second, func() bool { recs = logs.records(t, "cancel request forwarded"); return len(recs) > 0 }) ||
		len(recs) != 1 || recs[0]["from_peer"] != true {
		t.Fatalf("holder's cancel records %v, want one from a peer", recs)
	}

	// PostgreSQL signals a cancelled backend twice (the process, then its
	// group): under load the second can cancel the next query on it. The
	// rest runs on a session of its own.
	c = mustLogin(t, holderAddr)
	pid, secret = c.PgConn().PID(), c.PgConn().SecretKey()
	const refusedMAC = "peer cancel request refused: not from a replica of this gateway (or its gateway secret differs)"
	forged := func(cluster string, secretOf []byte, at time.Time) []byte {
		g := &Gateway{Cluster: cluster, Secret: secretOf}
		return g.encodePeerCancel(pid, secret, "198.51.100.7", at)
	}
	for _, tc := range []struct {
		name   string
		packet []byte
		log    string
	}{
		{"another secret", forged(holder.Cluster, []byte("not the store's"), time.Now()), refusedMAC},
		{"another cluster", forged("another", holder.Secret, time.Now()), refusedMAC},
		{"a minute old", forged(holder.Cluster, holder.Secret, time.Now().Add(-time.Minute)), "peer cancel request refused: its time is too far from ours"},
	} {
		before, refused := len(logs.records(t, tc.log)), holder.peerRefusals.Load()
		if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, holderAddr, "127.0.0.1", tc.packet) }); err != nil {
			t.Fatalf("a peer cancel with %s cancelled: %v\nholder's log:\n%s", tc.name, err, logs.String())
		}
		// Refusals for the MAC are logged once per 10 s, and counted.
		if tc.log == refusedMAC {
			if n := holder.peerRefusals.Load() - refused; n != 1 {
				t.Fatalf("a peer cancel with %s: %d more refusals counted, want 1", tc.name, n)
			}
			continue
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

// Cancel requests forwarded by peers count against the client's address
// (in the packet) where they miss: one address gets cancelMissLimit
// guesses at a replica's sessions in all, whichever replicas it sends them
// through.
func TestForwardedCancelGuessesCountAgainstTheClient(t *testing.T) {
	defer func(n int) { cancelMissLimit = n }(cancelMissLimit)
	cancelMissLimit = 3
	holder, holderAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil }}
	})
	c := mustLogin(t, holderAddr)
	admin := superuser(t, holder.DefaultDB)
	pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
	from := func(client string, key []byte) []byte {
		return holder.encodePeerCancel(pid, key, client, time.Now())
	}
	// Three wrong guesses of one client, each through "another replica".
	for i := range 3 {
		sendPacket(t, holderAddr, "127.0.0.1", from("198.51.100.7", []byte{byte(i), 1, 2, 3}))
	}
	if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, holderAddr, "127.0.0.1", from("198.51.100.7", secret)) }); err != nil {
		t.Fatalf("the right key from a client past its guesses still cancelled: %v", err)
	}
	// Another client behind the same peer, and the peer's own address,
	// are not held back by that client's guesses.
	if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, holderAddr, "127.0.0.1", from("198.51.100.8", secret)) }); code(err) != "57014" {
		t.Fatalf("another client's forwarded cancel: %v, want 57014", err)
	}
	// A new session: the cancel above may signal its backend twice.
	c = mustLogin(t, holderAddr)
	pid, secret = c.PgConn().PID(), c.PgConn().SecretKey()
	if err := sleepWhileCancelling(t, c, admin, func() { sendCancel(t, holderAddr, "127.0.0.1", pid, secret) }); code(err) != "57014" {
		t.Fatalf("a direct cancel from the peer's address: %v, want 57014", err)
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A draining gateway closes its listener (the balancer then sends clients
// elsewhere) and takes its peers' forwarded cancels on a port of its own,
// which it advertises: a forwarded cancel with the right MAC cancels its
// session's query there; a client's own cancel request, a startup packet
// and a forged forward do nothing and get no answer.
func TestDrainingGatewayTakesPeerCancelsAlone(t *testing.T) {
	advertised := make(chan string, 1)
	holder, holderAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil },
			Advertise: func(a net.Addr) bool { advertised <- a.String(); return true }}
	})
	c := mustLogin(t, holderAddr)
	admin := superuser(t, holder.DefaultDB)
	pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
	drained := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drained <- holder.Shutdown(ctx)
	}()
	var drainAddr string
	select {
	case drainAddr = <-advertised:
	case <-time.After(5 * time.Second):
		t.Fatal("the draining gateway advertised no address for its peers")
	}
	if c, err := net.DialTimeout("tcp", holderAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the draining gateway still accepts on its listener")
	}
	if err := sleepWhileCancelling(t, c, admin, func() { sendCancel(t, drainAddr, "", pid, secret) }); err != nil {
		t.Fatalf("a client's cancel request on the peers' port cancelled: %v", err)
	}
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u"}}).Encode(nil)
	sendPacket(t, drainAddr, "127.0.0.1", startup)
	refused := holder.peerRefusals.Load()
	forged := (&Gateway{Cluster: holder.Cluster, Secret: []byte("not the store's")}).encodePeerCancel(pid, secret, "", time.Now())
	if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, drainAddr, "127.0.0.1", forged) }); err != nil {
		t.Fatalf("a forged peer cancel cancelled: %v", err)
	}
	if n := holder.peerRefusals.Load() - refused; n != 1 {
		t.Fatalf("%d refusals counted for the forged peer cancel, want 1", n)
	}
	right := holder.encodePeerCancel(pid, secret, "", time.Now())
	if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, drainAddr, "127.0.0.1", right) }); code(err) != "57014" {
		t.Fatalf("a peer's cancel for the draining gateway's session: %v, want 57014", err)
	}
	c.Close(context.Background())
	select {
	case n := <-drained:
		if n != 0 {
			t.Fatalf("Shutdown cut %d sessions, want none (the last one ended)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return once the last session ended")
	}
	if c, err := net.DialTimeout("tcp", drainAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the peers' port outlived the drain")
	}
}

// cancelOutcomes records how each cancel request ended.
type cancelOutcomes struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *cancelOutcomes) Login(*shiftkey.Login)           {}
func (c *cancelOutcomes) SessionEnd(*shiftkey.SessionEnd) {}
func (c *cancelOutcomes) Cancel(scope, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]int{}
	}
	c.got[outcome]++
}

func (c *cancelOutcomes) count(outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[outcome]
}

// A cancel request that names no session here, when peerForwards forwards
// are already in flight, is dropped: it is counted as such, not as
// no_session ("no other replica to ask"), which would tell an operator
// that the peers are not configured.
func TestCancelNotForwardedWhenForwardsAreSaturated(t *testing.T) {
	// A peer that never completes a connection: a socket listening with
	// a backlog of 0, never accepting, takes one connection and drops
	// the SYNs of the rest, so each forward waits out its dial.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	peer := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	obs := &cancelOutcomes{}
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) {
		g.Observer = obs
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return []string{peer}, nil }}
	})
	const sent = peerForwards + 16
	for i := range sent {
		// From several addresses, under each one's budget of misses.
		sendCancel(t, addr, fmt.Sprintf("127.0.%d.%d", 1+i/50, 1+i%50), 7, []byte{1, 2, 3, 4})
	}
	if !waitUntil(5*time.Second, func() bool {
		return obs.count(shiftkey.CancelForwarded)+obs.count(shiftkey.CancelForwardFailed)+obs.count(shiftkey.CancelNotForwarded)+obs.count(shiftkey.CancelNoSession) == sent
	}) {
		t.Fatalf("outcomes %v of %d cancels", obs.got, sent)
	}
	if n, none := obs.count(shiftkey.CancelNotForwarded), obs.count(shiftkey.CancelNoSession); n == 0 || none != 0 {
		t.Fatalf("outcomes %v: want some not_forwarded (over %d in flight) and no no_session", obs.got, peerForwards)
	}
}

// A forwarded cancel can be copied on its way between replicas. Replayed
// (by anyone who saw it, from any address) within its time window, it must
// not count again against the client it names: the seal vouches that the
// client sent one cancel, not as many as the replayer likes. Replays of a
// dead key would otherwise spend the client's budget of misses and leave
// its cancel requests dropped for a while.
func TestReplayedPeerCancelDoesNotSpendTheClientsBudget(t *testing.T) {
	defer func(n int) { cancelMissLimit = n }(cancelMissLimit)
	cancelMissLimit = 3
	holder, holderAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil }}
	})
	c := mustLogin(t, holderAddr)
	admin := superuser(t, holder.DefaultDB)
	pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
	// One genuine forward of a wrong guess, captured and replayed from
	// another address.
	captured := holder.encodePeerCancel(pid, []byte{9, 9, 9, 9}, "198.51.100.7", time.Now())
	for range 3 {
		sendPacket(t, holderAddr, "127.0.0.2", captured)
	}
	right := holder.encodePeerCancel(pid, secret, "198.51.100.7", time.Now())
	if err := sleepWhileCancelling(t, c, admin, func() { sendPacket(t, holderAddr, "127.0.0.1", right) }); code(err) != "57014" {
		t.Fatalf("the client's forwarded cancel after one guess replayed 3 times: %v, want 57014", err)
	}
}

// An observer on the path between replicas (here a relay that copies what
// it passes on) sees every forwarded cancel. Its MAC keeps anyone from
// forging or replaying one, but the session's cancel key it carried was in
// the clear: a key stays good for its session's life, so the observer
// could cancel that session's queries whenever it liked with a plain
// CancelRequest to any replica. The key must cross sealed.
func TestForwardedCancelKeyIsNotReadableOnThePath(t *testing.T) {
	holder, holderAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil }}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan []byte, 4)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				in.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, _ := io.ReadAll(in)
				seen <- b
				if out, err := net.Dial("tcp", holderAddr); err == nil {
					out.Write(b)
					out.Close()
				}
			}()
		}
	}()
	_, otherAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return []string{ln.Addr().String()}, nil }}
	})
	c := mustLogin(t, holderAddr)
	admin := superuser(t, holder.DefaultDB)
	pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
	if err := sleepWhileCancelling(t, c, admin, func() { sendCancel(t, otherAddr, "", pid, secret) }); code(err) != "57014" {
		t.Fatalf("a cancel forwarded through the path: %v, want 57014", err)
	}
	var packet []byte
	select {
	case packet = <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing crossed the path")
	}
	key := binary.BigEndian.AppendUint32(nil, pid)
	key = append(key, secret...)
	if i := bytes.Index(packet, key); i >= 0 {
		// What the observer can do with it: cancel the session's next
		// query, long after the client's own cancel.
		got := sleepWhileCancelling(t, c, admin, func() {
			sendCancel(t, holderAddr, "", binary.BigEndian.Uint32(packet[i:]), packet[i+4:i+8])
		})
		t.Fatalf("the forwarded packet (%d bytes) carries the session's cancel key in the clear at byte %d; a later query cancelled with the key read there ended: %v", len(packet), i, got)
	}
}
