// Cancel requests across replicas: a client cancels on a new connection,
// which a load balancer may send to any replica. One whose key names no
// session here is passed on to this gateway's peers on the other
// replicas, sealed with a key every replica shares (so that no one else
// can forge one, nor read the client's key on the way), and the one that
// holds the session cancels its query.

package pgwire

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
)

// Peers are the gateways of the same cluster or workgroup on the other
// replicas.
type Peers struct {
	// List returns their addresses (host:port), this replica's excluded.
	List func(ctx context.Context) ([]string, error)
	// Advertise, when set, tells the peers that this gateway takes their
	// forwarded cancels at addr from now on: while it drains, its
	// listeners are closed (so that the balancer sends clients
	// elsewhere) and it listens for its peers alone on a port of its own.
	// It reports whether the peers were told.
	Advertise func(addr net.Addr) bool

	mu      sync.Mutex
	addrs   []string
	fetched time.Time
	sem     chan struct{}
}

const (
	// codePeerCancel stands in a forwarded cancel request's version field:
	// 1234.5701, which no PostgreSQL client sends (5678–5680 are cancel,
	// SSL and GSS encryption requests). 1234.5700 was the format before
	// this one, which carried the client's key in the clear.
	codePeerCancel = 1234<<16 | 5701
	// A peer cancel: length and code, then the sending time (Unix ms) and
	// the client's address (16 bytes, IPv4 mapped; zero: unknown), which
	// are authenticated, a random nonce, and the client's process ID and
	// secret (4 bytes, or protocol 3.2's 32) sealed with AES-256-GCM under
	// the peer key (its tag last). The key is sealed, not only MAC'd: it
	// is good for its session's life, and whoever reads it on the path
	// between replicas could cancel that session's queries at will.
	peerCancelFixed = 8 + peerCancelClear + peerNonceLen + 4 + peerTagLen // without the secret
	peerCancelClear = 8 + 16
	peerNonceLen    = 12
	peerTagLen      = 16
	// peerCancelSkew is how far a peer cancel's time may be from ours.
	peerCancelSkew = 30 * time.Second
	// peersFresh is how long a fetched peer list is used.
	peersFresh = 5 * time.Second
	// peerForwards bounds the forwards in flight, so that a flood of
	// misses from many addresses costs little; peerDialTimeout bounds
	// each connection to a peer (a hung or vanished one holds a slot no
	// longer, and delays no other peer: each is dialled on its own).
	peerForwards    = 64
	peerDialTimeout = time.Second
)

