package relay

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EventRelay moves the bytes of plaintext sessions on a few locked OS
// threads, each running an event loop, as PgBouncer does: no goroutine and
// no buffer per idle session. A session's two sockets leave Go's netpoller
// (dup, then close of the net.Conn); the loop ends the session (End), and
// resets a backend the client left clean with the session's Reset message
// (DISCARD ALL, for the gateway) before Keep takes it as a bare socket.
//
// Two engines run the loops. io_uring (uringLoop) receives with a multishot
// recv per socket into shared kernel-chosen buffers and sends from them, one
// io_uring_enter per turn of the loop; epoll (eventLoop) makes one
// epoll_wait per turn and one recvfrom and one sendto per chunk. io_uring
// spends less CPU per message; epoll is the fallback where io_uring is
// missing or forbidden (seccomp, io_uring_disabled, kernels before 6.1).
//
// A TLS 1.3 client (AES-GCM) comes with its keys (Session.ClientTLS): the
// loop opens its records and seals what goes to it (recordLayer). So does
// a TLS 1.3 backend (Session.BackendTLS). Other TLS sessions stay on the
// goroutine relay.
type EventRelay struct {
	loops       []relayLoop
	engine      string
	next        atomic.Uint32
	started     atomic.Int64
	tlsSessions atomic.Int64
	tlsBackends atomic.Int64
	sched       string // SchedBatch or SchedNormal

	mu      sync.Mutex
	running bool // the loops' goroutines started (and counted in GOMAXPROCS)
	closed  bool
	// backlogs counts writes a socket did not take whole (or, on io_uring,
	// chunks queued behind a send in flight), to the client [0] and to the
	// backend [1]: the back-pressure paths.
	backlogs [2]atomic.Int64
	// io_uring: recvs that ended for want of a buffer, and submits made
	// because the queue was full.
	starvations, earlySubmits atomic.Int64
	schedSwitches             atomic.Int64 // the loops' changes of policy
	threads                   []int        // the loops' thread IDs (tests)
	// cb runs the sessions' End and Keep; it ends after the last loop
	// (live counts the loops still running).
	cb   *callbacks
	live atomic.Int32
}

// relayLoop is one engine's loop.
type relayLoop interface {
	add(s *evSession) error
	run()
	stop()    // from another goroutine, once the loop runs
	discard() // close a loop that never ran
	sessions() int
}

// Supported reports whether this platform has the event relay.
const Supported = true

// New prepares c.Threads event loops (at least one) on c.Engine;
// they start with the first session, each on a thread of its own run under
// c.Sched. Each loop keeps a P of its own, even while it waits (see
// sysEpollWait; every wait is bounded by loopWait), so the kernel wakes it straight from its wait without a
// trip through Go's scheduler; GOMAXPROCS
// is raised, when needed, so that at least one P is left for everything
// else (until Close). A process none of whose sessions can go to the loops
// (TLS 1.2 everywhere, say) never starts them and keeps all its Ps.
func New(c Config) (*EventRelay, error) {
	threads, engine := c.Threads, c.Engine
	switch engine {
	case "", EngineIOURing, EngineEpoll:
	default:
		return nil, fmt.Errorf("unknown event relay engine %q", engine)
	}
	switch c.Sched {
	case "", SchedBatch, SchedNormal:
	case SchedProcess:
		batchProcess()
		c.Sched = SchedBatch
	default:
		return nil, fmt.Errorf("unknown event loop scheduling policy %q", c.Sched)
	}
	cb, err := newCallbacks()
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	r := &EventRelay{engine: engine, sched: cmp.Or(c.Sched, SchedBatch), cb: cb}
	if engine == "" {
		// The first loop decides: io_uring if this kernel sets one up.
		r.engine = EngineEpoll
		if l, err := makeURingLoop(r); err == nil {
			r.engine, r.loops = EngineIOURing, []relayLoop{l}
		}
	}
	for len(r.loops) < max(threads, 1) {
		var l relayLoop
		var err error
		if r.engine == EngineIOURing {
			l, err = makeURingLoop(r)
		} else {
			l, err = newEventLoop(r)
		}
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("%s: %w", r.engine, err)
		}
		r.loops = append(r.loops, l)
	}
	return r, nil
}

