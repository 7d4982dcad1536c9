package devenv

import (
	"context"
	"net"
	"strconv"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/server"
)

// devGateways opens the gateways of the backends dev's provisioner runs,
// on the dev gateway's host, or the host hosts names for their scope
// (default-workgroup's, from --workgroup-addr).
type devGateways struct {
	d      *Dev
	secret []byte
	hosts  map[string]string
}

var _ pgserver.Gateways = devGateways{}

// Listen opens port; when another endpoint already has it (dev-cluster
// holds 5439) it takes a free port instead, which the API then reports.
func (g devGateways) Listen(scope string, port int) (net.Listener, shiftkey.Endpoint, error) {
	host, _, err := net.SplitHostPort(g.d.GatewayAddr)
	if err != nil {
		return nil, shiftkey.Endpoint{}, err
	}
	if h, ok := g.hosts[scope]; ok {
		host = h
	}
	ln, err := pgwire.Listen(net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		g.d.Logger.Warn("requested port is taken; using a free one", "port", port, "error", err)
		ln, err = pgwire.Listen(net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return nil, shiftkey.Endpoint{}, err
	}
	return ln, pgwire.Advertised(ln.Addr()), nil
}

func (g devGateways) Start(ctx context.Context, gw pgserver.Gateway, ln net.Listener) error {
	return g.d.StartGateway(ctx, server.Gateway{Scope: gw.Scope, Region: gw.Region, DB: gw.Database, Backend: gw.Backend, Master: gw.MasterUser, AllowSuperuser: gw.AllowSuperuser}, ln, g.secret)
}

func (g devGateways) Stop(scope string) { g.d.StopGateway(scope) }

func (g devGateways) Remove(scope string) { g.d.RemoveGateway(scope) }