// peerAEAD seals peer cancels under a key derived from the gateway secret
// (shared through the store by every replica), for this use only.
func (g *Gateway) peerAEAD() cipher.AEAD {
	m := hmac.New(sha256.New, g.Secret)
	m.Write([]byte("shiftkey peer cancel v3"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// peerAD is what a peer cancel's seal authenticates besides the key: this
// gateway's scope (a cancel meant for one cluster's gateways is no good at
// another's), the time and the client's address.
func (g *Gateway) peerAD(clear []byte) []byte {
	return append(append([]byte(g.Cluster), 0), clear...)
}

// peerCancelLen reports whether n is the length of a peer cancel: one
// with a secret of a length the gateway gives.
func peerCancelLen(n int) bool {
	return n == peerCancelFixed+shortSecret || n == peerCancelFixed+longSecret
}

// encodePeerCancel is the packet that forwards a cancel of pid and secret
// (of a length the gateway gives) that client (its address; "" unknown)
// sent.
func (g *Gateway) encodePeerCancel(pid uint32, secret []byte, client string, at time.Time) []byte {
	n := peerCancelFixed + len(secret)
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint32(b[:4], uint32(n))
	binary.BigEndian.PutUint32(b[4:], codePeerCancel)
	b = binary.BigEndian.AppendUint64(b, uint64(at.UnixMilli()))
	var addr [16]byte
	if a, err := netip.ParseAddr(client); err == nil {
		addr = a.As16()
	}
	b = append(b, addr[:]...)
	nonce := make([]byte, peerNonceLen)
	rand.Read(nonce)
	b = append(b, nonce...)
	key := binary.BigEndian.AppendUint32(make([]byte, 0, 8), pid)
	key = append(key, secret...)
	return g.peerAEAD().Seal(b, nonce, key, g.peerAD(b[8:8+peerCancelClear]))
}

// openPeerCancel returns the time, client address and cancel key of a peer
// cancel's body (after its length and code); ok false when it is not one
// sealed by a replica of this gateway.
func (g *Gateway) openPeerCancel(body []byte) (at time.Time, client netip.Addr, pid uint32, secret []byte, ok bool) {
	if !peerCancelLen(8 + len(body)) {
		return
	}
	clear, nonce, sealed := body[:peerCancelClear], body[peerCancelClear:peerCancelClear+peerNonceLen], body[peerCancelClear+peerNonceLen:]
	key, err := g.peerAEAD().Open(nil, nonce, sealed, g.peerAD(clear))
	if err != nil || len(key) < 4 {
		return
	}
	at = time.UnixMilli(int64(binary.BigEndian.Uint64(clear[:8])))
	client = netip.AddrFrom16([16]byte(clear[8:24])).Unmap()
	return at, client, binary.BigEndian.Uint32(key), key[4:], true
}

// peerAddrs returns the peers' addresses, fetched at most every peersFresh
// (the last list when fetching fails). The store is not read under p.mu:
// a slow store delays this forward, not others.
// With force, it fetches the list unless another forward just did. It
// reports whether the list came from an earlier fetch.
func (p *Peers) peerAddrs(ctx context.Context, g *Gateway, force bool) (addrs []string, cached bool) {
	p.mu.Lock()
	age := time.Since(p.fetched)
	addrs, fresh := p.addrs, age < peersFresh && (!force || age < peerRefetchGap)
	if !fresh {
		p.fetched = time.Now() // one fetch at a time; the others use the last list
	}
	p.mu.Unlock()
	if fresh {
		return addrs, true
	}
	got, err := p.List(ctx)
	if err != nil {
		g.logger().Warn("peer gateways not listed: cancel requests go no further than this replica", "error", err)
		return addrs, true
	}
	p.mu.Lock()
	p.addrs = got
	p.mu.Unlock()
	return got, false
}

// peerRefetchGap is how soon after a fetch a failed forward fetches the
// peer list again.
const peerRefetchGap = 100 * time.Millisecond

// forwardToPeers sends a cancel request that named no session here to the
// peers, in the background; each looks the key up among its own sessions.
// It reports false when too many forwards are in flight to start one. The
// forward is counted once over, by what became of it: forwarded when a
// peer took it, forward_failed when none could be reached (a replica
// died: the metric must not say the cancels went on), no_session when no
// peer was listed.
func (g *Gateway) forwardToPeers(log *slog.Logger, m *pgproto3.CancelRequest, client string) bool {
	p := g.Peers
	p.mu.Lock()
	if p.sem == nil {
		p.sem = make(chan struct{}, peerForwards)
	}
	sem := p.sem
	p.mu.Unlock()
	select {
	case sem <- struct{}{}:
	default:
		log.Debug("cancel request not forwarded to peers: too many forwards in flight")
		return false
	}
	packet := g.encodePeerCancel(m.ProcessID, m.SecretKey, client, g.now())
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-sem }()
		list := func(force bool) ([]string, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), peerDialTimeout)
			defer cancel()
			return p.peerAddrs(ctx, g, force)
		}
		addrs, cached := list(false)
		took, failed := g.sendToPeers(log, addrs, packet)
		if failed > 0 && cached {
			// A peer that refused may have moved (it drains, taking
			// forwards on a port of its own): send to the addresses that
			// are new in a fresh list.
			again, _ := list(true)
			again = slices.DeleteFunc(slices.Clone(again), func(a string) bool { return slices.Contains(addrs, a) }) // the list is shared
			t, f := g.sendToPeers(log, again, packet)
			took, failed = took+t, failed+f
		}
		switch {
		case took > 0:
			g.observeCancel(shiftkey.CancelForwarded)
		case failed > 0:
			g.observeCancel(shiftkey.CancelForwardFailed)
		default:
			g.observeCancel(shiftkey.CancelNoSession)
		}
	}()
	return true
}

// sendToPeers sends packet to every address at once, each dialled for at
// most peerDialTimeout, and reports how many peers took it and how many
// could not be sent it.
func (g *Gateway) sendToPeers(log *slog.Logger, addrs []string, packet []byte) (took, failed int) {
	ctx, cancel := context.WithTimeout(context.Background(), peerDialTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var taken, failures atomic.Int32
	for _, addr := range addrs {
		wg.Go(func() {
			var d net.Dialer // ctx bounds it
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				failures.Add(1)
				log.Warn("cancel request not forwarded to a peer", "peer", addr, "error", err)
				return
			}
			defer c.Close()
			// Closed once written: the peer reads the packet, then the
			// end of the stream, and answers nothing (as PostgreSQL).
			c.SetWriteDeadline(time.Now().Add(peerDialTimeout))
			if _, err := c.Write(packet); err != nil {
				failures.Add(1)
				log.Warn("cancel request not forwarded to a peer", "peer", addr, "error", err)
				return
			}
			taken.Add(1)
			log.Debug("cancel request forwarded to a peer", "peer", addr)
		})
	}
	wg.Wait()
	return int(taken.Load()), int(failures.Load())
}