// makeURingLoop is newURingLoop; tests make it fail.
var makeURingLoop = func(r *EventRelay) (relayLoop, error) { return newURingLoop(r) }

// Engine is the engine the loops run on.
func (r *EventRelay) Engine() string { return r.engine }

// Sched is the loops' scheduling policy, SchedBatch or SchedNormal.
func (r *EventRelay) Sched() string { return r.sched }

// ensureRunning starts the loops once.
func (r *EventRelay) ensureRunning() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	if !r.running {
		r.running = true
		addProcs(len(r.loops))
		r.live.Store(int32(len(r.loops)))
		go r.cb.run()
		for _, l := range r.loops {
			go l.run()
		}
	}
	return nil
}

// ownThread locks the calling loop goroutine to its thread for good and
// sets the thread's policy, kept in t; the loop calls t.turn after every
// round of events and t.restore when it ends. The loop never unlocks the
// thread, so the thread exits with the loop, or, if it is the process's
// main thread, which Go cannot end, is parked for good, put back to
// SCHED_OTHER first.
func (r *EventRelay) ownThread(t *threadSched) {
	runtime.LockOSThread()
	t.r = r
	if r.sched == SchedBatch {
		t.set(true)
	}
	r.mu.Lock()
	r.threads = append(r.threads, unix.Gettid())
	r.mu.Unlock()
}

// batchProcess makes every thread of the process SCHED_BATCH; threads
// started later inherit the policy of the thread that starts them, so the
// whole process keeps it (SchedProcess). A thread the kernel refuses
// (seccomp) stays as it is.
func batchProcess() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_BATCH}, 0)
		}
	}
}

// threadSched runs a loop's thread as SCHED_BATCH (under SchedBatch) while
// no send of the loop's sessions waits on a slow reader, and as SCHED_OTHER
// from such a wait until none has happened for schedCalm. Batch saves
// context switches when many short messages pass; a loop feeding bulk
// results to readers that keep the CPUs busy must preempt them, or
// everything it relays waits a slice. Only the loop's thread touches it.
type threadSched struct {
	r       *EventRelay
	batch   bool   // the thread is SCHED_BATCH now
	pressed uint64 // sends that had to wait for their reader (evSide.backlogged)
	seen    uint64 // pressed at the last turn
	busy    time.Time
}

// schedCalm is how long a loop runs SCHED_OTHER after the last send that
// had to wait for its reader.
const schedCalm = 200 * time.Millisecond

func (t *threadSched) set(batch bool) {
	policy := uint32(unix.SCHED_NORMAL)
	if batch {
		policy = unix.SCHED_BATCH
	}
	// Refused only where seccomp forbids sched_setattr; the loop then
	// stays as it is.
	if unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy}, 0) == nil {
		t.batch = batch
		t.r.schedSwitches.Add(1)
	}
}

func (t *threadSched) turn() {
	switch {
	case t.r.sched != SchedBatch:
	case t.pressed != t.seen:
		t.seen, t.busy = t.pressed, time.Now()
		if t.batch {
			t.set(false)
		}
	case !t.batch && time.Since(t.busy) > schedCalm:
		t.set(true)
	}
}

func (t *threadSched) restore() {
	if t.batch {
		t.set(false)
	}
}

// Close stops the loops; sessions still on them end as if the peer had
// hung up. Gateways close their sessions first.
func (r *EventRelay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	for _, l := range r.loops {
		if r.running {
			l.stop() // the loop closes its descriptors
		} else {
			l.discard()
		}
	}
	if r.running {
		addProcs(-len(r.loops))
	} else {
		r.cb.file.Close()
	}
	return nil
}

// loopEnded is called by each loop as it ends, after its last callback.
func (r *EventRelay) loopEnded() {
	if r.live.Add(-1) == 0 {
		r.cb.close()
	}
}

var procs struct {
	sync.Mutex
	base, extra int
}

