package relay

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Framed relays with a goroutine per direction, telling t every chunk, so
// that a session whose client says goodbye while its backend is clean
// leaves a connection that can be reset and reused: kept reports that, and
// then backend is left open (and t.Keeping called); otherwise both are
// closed. It serves sessions the event relay cannot take (TLS to the
// backend, client TLS other than 1.3 with AES-GCM, bytes read ahead at the
// hand-off), and every session without one.
func Framed(client, backend net.Conn, t Tracker) (up, down int64, kept bool) {
	done := make(chan struct{})
	spoiled := false // bytes for the client were lost
	var clientLeft atomic.Bool
	go func() {
		defer close(done)
		// When the backend is gone (after its FATAL, say), so is the
		// session: closing the client ends the read below, and tells the
		// client at once rather than at its next write.
		defer client.Close()
		down, spoiled = fromBackend(client, backend, t, &clientLeft)
	}()

	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			fwd, end := t.FromClient(buf[:n])
			if fwd > 0 {
				if _, werr := backend.Write(buf[:fwd]); werr != nil {
					break
				}
				up += int64(fwd)
			}
			if end {
				clientLeft.Store(true)
				break
			}
		}
		if err != nil {
			clientLeft.Store(true)
			break
		}
	}
	// Past a failed write to the backend the client still listens: the
	// backend's end gives it the farewell.
	clean := t.Clean()
	if clean {
		// The backend owes nothing: stop the other direction without
		// closing the connection.
		backend.SetReadDeadline(time.Now())
	} else {
		backend.Close()
	}
	client.Close()
	<-done
	backend.SetReadDeadline(time.Time{})
	// A write to the client that failed, or a backend that spoke after
	// all, spoils what looked clean.
	kept = clean && !spoiled && t.Clean()
	if kept {
		t.Keeping()
	} else if clean {
		backend.Close()
	}
	return up, down, kept
}

// Pipe copies bytes both ways until either side closes, then closes both
// (once each), and returns the byte counts client→backend and
// backend→client. What the backend sends goes through t, so that a backend
// that stops without a word leaves the client t's farewell (BackendEnded);
// t sees nothing of the client's side, as Pipe keeps no backend.
func Pipe(client, backend net.Conn, t Tracker) (up, down int64) {
	done := make(chan int64, 1)
	var clientLeft atomic.Bool
	go func() {
		n, err := io.Copy(backend, client)
		// The client is gone (or the backend is: then the other copy
		// sees it too, and the client still gets the farewell): closing
		// the backend ends the other copy.
		if err == nil {
			clientLeft.Store(true) // it closed its side
		}
		backend.Close()
		done <- n
	}()
	down, _ = fromBackend(client, backend, t, &clientLeft)
	// The backend is gone, or closed above: closing the client ends the
	// first copy, if it still runs.
	client.Close()
	up = <-done
	return up, down
}

// fromBackend copies what backend sends to client, through t, until the
// backend's stream ends or a write to the client fails (spoiled). When the
// stream ends, the client gets t's farewell (Tracker.BackendEnded) unless
// it has left. n is how many of the backend's bytes reached the client.
func fromBackend(client, backend net.Conn, t Tracker, clientLeft *atomic.Bool) (n int64, spoiled bool) {
	buf := make([]byte, 32<<10)
	for {
		k, err := backend.Read(buf)
		if k > 0 {
			t.FromBackend(buf[:k])
			if _, werr := client.Write(buf[:k]); werr != nil {
				return n, true
			}
			n += int64(k)
		}
		if err != nil {
			if bye := t.BackendEnded(); len(bye) > 0 && !clientLeft.Load() {
				client.Write(bye)
			}
			return n, false
		}
	}
}
