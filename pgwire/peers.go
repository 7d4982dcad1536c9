// Cancel requests across replicas: a client cancels on a new connection,
// which a load balancer may send to any replica. One whose key names no
// session here is passed on to this gateway's peers on the other
// replicas, authenticated with a key every replica shares, and the one
// that holds the session cancels its query.

package pgwire

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Peers are the gateways of the same cluster or workgroup on the other
// replicas.
type Peers struct {
	// List returns their addresses (host:port), this replica's excluded.
	List func(ctx context.Context) ([]string, error)

	mu      sync.Mutex
	addrs   []string
	fetched time.Time
	sem     chan struct{}
}

const (
	// codePeerCancel stands in a forwarded cancel request's version field:
	// 1234.5700, which no PostgreSQL client sends (5678–5680 are cancel,
	// SSL and GSS encryption requests).
	codePeerCancel = 1234<<16 | 5700
	// A peer cancel: length and code, the sending time (Unix ms), the
	// client's process ID and secret, and the MAC of all that.
	peerCancelLen = 8 + 8 + 4 + 4 + sha256.Size
	// peerCancelSkew is how far a peer cancel's time may be from ours.
	peerCancelSkew = 30 * time.Second
	// peersFresh is how long a fetched peer list is used.
	peersFresh = 5 * time.Second
	// peerForwards bounds the forwards in flight (each a dial and a write),
	// so that a flood of misses from many addresses costs little.
	peerForwards = 16
)

// peerKey keys the MACs of peer cancels: derived from the gateway secret
// (shared through the store by every replica), for this use only.
func (g *Gateway) peerKey() []byte {
	m := hmac.New(sha256.New, g.Secret)
	m.Write([]byte("shiftkey peer cancel v1"))
	return m.Sum(nil)
}

// peerMAC authenticates a peer cancel for this gateway's scope: a cancel
// meant for one cluster's gateways is no good at another's.
func (g *Gateway) peerMAC(fields []byte) []byte {
	m := hmac.New(sha256.New, g.peerKey())
	m.Write([]byte(g.Cluster))
	m.Write([]byte{0})
	m.Write(fields)
	return m.Sum(nil)
}

// encodePeerCancel is the packet that forwards a cancel of pid and secret.
func (g *Gateway) encodePeerCancel(pid uint32, secret []byte, at time.Time) []byte {
	b := make([]byte, 8, peerCancelLen)
	binary.BigEndian.PutUint32(b[:4], peerCancelLen)
	binary.BigEndian.PutUint32(b[4:], codePeerCancel)
	b = binary.BigEndian.AppendUint64(b, uint64(at.UnixMilli()))
	b = binary.BigEndian.AppendUint32(b, pid)
	b = append(b, secret...)
	return append(b, g.peerMAC(b[8:])...)
}

// peerAddrs returns the peers' addresses, fetched at most every peersFresh
// (the last list when fetching fails).
func (p *Peers) peerAddrs(ctx context.Context, g *Gateway) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.fetched) < peersFresh {
		return p.addrs
	}
	addrs, err := p.List(ctx)
	p.fetched = time.Now()
	if err != nil {
		g.logger().Warn("peer gateways not listed: cancel requests go no further than this replica", "error", err)
		return p.addrs
	}
	p.addrs = addrs
	return addrs
}

// forwardToPeers sends a cancel request that named no session here to the
// peers, in the background; each looks the key up among its own sessions.
func (g *Gateway) forwardToPeers(log *slog.Logger, m *pgproto3.CancelRequest) {
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
		return
	}
	packet := g.encodePeerCancel(m.ProcessID, m.SecretKey, g.now())
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-sem }()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var d net.Dialer
		for _, addr := range p.peerAddrs(ctx, g) {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				log.Warn("cancel request not forwarded to a peer", "peer", addr, "error", err)
				continue
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write(packet); err != nil {
				log.Warn("cancel request not forwarded to a peer", "peer", addr, "error", err)
			} else {
				// The peer closes once it has handled it, as PostgreSQL does.
				c.Read(make([]byte, 1))
				log.Debug("cancel request forwarded to a peer", "peer", addr)
			}
			c.Close()
		}
	}()
}

// peerCancel handles a cancel request another replica's gateway forwarded.
// One that does not authenticate counts as a cancel request for no session
// (cancelMissLimit); one that does is trusted as the client's own request,
// which the sending replica has counted already.
func (g *Gateway) peerCancel(from *session, body []byte) {
	log := g.logger().With("conn_id", from.id, "remote", from.remote)
	source, now := from.source, time.Now()
	if g.misses.count(source, now) >= cancelMissLimit {
		log.Debug("peer cancel request dropped: too many for no session from this address")
		return
	}
	if g.Peers == nil || len(body) != peerCancelLen-8 || !hmac.Equal(body[16:], g.peerMAC(body[:16])) {
		log.Warn("peer cancel request refused: not from a replica of this gateway (or its gateway secret differs)")
		g.misses.add(source, now)
		return
	}
	at := time.UnixMilli(int64(binary.BigEndian.Uint64(body[:8])))
	if d := g.now().Sub(at); d > peerCancelSkew || d < -peerCancelSkew {
		log.Warn("peer cancel request refused: its time is too far from ours", "sent", at)
		return
	}
	g.cancelByKey(log, binary.BigEndian.Uint32(body[8:12]), body[12:16], true)
}