// addProcs counts n more (or fewer) loop threads and sets GOMAXPROCS to
// what it was before any relay, or to one more than the loop threads if
// that is more. On a machine with more CPUs than loops the loops thus
// share the usual Ps with the rest: fewer idle Ps, fewer threads woken and
// put back to sleep around every login.
func addProcs(n int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.extra == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.extra += n
	// Setting GOMAXPROCS stops the runtime from following the container's
	// CPU limit, so it is set only when it has to change.
	if want := max(procs.base, procs.extra+1); runtime.GOMAXPROCS(0) != want {
		runtime.GOMAXPROCS(want)
	}
}

// FDConn makes a Go connection of a bare socket, which it takes over.
func FDConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "backend")
	defer f.Close()
	return net.FileConn(f)
}

// CloseFD closes a bare socket.
func CloseFD(fd int) { unix.Close(fd) }

// ReadFD reads the bare socket fd into p, waiting for input until
// deadline (os.ErrDeadlineExceeded after it); the end of the stream is
// io.EOF.
func ReadFD(fd int, p []byte, deadline time.Time) (int, error) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		n, err := int(r), error(nil)
		if e != 0 {
			n, err = 0, e
		}
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err != unix.EAGAIN && err != unix.EINTR:
			return 0, err
		}
		if err == unix.EAGAIN {
			if err := waitReadable(fd, deadline); err != nil {
				return 0, err
			}
		}
	}
}

// waitReadable waits for input on the bare socket fd in the netpoller,
// through a duplicate of it, rather than in poll(2): a goroutine blocked in
// a system call holds its P until sysmon hands it to another thread, and
// sysmon then looks every 20 µs for a while.
func waitReadable(fd int, deadline time.Time) error {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(d), "backend") // non-blocking: in the netpoller
	defer f.Close()
	if err := f.SetReadDeadline(deadline); err != nil {
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		// Readable (or hung up, or failed): the caller's read says which.
		_, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		return e != unix.EAGAIN
	})
}

// sysRead and sysWrite are recv(2) and send(2) without the runtime's
// system call bookkeeping: the loop's sockets are non-blocking, so these
// never block, and the loop thread keeps its P. recvfrom and sendto, as
// PgBouncer uses, go straight to the socket; read and write pass through
// the VFS layer (file position, permission and fsnotify hooks) first.
func sysRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// loopWait bounds every wait of an event loop. A loop waits in a raw
// system call, holding its P (see sysEpollWait); the runtime ends such a
// wait with a preemption signal when it needs the P (a stop-the-world, or
// a goroutine that ran 10 ms), but without asynchronous preemption
// (GODEBUG=asyncpreemptoff=1) nothing would, and a collection would wait
// for the next byte a session sends, freezing the process. Returning to Go
// this often lets the loop stop at its next function call, as any
// goroutine does; it is the runtime's own preemption period, so an idle
// loop costs no more wake-ups than the signals already cause.
const loopWait = 10 * time.Millisecond

// sysEpollWait blocks in epoll_wait, for at most loopWait, without handing
// the loop's P back to the scheduler (the relay added one P per loop for
// this): an ordinary system call that blocks has sysmon take the P away
// every time and the loop take one back on every wake-up, thousands of
// times a second under load. It calls epoll_pwait with no signal mask,
// which is epoll_wait: arm64 and other newer ports have only the former.
func sysEpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), uintptr(loopWait.Milliseconds()), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// The loops' other calls on the hot path are raw too (see sysEpollWait):
// none of them blocks, and an ordinary system call lets sysmon hand the
// loop's P to another thread if it lasts, and keeps sysmon polling.

// rawClose closes fd.
func rawClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// rawShutdown shuts both directions of the socket fd down.
func rawShutdown(fd int) { unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_RDWR, 0) }

// rawSignal adds one to the eventfd fd.
func rawSignal(fd int) {
	one := [8]byte{1}
	unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&one[0])), 8)
}

// sysWrite sends with MSG_NOSIGNAL: a peer gone is EPIPE, never SIGPIPE.
func sysWrite(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// FDAlive reports whether an idle socket has neither hung up nor sent
// anything (an idle backend sends nothing but its last words).
func FDAlive(fd int) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == unix.EAGAIN
}

