//go:build !linux

package pgwire

import (
	"errors"
	"net"
)

// EventRelay is Linux only; elsewhere every session uses the goroutine
// relay.
type EventRelay struct{}

// EventRelaySupported reports whether this platform has the event relay.
const EventRelaySupported = false

// NewEventRelay fails outside Linux.
func NewEventRelay(RelayConfig) (*EventRelay, error) {
	return nil, errors.New("the event relay needs Linux")
}

// Engine is "".
func (r *EventRelay) Engine() string { return "" }

// Sched is "".
func (r *EventRelay) Sched() string { return "" }

// Started is always 0.
func (r *EventRelay) Started() int64 { return 0 }

// Close does nothing.
func (r *EventRelay) Close() error { return nil }

type evSession struct{}

func (*evSession) kill() {}

func (r *EventRelay) start(net.Conn, *pooledConn, *relayState, func(int), func(int64, int64)) (*evSession, error) {
	return nil, errors.ErrUnsupported
}

func plainSocket(net.Conn) bool { return false }

// Bare sockets exist only with the event relay.
func fdConn(int) (net.Conn, error) { return nil, errors.ErrUnsupported }
func closeFD(int)                  {}
func fdAlive(int) bool             { return false }

// connAlive cannot tell here: a dead backend shows at first use.
func connAlive(net.Conn) bool { return true }
