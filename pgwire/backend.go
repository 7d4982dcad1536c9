package pgwire

import (
	"context"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Backend is what the gateway needs of the PostgreSQL server behind it
// (pgbackend.Backend.ForGateway; a scripted fake in the tests).
type Backend interface {
	// Prepare readies role for a session: creates it when autoCreate is
	// set, grants it groups. The lease is released once, when the session
	// ends; the notices go to the client. An error that is a RefusedRole
	// refuses the role itself; one that is a BackendRefused is the
	// backend's own answer, for the client as it is.
	Prepare(ctx context.Context, role string, autoCreate bool, groups []string) (lease Lease, notices []string, err error)
	// Connect logs in to db as role with the startup parameters params.
	// It returns the connection after its first ReadyForQuery, the key
	// that cancels its queries (nil: none) and the parameter statuses it
	// reported. An error that is a BackendRefused is the backend's own
	// answer, for the client as it is.
	Connect(ctx context.Context, role, db string, params map[string]string) (conn net.Conn, key *pgproto3.BackendKeyData, status map[string]string, err error)
	// Cancel asks the backend to cancel the query running on the
	// connection whose key this is.
	Cancel(ctx context.Context, key *pgproto3.BackendKeyData) error
}

// Lease is what a prepared session holds on the backend (an unnamed type,
// so that a backend can return one without importing this package).
type Lease = interface{ Release(ctx context.Context) }

// GroupCuts is a Lease whose groups the backend may revoke while the
// session lives, as one turned unsafe (pgbackend: CREATE on a schema given
// to it since): OnGroupCut's f is called, once, when that happens (at once
// if it did already). The gateway then ends the session, which may have
// run SET ROLE to the group and would keep acting as it after the REVOKE.
// f must not block: the backend may call it holding the role's lock.
type GroupCuts interface {
	OnGroupCut(f func(group, why string))
}

// RefusedRole is an error of Backend.Prepare that refuses the session role
// itself (shiftkey's provisioning role, a superuser…): the client is told
// why, with SQLSTATE 28000.
type RefusedRole interface {
	error
	RefusedRole() (role, reason string)
}

// AdminRefused is an error of Backend.Prepare: the backend refused
// shiftkey's admin role a step the session needs for want of a privilege
// (a GRANT of its group once CREATEROLE was revoked). The client is told
// what, with SQLSTATE 42501: an operator's to fix, not a connection
// failure that drivers would retry.
type AdminRefused interface {
	error
	AdminRefused() (message string)
}

// BackendRefused is an error of Backend.Connect (or Backend.Prepare) that
// carries the backend's own ErrorResponse (role does not exist, too many
// connections, still starting up…), for the client as it is.
type BackendRefused interface {
	error
	BackendResponse() *pgproto3.ErrorResponse
}