// peerCancel handles a cancel request another replica's gateway forwarded.
// One that does not authenticate counts as a cancel request for no session
// from the address that sent it; one that does is the client's own,
// counted against the client's address as if it had come here: each
// replica's budget of misses per address (cancelMissLimit) then covers
// the guesses sent to it and through every other replica.
func (g *Gateway) peerCancel(log *slog.Logger, source string, body []byte) {
	now := time.Now()
	if g.throttledCancels(log, source, now) {
		return
	}
	var (
		at     time.Time
		addr   netip.Addr
		pid    uint32
		secret []byte
		ok     bool
	)
	if g.Peers != nil {
		at, addr, pid, secret, ok = g.openPeerCancel(body)
	}
	if !ok {
		if g.peerRefusals.Add(1) == 1 || now.Sub(time.Unix(0, g.peerRefusedAt.Load())) >= failNoticeEvery {
			g.peerRefusedAt.Store(now.UnixNano())
			log.Warn("peer cancel request refused: not from a replica of this gateway (or its gateway secret differs)", "refused_since_start", g.peerRefusals.Load())
		}
		g.missedCancel(log, source, now)
		g.observeCancel(shiftkey.CancelPeerRefused)
		return
	}
	ours := g.now()
	if d := ours.Sub(at); d > peerCancelSkew || d < -peerCancelSkew {
		log.Warn("peer cancel request refused: its time is too far from ours", "sent", at)
		g.observeCancel(shiftkey.CancelPeerRefused)
		return
	}
	// The packet crossed the network, where it can be copied: a copy
	// replayed within its window is dropped, charged to no one. The
	// client was charged when the original came, and charging the
	// sender's address (a genuine peer's, as far as it can tell) would
	// hold back every client's forwards.
	if !g.peerSeen.first(sha256.Sum256(body), at.Add(peerCancelSkew), ours) {
		log.Debug("peer cancel request dropped: already taken")
		g.observeCancel(shiftkey.CancelPeerRefused)
		return
	}
	client := source
	if addr.IsValid() && !addr.IsUnspecified() {
		client = addr.String()
	}
	if g.throttledCancels(log, client, now) {
		return
	}
	if g.cancelByKey(log, pid, secret, true) {
		g.observeCancel(shiftkey.CancelPeerSent)
		return
	}
	g.missedCancel(log, client, now)
	g.observeCancel(shiftkey.CancelPeerNoSession)
}

// failNoticeEvery is how often refused peer cancels are logged at most
// (a flood from many addresses would otherwise log one line each).
const failNoticeEvery = 10 * time.Second

// takePeerCancels listens, on the host of the closed listener at, for the
// cancels the peers forward to this draining gateway, and tells them where
// (Peers.Advertise). Clients cannot reach it (the balancer knows only the
// closed port); anything but a peer cancel is closed unanswered. The
// returned function stops it.
func (g *Gateway) takePeerCancels(at net.Addr) (stop func()) {
	if g.Peers == nil || g.Peers.Advertise == nil {
		return func() {}
	}
	ta, ok := at.(*net.TCPAddr)
	if !ok {
		return func() {}
	}
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ta.IP, Zone: ta.Zone})
	if err != nil {
		g.logger().Warn("draining: no port for the peers' cancel requests; this replica's queries cannot be cancelled until its sessions end", "error", err)
		return func() {}
	}
	if !g.Peers.Advertise(l.Addr()) {
		l.Close()
		return func() {}
	}
	g.logger().Info("draining: peers' cancel requests taken on a port of their own", "address", l.Addr().String())
	var wg sync.WaitGroup
	wg.Go(func() {
		sem := make(chan struct{}, peerForwards)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case sem <- struct{}{}:
			default:
				c.Close() // a flood: peers are few and write one packet
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				defer c.Close()
				g.takePeerCancel(c)
			})
		}
	})
	return func() {
		l.Close()
		wg.Wait()
	}
}

// takePeerCancel reads one peer cancel from c, as the listener's sessions
// do, and nothing else.
func (g *Gateway) takePeerCancel(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(peerDialTimeout))
	var b [peerCancelFixed + longSecret]byte
	if _, err := io.ReadFull(c, b[:8]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint32(b[:4]))
	if !peerCancelLen(n) || binary.BigEndian.Uint32(b[4:8]) != codePeerCancel {
		return
	}
	if _, err := io.ReadFull(c, b[8:n]); err != nil {
		return
	}
	g.peerCancel(g.logger().With("remote", c.RemoteAddr().String()), sourceOf(c.RemoteAddr()), b[8:n])
}

// peerSeen remembers the hashes of the peer cancels taken until their
// time is past the skew: a replay within it is dropped.
type peerSeen struct {
	mu      sync.Mutex
	until   map[[sha256.Size]byte]time.Time
	pruneAt int
}

// first records sum, good until until, and reports whether it is new.
func (p *peerSeen) first(sum [sha256.Size]byte, until, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = map[[sha256.Size]byte]time.Time{}
	}
	if _, seen := p.until[sum]; seen {
		return false
	}
	// Only packets a peer sealed get here, each for a miss its client
	// was charged for; forgotten once expired, scanned for them no more
	// often than the map doubles.
	if len(p.until) >= p.pruneAt {
		for k, u := range p.until {
			if now.After(u) {
				delete(p.until, k)
			}
		}
		p.pruneAt = max(1024, 2*len(p.until))
	}
	p.until[sum] = until
	return true
}