// ConnAlive is FDAlive for a Go connection's socket (under TLS, the bytes
// of an alert or close_notify count as its last words too).
func ConnAlive(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	if err := rc.Control(func(fd uintptr) { alive = FDAlive(int(fd)) }); err != nil {
		return false
	}
	return alive
}

// evSession is one session on a loop.
type evSession struct {
	relay           *EventRelay
	sched           *threadSched // its loop's
	client, backend evSide
	t               Tracker
	// keep, when set, takes the backend of a session that ended clean
	// after the loop reset it with resetMsg (the socket, -1: not kept; and
	// the backend's record state when it speaks TLS).
	keep     func(fd int, backendTLS *TLSKeys)
	resetMsg []byte
	up, down int64
	ending   bool // Terminate seen: flush what preceded it, then stop
	// clientGone, with ending: the client closed its TLS stream
	// (close_notify, or another alert) without a Terminate. What it sent
	// before still goes to the backend; then the session ends, not clean.
	clientGone bool
	// backendGone: the backend hung up (or closed its TLS stream) while what it sent
	// before (its FATAL) was still on its way to the client; the session
	// ends once that send completes.
	backendGone bool
	// io_uring: the backend goes to Keep (handOK: still clean) once its
	// recv is cancelled.
	handing, handOK bool

	mu    sync.Mutex // guards the descriptors against kill after close
	ended bool
	// onEnd is the session's End (see callEnd). It gets the bytes moved
	// each way.
	onEnd func(up, down int64)
}

// evSide is one socket of a session; out holds bytes for it that it did not
// take yet (only then is its peer not read: back-pressure without buffers
// for sessions that keep up).
type evSide struct {
	fd       int
	s        *evSession
	peer     *evSide
	isClient bool
	tls      *recordLayer // this side's TLS, if any
	out      []byte
	// held: a KeyUpdate answer for sd waits in out (or, io_uring, behind
	// a send in flight), and sd is not read until it is written, as
	// crypto/tls writes its answer before it reads on. Otherwise a peer
	// that asks for update after update and reads none of the answers
	// would have the loop queue them without bound.
	held     bool
	interest uint32 // registered epoll events; 0: not registered

	// io_uring only.
	slot       uint32 // index in the loop's side table: user data of its requests
	ops        int    // requests in flight (recv armed, send submitted)
	recvOn     bool   // a multishot recv is armed
	cancelling bool   // and its cancel is submitted
	starved    bool   // its recv ended for want of buffers
	inflight   []byte // the send in flight to this socket
	bid        int32  // the provided buffer inflight lies in; -1: heap
}

// backlogged counts a write that left bytes for sd to take later.
func (sd *evSide) backlogged() {
	sd.s.sched.pressed++
	if sd.isClient {
		sd.s.relay.backlogs[0].Add(1)
	} else {
		sd.s.relay.backlogs[1].Add(1)
	}
}

// Start moves the session onto a loop. On success its net.Conns are
// closed (their sockets live on in the loop's descriptors) and End is
// called on the loop when the session ends; kill ends it from outside
// (Kill). The backend belongs to the relay from the call on, even on
// error.
func (r *EventRelay) Start(ss Session) (kill Kill, err error) {
	var rl, brl *recordLayer
	if ss.ClientTLS != nil {
		rl, err = newRecordLayer(ss.ClientTLS)
	}
	if err == nil && ss.BackendTLS != nil {
		brl, err = newRecordLayer(ss.BackendTLS)
	}
	if err == nil {
		err = r.ensureRunning()
	}
	if err != nil {
		ss.Client.Close()
		if ss.Backend != nil {
			ss.Backend.Close()
		} else {
			unix.Close(ss.BackendFD)
		}
		return nil, err
	}
	bfd := ss.BackendFD
	if ss.Backend != nil {
		bfd, err = dupSocket(ss.Backend)
		ss.Backend.Close()
		if err != nil {
			ss.Client.Close()
			return nil, err
		}
	}
	cfd, err := dupSocket(ss.Client)
	ss.Client.Close()
	if err != nil {
		unix.Close(bfd)
		return nil, err
	}
	l := r.loops[int(r.next.Add(1))%len(r.loops)]
	r.started.Add(1)
	s := &evSession{relay: r, t: ss.Tracker, keep: ss.Keep, resetMsg: ss.Reset, onEnd: ss.End}
	s.client = evSide{fd: cfd, s: s, peer: &s.backend, isClient: true, bid: -1, tls: rl}
	if rl != nil {
		r.tlsSessions.Add(1)
	}
	s.backend = evSide{fd: bfd, s: s, peer: &s.client, bid: -1, tls: brl}
	if brl != nil {
		r.tlsBackends.Add(1)
	}
	if err := l.add(s); err != nil {
		unix.Close(cfd)
		unix.Close(bfd)
		return nil, err
	}
	return s.kill, nil
}

