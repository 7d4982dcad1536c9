package pgwire

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The newest clients' ways of connecting, through pgx (which speaks them
// as libpq 17 and 18 do): PostgreSQL 17's direct TLS (sslnegotiation=direct,
// ALPN postgresql) and protocol 3.2 (max_protocol_version=3.2 or latest,
// spoken, with its 256-bit cancel keys), each logging in and cancelling a
// query with the key the gateway issued, on every relay. Held on main; pinned by a review
// of the wire protocol's edges.
func TestNewestClientsLogInAndCancel(t *testing.T) {
	for _, engine := range []string{"goroutine", EngineEpoll, EngineIOURing} {
		t.Run(engine, func(t *testing.T) {
			cfg, _ := testTLS(t)
			g, addr := newGateway(t, func(g *Gateway) {
				g.TLS, g.RequireTLS = cfg, true
				if engine != "goroutine" {
					g.Relay = eventRelay(t, 2, engine)
				}
			})
			if g.Relay != nil {
				t.Cleanup(func() {
					if st := g.Relay.Stats(); st.StartedTLS != 3 || st.Started != 3 {
						t.Errorf("%d sessions on the event relay, %d with TLS; want 3 with TLS", st.Started, st.StartedTLS)
					}
				})
			}
			admin := superuser(t, g.DefaultDB)
			host, port, _ := net.SplitHostPort(addr)
			for _, opts := range []string{
				"sslnegotiation=direct",
				"sslnegotiation=postgres max_protocol_version=3.2",
				"sslnegotiation=direct max_protocol_version=latest",
			} {
				c, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=require connect_timeout=30 %s", host, port, opts))
				if err != nil {
					t.Fatalf("%s: %v", opts, err)
				}
				tc, ok := c.PgConn().Conn().(*tls.Conn)
				if !ok || strings.Contains(opts, "direct") && tc.ConnectionState().NegotiatedProtocol != "postgresql" {
					t.Fatalf("%s: not over TLS (direct: with ALPN postgresql)", opts)
				}
				err = sleepWhileCancelling(t, c, admin, func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := c.PgConn().CancelRequest(ctx); err != nil {
						t.Fatalf("%s: cancel request: %v", opts, err)
					}
				})
				if code(err) != "57014" {
					t.Fatalf("%s: query ended with %v, want 57014", opts, err)
				}
				c.Close(context.Background())
			}
		})
	}
}
