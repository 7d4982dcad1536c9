package pgwire

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Gateways are the running gateways of one process, by credential scope (a
// cluster identifier or a workgroup's credential scope). They route a TLS
// server name to the gateway of the cluster or workgroup its custom domain
// is associated with, so that a client reaches any of them by name through
// any gateway port.
type Gateways[O Owner] struct {
	Domains    shiftkey.CustomDomainStore
	Workgroups interface {
		Workgroup(ctx context.Context, name string) (*shiftkey.Workgroup, error)
	}
	// Grace is how long Stop lets sessions finish (0: 2 s).
	Grace  time.Duration
	Logger *slog.Logger // nil → discard

	mu      sync.Mutex
	running map[string]*running[O]
}

// running is one served gateway and what it owns.
type running[O Owner] struct {
	gw    *Gateway
	owner O
	done  chan struct{}
}

// Owner is what a gateway's backend holds beyond the gateway (its admin
// pool), closed once the gateway has stopped; Gateways hands it back
// typed (Each, Owners).
type Owner interface{ Close() }

// Serve serves gw on ln under scope, routing by server name through g.
// owner is closed after the gateway stops.
func (g *Gateways[O]) Serve(scope string, gw *Gateway, ln net.Listener, owner O) {
	gw.Route = g.Route
	r := &running[O]{gw: gw, owner: owner, done: make(chan struct{})}
	g.mu.Lock()
	if g.running == nil {
		g.running = map[string]*running[O]{}
	}
	g.running[scope] = r
	g.mu.Unlock()
	g.logger().Info("gateway listening", "scope", scope, "listen", ln.Addr().String())
	go func() {
		defer close(r.done)
		if err := gw.Serve(ln); err != nil {
			g.logger().Error("gateway stopped", "scope", scope, "error", err)
		}
	}()
}

// Route maps a TLS server name to the gateway of its custom domain.
func (g *Gateways[O]) Route(ctx context.Context, name string) (*Gateway, bool) {
	d, err := g.Domains.CustomDomain(ctx, name)
	if err != nil {
		return nil, false
	}
	scope := d.Target
	if d.Kind == shiftkey.DomainWorkgroup {
		w, err := g.Workgroups.Workgroup(ctx, d.Target)
		if err != nil {
			return nil, false
		}
		scope = w.CredentialScope()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.running[scope]
	if !ok {
		return nil, false
	}
	return r.gw, true
}

// Known reports whether a TLS server name is a custom domain, so that the
// certificate callback may answer it.
func (g *Gateways[O]) Known(name string) bool {
	_, err := g.Domains.CustomDomain(context.Background(), name)
	return err == nil
}

// Owners are the owners of the running gateways.
func (g *Gateways[O]) Owners() []O {
	var out []O
	g.Each(func(_ string, _ *Gateway, o O) { out = append(out, o) })
	return out
}

// Each calls fn for every running gateway, by scope, outside the lock.
func (g *Gateways[O]) Each(fn func(scope string, gw *Gateway, owner O)) {
	g.mu.Lock()
	rs := make(map[string]*running[O], len(g.running))
	maps.Copy(rs, g.running)
	g.mu.Unlock()
	for _, scope := range slices.Sorted(maps.Keys(rs)) {
		fn(scope, rs[scope].gw, rs[scope].owner)
	}
}

// Stop shuts the gateway of scope down, letting its sessions run up to
// Grace, then closes its owner.
func (g *Gateways[O]) Stop(scope string) {
	ctx, cancel := context.WithTimeout(context.Background(), g.grace())
	defer cancel()
	g.drain(ctx, scope)
}

// Drain stops every gateway accepting at once, lets their sessions run
// until they end or ctx is done, cuts those left and closes the owners: N
// gateways take one grace period, not N.
func (g *Gateways[O]) Drain(ctx context.Context) {
	g.mu.Lock()
	scopes := make([]string, 0, len(g.running))
	for scope := range g.running {
		scopes = append(scopes, scope)
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, scope := range scopes {
		wg.Go(func() { g.drain(ctx, scope) })
	}
	wg.Wait()
}

func (g *Gateways[O]) grace() time.Duration {
	if g.Grace == 0 {
		return 2 * time.Second
	}
	return g.Grace
}

func (g *Gateways[O]) drain(ctx context.Context, scope string) {
	g.mu.Lock()
	r := g.running[scope]
	delete(g.running, scope)
	g.mu.Unlock()
	if r == nil {
		return
	}
	if n := r.gw.Shutdown(ctx); n > 0 {
		g.logger().Info("sessions cut at shutdown", "scope", scope, "count", n)
	}
	<-r.done
	r.owner.Close()
}

func (g *Gateways[O]) logger() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

// Advertised is the endpoint clients should use for a listener address.
func Advertised(a net.Addr) shiftkey.Endpoint {
	ta := a.(*net.TCPAddr)
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return shiftkey.Endpoint{Address: host, Port: ta.Port}
}

// Listen listens for PostgreSQL clients. Accepted connections get
// TCP keepalive with the system's timings (as PgBouncer's tcp_keepalive):
// Go's own timings would cost three more system calls per connection.
// Where accepted sockets inherit SO_KEEPALIVE from the listening socket
// (Linux), it is set there once rather than on every connection.
func Listen(addr string) (net.Listener, error) {
	return listenConfig().Listen(context.Background(), "tcp", addr)
}