// PlainSocket reports whether c is a bare TCP or unix socket, which an
// event relay can take.
func PlainSocket(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// dupSocket returns a close-on-exec duplicate of c's socket. It is
// non-blocking: Go opens every socket so, and the flag belongs to the open
// file description both descriptors share.
func dupSocket(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return fd, nil
}

// callEnd calls the session's End, off the loop (callbacks).
func (s *evSession) callEnd() {
	up, down, end := s.up, s.down, s.onEnd
	s.relay.cb.post(func() { end(up, down) })
}

// kept gives the backend socket (-1: not kept after all), and its record
// state if it speaks TLS, to the session's Keep, off the loop (callbacks).
func (s *evSession) kept(fd int) {
	keep := s.keep
	var k *TLSKeys
	if rl := s.backend.tls; rl != nil && fd >= 0 {
		k = rl.keys()
	}
	s.relay.cb.post(func() { keep(fd, k) })
}

// kill ends the session from outside the loop (Kill): the sockets are
// shut down, which the loop sees as a hang-up. Gently, only the backend's
// is: the loop then ends the session as for a backend that hung up, after
// the Tracker's farewell (backendEnded).
func (s *evSession) kill(gently bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		if !gently {
			unix.Shutdown(s.client.fd, unix.SHUT_RDWR)
		}
		unix.Shutdown(s.backend.fd, unix.SHUT_RDWR)
	}
}

type eventLoop struct {
	relay      *EventRelay
	sched      threadSched
	epfd, wake int
	buf        []byte
	sealed     []byte // records for a TLS client, before they are written

	mu      sync.Mutex
	sides   map[int32]*evSide
	stopped bool // the loop has taken its last sessions (add refuses)
}

func newEventLoop(r *EventRelay) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	return &eventLoop{relay: r, epfd: epfd, wake: wake, buf: make([]byte, 64<<10), sides: map[int32]*evSide{}}, nil
}

func (l *eventLoop) discard() {
	unix.Close(l.epfd)
	unix.Close(l.wake)
}

func (l *eventLoop) sessions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sides) / 2
}

func (l *eventLoop) stop() {
	var one [8]byte
	one[0] = 1
	unix.Write(l.wake, one[:])
}

// add registers both of the session's sockets with l.mu held throughout:
// the loop looks its events' sides up under l.mu, so it acts on neither
// socket before both are registered, nor on a session that add gives up.
// Otherwise a client that has already left (a Terminate right after
// ReadyForQuery) has the loop end the session, calling End and closing
// both descriptors, as soon as the client's socket is registered; the
// backend's registration then fails on its closed descriptor and Start
// reports an error for a session whose End was called, so that its owner
// ends it a second time. A loop that has stopped takes no session.
func (l *eventLoop) add(s *evSession) error {
	s.sched = &l.sched
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return net.ErrClosed
	}
	l.sides[int32(s.client.fd)] = &s.client
	l.sides[int32(s.backend.fd)] = &s.backend
	s.client.interest, s.backend.interest = unix.EPOLLIN, unix.EPOLLIN
	for _, sd := range []*evSide{&s.client, &s.backend} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, sd.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(sd.fd)}); err != nil {
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.client.fd, nil)
			delete(l.sides, int32(s.client.fd))
			delete(l.sides, int32(s.backend.fd))
			return fmt.Errorf("epoll add: %w", err)
		}
		if sd.isClient {
			if f := epollClientAdded.Load(); f != nil {
				(*f)()
			}
		}
	}
	return nil
}

