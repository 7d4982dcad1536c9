package pgbackend

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ForGateway is b with the calls the gateway makes of it (pgwire.Backend),
// in types of the standard library and pgproto3 only, so that the gateway
// does not depend on this package.
func (b *Backend) ForGateway() GatewayBackend { return GatewayBackend{b} }

// GatewayBackend is a Backend as the gateway sees it.
type GatewayBackend struct{ b *Backend }

// Prepare is Backend.Prepare, with the notices' messages.
func (g GatewayBackend) Prepare(ctx context.Context, role string, autoCreate bool, groups []string) (interface{ Release(context.Context) }, []string, error) {
	lease, notices, err := g.b.Prepare(ctx, role, autoCreate, groups)
	if err != nil {
		return nil, nil, err
	}
	msgs := make([]string, len(notices))
	for i, n := range notices {
		msgs[i] = n.Message
	}
	return lease, msgs, nil
}

// Connect is Backend.Connect, with the connection's parts apart.
func (g GatewayBackend) Connect(ctx context.Context, role, db string, params map[string]string) (net.Conn, *pgproto3.BackendKeyData, map[string]string, error) {
	c, err := g.b.Connect(ctx, role, db, params)
	if err != nil {
		return nil, nil, nil, err
	}
	status := make(map[string]string, len(c.Params))
	for _, p := range c.Params {
		status[p.Name] = p.Value
	}
	return c.Conn, c.KeyData, status, nil
}

// Cancel is Backend.Cancel.
func (g GatewayBackend) Cancel(ctx context.Context, key *pgproto3.BackendKeyData) error {
	return g.b.Cancel(ctx, key)
}

// RefusedRole says that the error refuses the session role itself, and
// why (pgwire.RefusedRole).
func (e *RefusedError) RefusedRole() (role, reason string) { return e.Role, e.Reason }

// AdminRefused says what the admin role was refused, and why, for the
// client (pgwire.AdminRefused).
func (e *PrivilegeError) AdminRefused() string {
	msg := e.Err.Error()
	var pe *pgconn.PgError
	if errors.As(e.Err, &pe) {
		msg = pe.Message
	}
	return fmt.Sprintf("could not %s for the session: the gateway's admin role lacks the privilege (%s)", e.What, msg)
}

// BackendResponse is the backend's own answer, for the client as it is
// (pgwire.BackendRefused).
func (e *StartupError) BackendResponse() *pgproto3.ErrorResponse { return e.Response }
