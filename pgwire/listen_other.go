//go:build !linux

package pgwire

import "net"

// listenConfig has Go set TCP keepalive on each accepted connection, with
// the system's timings.
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}
}