// epollClientAdded, when set (tests), is called by eventLoop.add between
// the client's registration and the backend's, with l.mu held.
// Atomic: a test sets it while sessions it started (on other goroutines,
// synchronised only through sockets) may read it.
var epollClientAdded atomic.Pointer[func()]

func (l *eventLoop) run() {
	defer l.relay.loopEnded()
	// The thread is the loop's: epoll_wait blocks it, and reads and writes
	// never park a goroutine.
	l.relay.ownThread(&l.sched)
	defer l.sched.restore()
	events := make([]unix.EpollEvent, 128)
	sides := make([]*evSide, len(events))
	for {
		l.sched.turn()
		n, err := sysEpollWait(l.epfd, events)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			break
		}
		// Look the sides up before handling any event: a side ended by an
		// earlier event of this batch is marked ended, and its descriptor,
		// closed and perhaps reused by a new session, is not touched.
		stop := false
		l.mu.Lock()
		for i := range n {
			sides[i] = l.sides[events[i].Fd]
			if events[i].Fd == int32(l.wake) {
				stop = true
			}
		}
		l.mu.Unlock()
		if stop {
			break
		}
		for i := range n {
			sd := sides[i]
			sides[i] = nil
			if sd == nil {
				continue
			}
			if sd.s.ended {
				continue
			}
			ev := events[i].Events
			if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && len(sd.out) > 0 {
				l.flush(sd)
			}
			if !sd.s.ended && ev&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 && sd.interest&unix.EPOLLIN != 0 {
				l.read(sd)
			}
		}
	}
	l.mu.Lock()
	l.stopped = true // add refuses from here on
	left := make([]*evSession, 0, len(l.sides)/2)
	for _, sd := range l.sides {
		if sd.isClient {
			left = append(left, sd.s)
		}
	}
	l.mu.Unlock()
	for _, s := range left {
		l.end(s, false)
	}
	unix.Close(l.epfd)
	unix.Close(l.wake)
}

// read moves what sd has to its peer.
func (l *eventLoop) read(sd *evSide) {
	s := sd.s
	off := 0
	if sd.tls != nil {
		// Room for a record cut by the last read, which goes first once
		// this read completes it (absorb keeps it otherwise).
		off = len(sd.tls.pending)
	}
	n, err := sysRead(sd.fd, l.buf[off:])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n > 0 && sd.tls != nil {
		if sd.tls.absorb(l.buf[off : off+n]) {
			return
		}
		copy(l.buf, sd.tls.pending)
	}
	if n <= 0 || err != nil {
		if !sd.isClient {
			l.backendEnded(s)
			return
		}
		l.end(s, false)
		return
	}
	chunk := l.buf[:off+n]
	if sd.tls != nil {
		var ok bool
		if chunk, ok = l.openTLS(sd, chunk); !ok {
			return
		}
		n = len(chunk)
	}
	if !sd.isClient {
		s.t.FromBackend(chunk)
		if s.ending {
			// The client said Terminate: what the backend still sends
			// (results of what preceded it) has nobody to go to.
			return
		}
		s.down += int64(n)
		l.send(sd.peer, chunk)
		if sd.tls != nil && sd.tls.eof && !s.ended {
			// The backend's alert (close_notify after a FATAL error):
			// it is gone.
			l.backendEnded(s)
		}
		return
	}
	fwd, end := s.t.FromClient(chunk)
	s.up += int64(fwd)
	if fwd > 0 {
		l.send(sd.peer, chunk[:fwd])
		if s.ended {
			return
		}
	}
	if end {
		// The client is leaving: it reads nothing more, and the session
		// ends once the backend has taken what preceded the Terminate.
		s.ending = true
		sd.out = nil
		if len(sd.peer.out) == 0 {
			l.end(s, true)
			return
		}
		l.update(sd)
		l.update(sd.peer)
		return
	}
	if sd.tls != nil && sd.tls.eof && !s.ended {
		l.clientClosed(s)
	}
}

