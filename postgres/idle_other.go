//go:build !unix

package postgres

import "net"

// closedByServer is not checked here: a query on a closed connection fails
// and is retried only when pgx knows it was not sent (pgconn.SafeToRetry).
func closedByServer(net.Conn) bool { return false }
