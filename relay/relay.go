// Package relay moves the bytes of a session between its client and its
// backend once the gateway has logged it in: a goroutine per direction
// (Framed, Pipe), or the event loops of an EventRelay (epoll or io_uring,
// Linux only). It knows nothing of the protocol: a Tracker, given every
// chunk, says where the client's last message ends and whether the backend
// was left in a state that a reset message can clear.
package relay

import "net"

// Event relay engines (Config.Engine).
const (
	EngineIOURing = "io_uring"
	EngineEpoll   = "epoll"
)

// Scheduling policies for the event loops' threads (Config.Sched).
const (
	// SchedBatch runs the loops' threads as SCHED_BATCH while their sends
	// keep up. A loop woken by data then does not preempt the task running
	// on its CPU (a backend about to sleep in its next read, say) but runs
	// when that task sleeps, when another CPU is free, or at the task's
	// next scheduler tick. On a busy machine that saves a pair of context
	// switches a message, and the loop finds more completions waiting. From
	// a send that has to wait for a slow reader until none has for a moment
	// (schedCalm), a loop runs SCHED_OTHER: one feeding bulk results to
	// clients that keep the CPUs busy must preempt them.
	SchedBatch = "batch"
	// SchedNormal leaves them SCHED_OTHER, like the rest of the process:
	// a woken loop may preempt the running task at once.
	SchedNormal = "normal"
	// SchedProcess is SchedBatch for the loops, and SCHED_BATCH for every
	// other thread of the process too (those that run the logins, the
	// API, the goroutine relay), from New on: a session's goroutine that
	// sends on loopback then does not hand its CPU to the woken client or
	// PostgreSQL at once either. Measured on a 2-core VM, pgx logins at
	// c=16 in paired runs (bench/gateway/README.md): 10-16 % less CPU per
	// login, 1.5-1.7 against 2.3-4.1 voluntary context switches. The
	// cost: a woken thread of the process waits for the running task's
	// sleep or tick (a few ms at most) when every CPU is busy.
	SchedProcess = "process"
)

// Config configures an event relay.
type Config struct {
	Threads int    // event loops (at least one)
	Engine  string // EngineIOURing, EngineEpoll, or "": io_uring where this kernel allows it, else epoll
	Sched   string // SchedBatch (also ""), or SchedNormal
}

// Tracker follows the protocol of one session for a relay, which calls it
// with every chunk it moves, from one goroutine at a time or with its own
// locking.
type Tracker interface {
	// FromClient sees a chunk from the client. When the chunk holds the
	// client's goodbye, end is true and forward is how many bytes precede
	// it: those go to the backend, the goodbye does not (the backend stays
	// open for the next session).
	FromClient(chunk []byte) (forward int, end bool)
	// FromBackend sees a chunk from the backend.
	FromBackend(chunk []byte)
	// BackendEnded records that the backend's stream stopped (it hung up,
	// or its TLS record did not open). What it returns goes to the client
	// before the client's connection closes: the error that tells a client
	// why, when the backend left without saying so itself.
	BackendEnded() (farewell []byte)
	// Clean reports whether the backend owes nothing and holds nothing a
	// reset cannot clear.
	Clean() bool
	// Keeping is called once the relay keeps a backend the client left
	// clean, before its reset.
	Keeping()
}

// Stats are an event relay's counters.
type Stats struct {
	Started    int64 // sessions carried
	StartedTLS int64 // of which with a TLS client (a record layer on the loop)
	// StartedBackendTLS: of which with a TLS backend (a record layer on
	// the loop for the backend's side).
	StartedBackendTLS int64
	Running           bool  // the loops have started (with the first session)
	PerLoop           []int // sessions on each loop now
	// Writes a socket did not take whole (on io_uring, also chunks queued
	// behind a send in flight): the back-pressure paths.
	BackloggedToClient, BackloggedToBackend int64
}

// Kill ends a session of an event relay from outside (a cut: lifetime,
// revocation, shutdown). Gently, only the backend's side is closed: the
// relay ends the session as for a backend that hung up, the client getting
// the Tracker's farewell (BackendEnded) first if it keeps up; a client
// that does not read holds the session until a Kill that is not gentle,
// which ends it at once.
type Kill func(gently bool)

// Session is a logged-in session for an event relay.
type Session struct {
	Client net.Conn // a plain socket (PlainSocket)
	// ClientTLS, when set, is the TLS 1.3 connection the client socket
	// carries, its handshake done (TLSTap.Keys): the loop opens and seals
	// its records.
	ClientTLS *TLSKeys
	// Backend is a plain socket, or nil for the bare socket BackendFD (one
	// that Keep was given).
	Backend   net.Conn
	BackendFD int
	// BackendTLS, when set, is the TLS 1.3 connection the backend socket
	// carries (TLSTap.Keys of a tap under the tls.Client, or what Keep was
	// given): the loop opens the backend's records and seals what goes to
	// it.
	BackendTLS *TLSKeys
	Tracker    Tracker
	// Keep, when set, takes the backend of a session that ended clean:
	// its socket, or -1 when it was not kept after all, and with
	// BackendTLS, its record state after the reset (nil otherwise). The
	// relay has sent
	// it Reset, but not read the answer, which the taker must read and
	// judge before the socket serves again: a loop that waited for it
	// would wake once more per session, and the answer is there by the
	// time the socket is taken.
	Keep  func(fd int, backendTLS *TLSKeys)
	Reset []byte
	// End is called when the session is over, with the bytes moved each
	// way. End and Keep run off the loops, one at a time, on a goroutine
	// of the relay's that serves every session: they must not block.
	End func(up, down int64)
}