// clientClosed ends the session of a client that closed its TLS stream
// without a Terminate, once what it sent before, perhaps in the read that
// carried its close_notify, has gone to the backend: ending at once would
// drop what the backend's socket has not taken yet.
func (l *eventLoop) clientClosed(s *evSession) {
	s.ending, s.clientGone = true, true
	s.client.out = nil
	if len(s.backend.out) == 0 {
		l.end(s, false)
		return
	}
	l.update(&s.client)
	l.update(&s.backend)
}

// backendEnded ends the session of a backend that hung up, closed its TLS
// stream or sent a record that did not open, after telling the client why
// when the backend did not (Tracker.BackendEnded).
func (l *eventLoop) backendEnded(s *evSession) {
	if s.backendGone {
		return // already waiting for the client to take what came before
	}
	if bye := s.t.BackendEnded(); len(bye) > 0 && !s.ending && !s.ended {
		l.send(&s.client, bye)
	}
	if len(s.client.out) > 0 && !s.ending && !s.ended {
		// What the backend sent before (its FATAL, then close_notify in
		// the same read) waits for the client: the session ends once it
		// is written (flush); ending now would drop it.
		s.backendGone = true
		l.update(&s.client)
		l.update(&s.backend)
		return
	}
	l.end(s, false)
}

// openTLS opens the client's records in chunk (in l.buf) and returns the
// application data they carry; false when there is none (and the session
// ends, after what preceded it, on the peer's alert or a bad record).
func (l *eventLoop) openTLS(sd *evSide, chunk []byte) ([]byte, bool) {
	rl := sd.tls
	plain, used, err := rl.openRecords(chunk)
	if err == nil {
		rl.carry(chunk[used:])
	}
	if r := rl.takeReply(); len(r) > 0 {
		l.sendRaw(sd, r)
		if sd.s.ended {
			return nil, false
		}
		if len(sd.out) > 0 {
			sd.held = true
			l.update(sd)
		}
	}
	if plain == 0 && rl.eof {
		// The peer's alert, or a bad record: the session ends, after
		// what preceded it (read then checks eof when there is some).
		if !sd.isClient {
			l.backendEnded(sd.s)
		} else {
			l.clientClosed(sd.s)
		}
		return nil, false
	}
	return chunk[:plain], plain > 0
}

// send writes p to dst (sealed into records, if dst speaks TLS), keeping
// what dst does not take.
func (l *eventLoop) send(dst *evSide, p []byte) {
	if dst.tls != nil {
		l.sealed = dst.tls.seal(l.sealed[:0], p)
		p = l.sealed
	}
	l.sendRaw(dst, p)
}

// sendRaw writes p to dst as it is, after what dst still holds.
func (l *eventLoop) sendRaw(dst *evSide, p []byte) {
	if len(dst.out) > 0 {
		dst.out = append(dst.out, p...)
		return
	}
	w, err := sysWrite(dst.fd, p)
	if err == unix.EAGAIN || err == unix.EINTR {
		w, err = 0, nil
	}
	if err != nil {
		l.end(dst.s, false)
		return
	}
	if w < len(p) {
		dst.backlogged()
		dst.out = append(dst.out[:0], p[w:]...)
		l.update(dst)
		l.update(dst.peer)
	}
}

// flush writes what sd holds for itself; once it is all written, sd's peer
// is read again (or a Terminate that waited for it ends the session).
func (l *eventLoop) flush(sd *evSide) {
	w, err := sysWrite(sd.fd, sd.out)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		l.end(sd.s, false)
		return
	}
	if w < len(sd.out) {
		sd.out = sd.out[w:]
		return
	}
	sd.out, sd.held = nil, false
	if sd.isClient && sd.s.backendGone {
		l.end(sd.s, false)
		return
	}
	if sd.s.ending && !sd.isClient {
		l.end(sd.s, !sd.s.clientGone)
		return
	}
	l.update(sd)
	l.update(sd.peer)
}

