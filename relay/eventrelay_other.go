//go:build !linux

package relay

import (
	"errors"
	"net"
	"time"
)

// EventRelay is Linux only; elsewhere every session uses the goroutine
// relay.
type EventRelay struct{}

// Supported reports whether this platform has the event relay.
const Supported = false

// New fails outside Linux.
func New(Config) (*EventRelay, error) {
	return nil, errors.New("the event relay needs Linux")
}

// Engine is "".
func (r *EventRelay) Engine() string { return "" }

// Sched is "".
func (r *EventRelay) Sched() string { return "" }

// Started is always 0.
func (r *EventRelay) Started() int64 { return 0 }

// Stats are all zero.
func (r *EventRelay) Stats() Stats { return Stats{} }

// Close does nothing.
func (r *EventRelay) Close() error { return nil }

// Start fails: there is no event relay to start on.
func (r *EventRelay) Start(Session) (Kill, error) { return nil, errors.ErrUnsupported }

// PlainSocket is false: no socket goes to an event relay here.
func PlainSocket(net.Conn) bool { return false }

// Bare sockets exist only with the event relay.
func FDConn(int) (net.Conn, error) { return nil, errors.ErrUnsupported }

// CloseFD does nothing: there are no bare sockets here.
func CloseFD(int) {}

// ReadFD fails: there are no bare sockets here.
func ReadFD(int, []byte, time.Time) (int, error) { return 0, errors.ErrUnsupported }

// FDAlive is false: there are no bare sockets here.
func FDAlive(int) bool { return false }

// ConnAlive cannot tell here: a dead backend shows at first use.
func ConnAlive(net.Conn) bool { return true }

// RawIO returns c: raw system calls are used on Linux only.
func RawIO(c net.Conn) net.Conn { return c }
