//go:build linux && !(amd64 || arm64)

package relay

import "errors"

// newURingLoop: the io_uring engine's buffer ring is written for
// little-endian amd64 and arm64; elsewhere the relay runs on epoll.
func newURingLoop(*EventRelay) (relayLoop, error) {
	return nil, errors.New("io_uring engine: amd64 and arm64 only")
}