// update registers what sd waits for: input when its peer has nothing
// pending (and the client has not said Terminate, nor the backend gone),
// and no answer to a KeyUpdate of sd's waits (held), output when it has
// something pending itself. A side waiting for nothing leaves the epoll set,
// so a hang-up it cannot act on yet does not spin the loop.
func (l *eventLoop) update(sd *evSide) {
	var want uint32
	if len(sd.peer.out) == 0 && !(sd.isClient && sd.s.ending) && !sd.held && !sd.s.backendGone {
		want |= unix.EPOLLIN
	}
	if len(sd.out) > 0 {
		want |= unix.EPOLLOUT
	}
	if want == sd.interest {
		return
	}
	var err error
	switch {
	case sd.interest == 0:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, sd.fd, &unix.EpollEvent{Events: want, Fd: int32(sd.fd)})
	case want == 0:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, sd.fd, nil)
	default:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, sd.fd, &unix.EpollEvent{Events: want, Fd: int32(sd.fd)})
	}
	if err != nil {
		l.end(sd.s, false)
		return
	}
	sd.interest = want
}

// end takes the session off the loop: the client socket is closed, and
// the backend either reset for the pool (clean end of a pooled session) or
// closed.
func (l *eventLoop) end(s *evSession, terminated bool) {
	if s.ended {
		return
	}
	keep := terminated && s.keep != nil && len(s.backend.out) == 0 && s.t.Clean() &&
		(s.backend.tls == nil || s.backend.tls.idle())
	l.mu.Lock()
	delete(l.sides, int32(s.client.fd))
	if !keep {
		delete(l.sides, int32(s.backend.fd))
	}
	l.mu.Unlock()
	if rl := s.client.tls; rl != nil && len(s.client.out) == 0 {
		// What tls.Conn.Close sends: close_notify, or the alert that says
		// what was wrong. Best effort, as the client may be gone.
		sysWrite(s.client.fd, rl.closeAlert())
	}
	if rl := s.backend.tls; rl != nil && !keep && len(s.backend.out) == 0 {
		sysWrite(s.backend.fd, rl.closeAlert())
	}
	// Closing a descriptor takes it out of the epoll set (it is the last
	// reference to its socket).
	s.mu.Lock()
	s.ended = true
	rawClose(s.client.fd)
	if !keep {
		rawClose(s.backend.fd)
	}
	s.mu.Unlock()
	s.client.interest, s.client.out, s.backend.out = 0, nil, nil
	if !keep {
		s.backend.interest = 0
	}
	if keep {
		s.t.Keeping()
		l.startReset(s)
	}
	s.callEnd()
}

// startReset hands the backend of a session whose client left clean to
// Keep: out of the epoll set, the reset sent, its answer left for Keep's
// side to read (Session.Keep). The loop does not wait a round trip for it.
func (l *eventLoop) startReset(s *evSession) {
	fd := s.backend.fd
	l.mu.Lock()
	delete(l.sides, int32(fd))
	l.mu.Unlock()
	ok := true
	if s.backend.interest != 0 {
		// The pool keeps the socket: it leaves the epoll set by hand.
		ok = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil) == nil
	}
	s.backend.interest = 0
	if ok {
		msg := s.resetMsg
		if rl := s.backend.tls; rl != nil {
			msg = rl.seal(nil, msg)
		}
		w, err := sysWrite(fd, msg)
		ok = err == nil && w == len(msg)
	}
	if !ok {
		rawClose(fd)
		fd = -1
	}
	s.kept(fd)
}

// Started counts the sessions the relay has carried.
func (r *EventRelay) Started() int64 { return r.started.Load() }

// Stats are the relay's counters now.
func (r *EventRelay) Stats() Stats {
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	st := Stats{Started: r.started.Load(), StartedTLS: r.tlsSessions.Load(), StartedBackendTLS: r.tlsBackends.Load(), Running: running,
		BackloggedToClient: r.backlogs[0].Load(), BackloggedToBackend: r.backlogs[1].Load()}
	for _, l := range r.loops {
		st.PerLoop = append(st.PerLoop, l.sessions())
	}
	return st
}
