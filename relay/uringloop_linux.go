//go:build amd64 || arm64

package relay

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// uringLoop is the event relay's io_uring engine. Every socket has a
// multishot recv armed that takes a buffer from a ring of provided buffers
// only when data arrives (so an idle session holds none), and a chunk goes
// to the peer as a send from that same buffer. One io_uring_enter per turn
// submits what the last turn queued and waits for completions; with
// DEFER_TASKRUN the kernel completes receives in that call, not by
// interrupting the thread. One send at a time is in flight per socket, so
// chunks arrive in order; what comes meanwhile is copied to the side's out,
// and once out holds uringBacklog bytes the peer's recv is cancelled until
// it drains (back-pressure). Sends hold at most half the buffers (beyond
// that a chunk is sent from a heap copy): a send may wait for a client
// that does not read, and the receives of other sessions must not wait
// for it.
//
// A descriptor named by a queued request must not be closed before the
// request is submitted, or a socket accepted meanwhile under the same
// number would get it: closes, and hand-overs to the pool, wait for the
// next submit (afterSubmit). A recv still armed when a socket is given up
// completes once the socket is shut down (closing it is not enough, the
// ring holds the file); a pooled backend's recv is cancelled, and the
// backend handed over only after the last completion.
type uringLoop struct {
	relay *EventRelay
	sched threadSched
	fd    int

	sqHead, sqTail *uint32
	sqMask         uint32
	sqes           []uringSQE
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []uringCQE
	tail, pending  uint32 // our SQ tail; SQEs not yet submitted
	maps           [][]byte

	bufRing, bufs []byte
	nbufs         uint32
	held          uint32 // provided buffers that sends in flight hold
	maxHeld       atomic.Uint32
	bufTail       uint16
	bufsBack      bool // buffers recycled this turn

	wake    int
	wakeBuf *[8]byte

	mu       sync.Mutex
	incoming []*evSession
	count    int
	stopping bool

	slots       []*evSide // index: slot (0 is the wake-up read)
	free        []uint32
	starved     []*evSide
	afterSubmit []func()
}

type uringSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32
	userData uint64
	bufGroup uint16
	_        uint16
	_        int32
	_        [2]uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	_                                                                      [3]uint32
	sqOff                                                                  [10]uint32
	cqOff                                                                  [10]uint32
}

// From include/uapi/linux/io_uring.h.
const (
	iouOpRead        = 22
	iouOpSend        = 26
	iouOpRecv        = 27
	iouOpAsyncCancel = 14

	iouSQEBufferSelect   = 1 << 5
	iouSQECQESkipSuccess = 1 << 6
	iouRecvMultishot     = 1 << 1
	iouCQEFBuffer        = 1 << 0
	iouCQEFMore          = 1 << 1

	iouSetupCQSize       = 1 << 3
	iouSetupRDisabled    = 1 << 6
	iouSetupSubmitAll    = 1 << 7
	iouSetupCoopTaskrun  = 1 << 8
	iouSetupSingleIssuer = 1 << 12
	iouSetupDeferTaskrun = 1 << 13
	iouFeatNoDrop        = 1 << 1

	iouEnterGetEvents = 1 << 0
	iouEnterExtArg    = 1 << 3

	iouRegisterEnableRings = 12
	iouRegisterPbufRing    = 22

	iouOffSQEs = 0x10000000
)

// uringSize is the SQ's entries and the provided buffers per loop (powers
// of two); tests shrink them to reach the full-queue and no-buffer paths.
var uringSize = struct{ entries, bufs uint32 }{512, 512}

const (
	uringCQEntries = 8192
	uringBufSize   = 16 << 10
	uringBacklog   = 64 << 10
	kindRecv       = 1
	kindSend       = 2
	wakeTag        = 3 // slot 0
)

// newURingLoop sets up a ring, disabled until its loop thread enables it
// (SINGLE_ISSUER: the thread that enables the ring is the only one that
// may submit), with its provided buffers registered.
func newURingLoop(r *EventRelay) (*uringLoop, error) {
	l := &uringLoop{relay: r, fd: -1, wake: -1, wakeBuf: new([8]byte), slots: []*evSide{nil}, nbufs: uringSize.bufs}
	ready := false
	defer func() {
		// Every failure below returns nil: the ring made so far is l's.
		if !ready {
			l.discard()
		}
	}()
	p := uringParams{
		flags:     iouSetupRDisabled | iouSetupSingleIssuer | iouSetupDeferTaskrun | iouSetupCoopTaskrun | iouSetupSubmitAll | iouSetupCQSize,
		cqEntries: uringCQEntries,
	}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(uringSize.entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", e)
	}
	l.fd = int(fd)
	if p.features&iouFeatNoDrop == 0 {
		return nil, errors.New("io_uring: kernel may drop completions")
	}
	size := max(p.sqOff[6]+p.sqEntries*4, p.cqOff[5]+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	rb, err := l.mmap(l.fd, 0, int(size))
	if err != nil {
		return nil, err
	}
	sb, err := l.mmap(l.fd, iouOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})))
	if err != nil {
		return nil, err
	}
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&rb[off])) }
	l.sqHead, l.sqTail, l.sqMask = at(p.sqOff[0]), at(p.sqOff[1]), *at(p.sqOff[2])
	for i, sqArray := 0, unsafe.Slice(at(p.sqOff[6]), p.sqEntries); i < len(sqArray); i++ {
		sqArray[i] = uint32(i) // slot i of the SQ array is always SQE i
	}
	l.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sb[0])), p.sqEntries)
	l.cqHead, l.cqTail, l.cqMask = at(p.cqOff[0]), at(p.cqOff[1]), *at(p.cqOff[2])
	l.cqes = unsafe.Slice((*uringCQE)(unsafe.Pointer(&rb[p.cqOff[5]])), p.cqEntries)
	l.tail = *l.sqTail

	// The provided buffers live outside Go's heap: the kernel writes them
	// whenever data arrives.
	if l.bufRing, err = l.mmap(-1, 0, int(l.nbufs)*16); err != nil {
		return nil, err
	}
	if l.bufs, err = l.mmap(-1, 0, int(l.nbufs)*uringBufSize); err != nil {
		return nil, err
	}
	reg := struct {
		addr    uint64
		entries uint32
		bgid    uint16
		flags   uint16
		_       [3]uint64
	}{addr: uint64(uintptr(unsafe.Pointer(&l.bufRing[0]))), entries: l.nbufs}
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(l.fd), iouRegisterPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0); e != 0 {
		return nil, fmt.Errorf("io_uring provided buffers: %w", e)
	}
	for i := range int32(l.nbufs) {
		l.putBuf(i)
	}
	l.publishBufs()
	if l.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		l.wake = -1
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ready = true
	return l, nil
}

func (l *uringLoop) mmap(fd int, off int64, size int) ([]byte, error) {
	flags := unix.MAP_SHARED | unix.MAP_POPULATE
	if fd < 0 {
		flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	}
	b, err := unix.Mmap(fd, off, size, unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, fmt.Errorf("io_uring mmap: %w", err)
	}
	l.maps = append(l.maps, b)
	return b, nil
}

// discard releases a ring whose loop never ran, or has finished.
func (l *uringLoop) discard() {
	if l.fd >= 0 {
		unix.Close(l.fd)
	}
	if l.wake >= 0 {
		unix.Close(l.wake)
	}
	for _, b := range l.maps {
		unix.Munmap(b)
	}
	l.maps = nil
}

func (l *uringLoop) sessions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

func (l *uringLoop) add(s *evSession) error {
	s.sched = &l.sched
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return net.ErrClosed
	}
	l.incoming = append(l.incoming, s)
	l.count++
	l.mu.Unlock()
	l.kick()
	return nil
}

func (l *uringLoop) stop() {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	l.kick()
}

func (l *uringLoop) kick() {
	rawSignal(l.wake)
}

// putBuf hands buffer id back to the kernel (seen after publishBufs).
func (l *uringLoop) putBuf(id int32) {
	e := unsafe.Pointer(&l.bufRing[int(uint32(l.bufTail)%l.nbufs)*16])
	*(*uint64)(e) = uint64(uintptr(unsafe.Pointer(&l.bufs[int(id)*uringBufSize])))
	*(*uint32)(unsafe.Add(e, 8)) = uringBufSize
	*(*uint16)(unsafe.Add(e, 12)) = uint16(id)
	l.bufTail++
	l.bufsBack = true
}

// publishBufs stores the ring's tail (bytes 14–15, little-endian: amd64
// and arm64) with release order; the word also holds entry 0's id (bytes
// 12–13), written back as it is.
func (l *uringLoop) publishBufs() {
	w := (*uint32)(unsafe.Pointer(&l.bufRing[12]))
	atomic.StoreUint32(w, uint32(l.bufTail)<<16|*w&0xffff)
}

func (l *uringLoop) buf(id int32) []byte {
	return l.bufs[int(id)*uringBufSize : int(id+1)*uringBufSize]
}

// sqe returns a cleared SQE to fill, submitting the queue first when full.
func (l *uringLoop) sqe() *uringSQE {
	if l.tail-atomic.LoadUint32(l.sqHead) == uint32(len(l.sqes)) {
		l.relay.earlySubmits.Add(1)
		l.enter(0, nil)
	}
	q := &l.sqes[l.tail&l.sqMask]
	*q = uringSQE{}
	l.tail++
	l.pending++
	return q
}

// enter submits what is queued and waits for min completions (up to ts,
// when given), then runs what waited for the submit.
func (l *uringLoop) enter(min uint32, ts *unix.Timespec) error {
	atomic.StoreUint32(l.sqTail, l.tail)
	flags, arg, argSize := uintptr(0), uintptr(0), uintptr(0)
	if min > 0 {
		flags = iouEnterGetEvents
	}
	var ga struct {
		sigmask      uint64
		sigmaskSz, _ uint32
		ts           uint64
	}
	if ts != nil {
		ga.ts = uint64(uintptr(unsafe.Pointer(ts)))
		flags |= iouEnterExtArg
		arg, argSize = uintptr(unsafe.Pointer(&ga)), unsafe.Sizeof(ga)
	}
	// Raw: the loop keeps its P while it waits (see sysEpollWait).
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(l.fd), uintptr(l.pending), uintptr(min), flags, arg, argSize)
	runtime.KeepAlive(ts)
	// SUBMIT_ALL: the kernel took every SQE or stopped at the first it
	// could not, which its head shows either way (also after EINTR).
	l.pending = l.tail - atomic.LoadUint32(l.sqHead)
	if l.pending == 0 {
		for _, f := range l.afterSubmit {
			f()
		}
		clear(l.afterSubmit)
		l.afterSubmit = l.afterSubmit[:0]
	}
	if e != 0 {
		return e
	}
	return nil
}

func (l *uringLoop) armWake() {
	q := l.sqe()
	q.opcode, q.fd = iouOpRead, int32(l.wake)
	q.addr, q.len = uint64(uintptr(unsafe.Pointer(l.wakeBuf))), 8
	q.userData = wakeTag
}

func (l *uringLoop) armRecv(sd *evSide) {
	q := l.sqe()
	q.opcode, q.fd, q.ioprio, q.flags = iouOpRecv, int32(sd.fd), iouRecvMultishot, iouSQEBufferSelect
	q.userData = uint64(sd.slot)<<2 | kindRecv
	sd.recvOn = true
	sd.ops++
}

// stopRecv cancels sd's recv; its last completion says when it is gone.
func (l *uringLoop) stopRecv(sd *evSide) {
	if !sd.recvOn || sd.cancelling {
		return
	}
	q := l.sqe()
	q.opcode, q.flags = iouOpAsyncCancel, iouSQECQESkipSuccess
	q.addr = uint64(sd.slot)<<2 | kindRecv
	sd.cancelling = true
}

// send submits p to sd; bid is the provided buffer p lies in (-1: heap,
// kept alive by sd.inflight).
func (l *uringLoop) send(sd *evSide, p []byte, bid int32) {
	q := l.sqe()
	q.opcode, q.fd, q.opFlags = iouOpSend, int32(sd.fd), unix.MSG_NOSIGNAL
	q.addr, q.len = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p)))), uint32(len(p))
	q.userData = uint64(sd.slot)<<2 | kindSend
	sd.inflight, sd.bid = p, bid
	sd.ops++
}

// wantsRecv reports whether sd should be read now.
func (l *uringLoop) wantsRecv(sd *evSide) bool {
	s := sd.s
	if sd.recvOn || sd.starved {
		return false
	}
	if s.ended || s.backendGone {
		return false
	}
	return len(sd.peer.out) < uringBacklog && !(sd.isClient && s.ending) && !sd.held
}

func (l *uringLoop) rearm(sd *evSide) {
	if sd.slot != 0 && l.wantsRecv(sd) {
		l.armRecv(sd)
	}
}

func (l *uringLoop) run() {
	defer l.relay.loopEnded()
	l.relay.ownThread(&l.sched)
	defer l.sched.restore()
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(l.fd), iouRegisterEnableRings, 0, 0, 0, 0); e != 0 {
		// Not seen in practice (the ring was made and probed); sessions
		// given to this loop end at once.
		l.mu.Lock()
		l.stopping = true
		in := l.incoming
		l.incoming = nil
		l.mu.Unlock()
		for _, s := range in {
			l.giveUp(s)
		}
		l.discard()
		return
	}
	l.armWake()
	// Every wait is bounded (see loopWait); ETIME is its end.
	wait := unix.NsecToTimespec(loopWait.Nanoseconds())
	for {
		err := l.enter(1, &wait)
		if err != nil && err != unix.ETIME && err != unix.EINTR && err != unix.EAGAIN && err != unix.EBUSY {
			break
		}
		l.reap()
		l.sched.turn()
		l.mu.Lock()
		stopping := l.stopping
		l.mu.Unlock()
		if stopping {
			break
		}
	}
	l.shutdown()
}

// reap handles every completion there is.
func (l *uringLoop) reap() {
	head, tail := *l.cqHead, atomic.LoadUint32(l.cqTail)
	for ; head != tail; head++ {
		c := l.cqes[head&l.cqMask]
		slot, kind := uint32(c.userData>>2), c.userData&3
		switch {
		case c.userData == wakeTag:
			l.admit()
			l.armWake()
		case kind == kindRecv && int(slot) < len(l.slots) && l.slots[slot] != nil:
			l.onRecv(l.slots[slot], c.res, c.flags)
		case kind == kindSend && int(slot) < len(l.slots) && l.slots[slot] != nil:
			l.onSend(l.slots[slot], c.res)
		}
		// Anything else is a failed cancel (user data 0): its recv had
		// already ended.
	}
	atomic.StoreUint32(l.cqHead, head)
	if l.bufsBack {
		l.bufsBack = false
		l.publishBufs()
		for _, sd := range l.starved {
			sd.starved = false
			l.rearm(sd)
		}
		l.starved = l.starved[:0]
	}
}

// admit takes the sessions added since the last wake-up.
func (l *uringLoop) admit() {
	l.mu.Lock()
	in := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, s := range in {
		for _, sd := range []*evSide{&s.client, &s.backend} {
			if n := len(l.free); n > 0 {
				sd.slot = l.free[n-1]
				l.free = l.free[:n-1]
			} else {
				sd.slot = uint32(len(l.slots))
				l.slots = append(l.slots, nil)
			}
			l.slots[sd.slot] = sd
			l.armRecv(sd)
		}
	}
}

// release frees sd's slot once its session no longer needs it and nothing
// of it is in flight.
func (l *uringLoop) release(sd *evSide) {
	s := sd.s
	if sd.slot == 0 || sd.ops > 0 || !s.ended || (!sd.isClient && s.handing) {
		return
	}
	l.slots[sd.slot] = nil
	l.free = append(l.free, sd.slot)
	sd.slot = 0
}

func (l *uringLoop) onRecv(sd *evSide, res int32, flags uint32) {
	if flags&iouCQEFMore == 0 {
		sd.recvOn, sd.cancelling = false, false
		sd.ops--
	}
	bid := int32(-1)
	if flags&iouCQEFBuffer != 0 {
		bid = int32(flags >> 16)
	}
	switch {
	case res > 0 && bid >= 0:
		l.received(sd, l.buf(bid)[:res], bid)
	case res == -int32(unix.ENOBUFS):
		if !sd.recvOn {
			l.relay.starvations.Add(1)
			sd.starved = true
			l.starved = append(l.starved, sd)
		}
	case res == -int32(unix.ECANCELED):
	default: // end of stream, or an error
		if bid >= 0 {
			l.putBuf(bid)
		}
		l.hungUp(sd)
	}
	if !sd.recvOn {
		l.rearm(sd)
	}
	if !sd.isClient && sd.s.handing {
		l.handOver(sd.s)
	}
	l.release(sd)
}

// received moves a chunk that arrived on sd; it owns buffer bid.
func (l *uringLoop) received(sd *evSide, chunk []byte, bid int32) {
	s := sd.s
	switch {
	case s.handing && !sd.isClient:
		// The backend spoke while being handed over: it cannot be vouched
		// for.
		s.handOK = false
		l.putBuf(bid)
		return
	case s.ended, s.backendGone:
		// Nothing more goes to a backend that hung up.
		l.putBuf(bid)
		return
	case !sd.isClient:
		if sd.tls != nil {
			// Opened even after the client's Terminate: the record
			// state must follow everything the backend sent.
			var ok bool
			if chunk, bid, ok = l.openTLS(sd, chunk, bid); !ok {
				return
			}
		}
		s.t.FromBackend(chunk)
		switch {
		case s.ending:
			// Results of what preceded the client's Terminate have
			// nobody to go to.
			if bid >= 0 {
				l.putBuf(bid)
			}
		case sd.peer.tls != nil:
			s.down += int64(len(chunk))
			l.forwardSealed(sd.peer, chunk, bid)
		case bid < 0:
			s.down += int64(len(chunk))
			l.forwardHeap(sd.peer, chunk)
		default:
			s.down += int64(len(chunk))
			l.forward(sd.peer, chunk, bid)
		}
		if sd.tls != nil && sd.tls.eof && !s.ended {
			// The backend's alert (close_notify after a FATAL error):
			// the session ends once what came before has gone to the
			// client (backendEnded), whether or not the backend hangs
			// up.
			l.backendEnded(s)
		}
		return
	case s.ending:
		l.putBuf(bid)
		return
	}
	if sd.tls != nil {
		var ok bool
		if chunk, bid, ok = l.openTLS(sd, chunk, bid); !ok {
			return
		}
	}
	fwd, end := s.t.FromClient(chunk)
	s.up += int64(fwd)
	switch {
	case fwd > 0 && sd.peer.tls != nil:
		l.forwardSealed(sd.peer, chunk[:fwd], bid)
	case fwd > 0 && bid < 0:
		l.forwardHeap(sd.peer, chunk[:fwd])
	case fwd > 0:
		l.forward(sd.peer, chunk[:fwd], bid)
	case bid >= 0:
		l.putBuf(bid)
	}
	if end {
		// The client is leaving: it reads nothing more, and the session
		// ends once the backend has taken what preceded the Terminate.
		s.ending = true
		sd.out = nil
		l.stopRecv(sd)
		if s.backend.inflight == nil && len(s.backend.out) == 0 {
			l.end(s, true)
		}
		return
	}
	if sd.tls != nil && sd.tls.eof && !s.ended {
		l.clientClosed(s)
	}
}

// clientClosed ends the session of a client that closed its TLS stream
// without a Terminate, once what it sent before, perhaps in the receive
// that carried its close_notify, has gone to the backend: ending now
// would shut the backend's socket down under the send queued for it.
func (l *uringLoop) clientClosed(s *evSession) {
	s.ending, s.clientGone = true, true
	s.client.out = nil
	l.stopRecv(&s.client)
	if s.backend.inflight == nil && len(s.backend.out) == 0 {
		l.end(s, false)
	}
}

// openTLS opens the client's records in chunk (provided buffer bid) and
// returns the application data they carry, in place in bid or, when a
// record was cut by the last receive, in a heap buffer (bid -1); false
// when there is none (and the session ends, after what preceded it, on
// the peer's alert or a bad record). The buffer is put back when nothing
// is returned.
func (l *uringLoop) openTLS(sd *evSide, chunk []byte, bid int32) ([]byte, int32, bool) {
	rl := sd.tls
	if rl.absorb(chunk) {
		l.putBuf(bid)
		return nil, -1, false
	}
	buf := chunk
	if len(rl.pending) > 0 {
		buf = make([]byte, len(rl.pending)+len(chunk))
		copy(buf[copy(buf, rl.pending):], chunk)
		l.putBuf(bid)
		bid = -1
	}
	plain, used, err := rl.openRecords(buf)
	if err == nil {
		rl.carry(buf[used:])
	}
	if r := rl.takeReply(); len(r) > 0 {
		l.forwardHeap(sd, r)
		if len(sd.out) > 0 {
			// Queued behind a send to sd: no more of sd is read until
			// it is sent (evSide.held).
			sd.held = true
			l.stopRecv(sd)
		}
	}
	if plain == 0 {
		if bid >= 0 {
			l.putBuf(bid)
		}
		switch {
		case rl.eof && !sd.isClient:
			l.backendEnded(sd.s)
		case rl.eof:
			l.clientClosed(sd.s)
		}
		return nil, -1, false
	}
	// After an alert or a bad record (eof), received ends the session
	// once the records before it are on their way.
	return buf[:plain], bid, true
}

// forwardSealed seals chunk (in buffer bid, or on the heap: -1) into
// records for dst.
func (l *uringLoop) forwardSealed(dst *evSide, chunk []byte, bid int32) {
	if dst.inflight == nil && len(dst.out) == 0 {
		sealed := dst.tls.seal(make([]byte, 0, sealedLen(len(chunk))), chunk)
		if bid >= 0 {
			l.putBuf(bid)
		}
		l.send(dst, sealed, -1)
		return
	}
	if len(dst.out) == 0 {
		dst.backlogged()
	}
	dst.out = dst.tls.seal(dst.out, chunk)
	if bid >= 0 {
		l.putBuf(bid)
	}
	if len(dst.out) >= uringBacklog {
		l.stopRecv(dst.peer)
	}
}

// forwardHeap sends p, a buffer of the loop's own that nothing else uses,
// to dst as it is, or queues a copy behind the send in flight.
func (l *uringLoop) forwardHeap(dst *evSide, p []byte) {
	if dst.inflight == nil && len(dst.out) == 0 {
		l.send(dst, p, -1)
		return
	}
	if len(dst.out) == 0 {
		dst.backlogged()
	}
	dst.out = append(dst.out, p...)
	if len(dst.out) >= uringBacklog {
		l.stopRecv(dst.peer)
	}
}

// forward sends chunk (in buffer bid) to dst, or queues a copy behind the
// send in flight.
func (l *uringLoop) forward(dst *evSide, chunk []byte, bid int32) {
	if dst.inflight == nil && len(dst.out) == 0 {
		if l.held < l.nbufs/2 {
			l.held++
			if l.held > l.maxHeld.Load() {
				l.maxHeld.Store(l.held)
			}
			l.send(dst, chunk, bid)
			return
		}
		// Half the buffers are held by sends that may wait on slow
		// readers (or on a backend that waits for us to read it): the
		// rest stay free for receives, so this one goes from the heap.
		l.send(dst, append([]byte(nil), chunk...), -1)
		l.putBuf(bid)
		return
	}
	if len(dst.out) == 0 {
		dst.backlogged()
	}
	dst.out = append(dst.out, chunk...)
	l.putBuf(bid)
	if len(dst.out) >= uringBacklog {
		l.stopRecv(dst.peer)
	}
}

func (l *uringLoop) onSend(sd *evSide, res int32) {
	s := sd.s
	sd.ops--
	sent, bid := sd.inflight, sd.bid
	sd.inflight, sd.bid = nil, -1
	defer func() {
		if !sd.isClient && s.handing {
			l.handOver(s)
		}
		l.release(sd)
	}()
	if res >= 0 && int(res) < len(sent) {
		if len(sd.out) == 0 {
			sd.backlogged()
		}
		sd.out = append(append([]byte(nil), sent[res:]...), sd.out...)
	}
	if bid >= 0 {
		l.held--
		l.putBuf(bid)
	}
	if res < 0 {
		l.end(s, false)
		return
	}
	if s.ended {
		return
	}
	if len(sd.out) > 0 {
		out := sd.out
		sd.out = nil
		l.send(sd, out, -1)
		return
	}
	if sd.held {
		// sd took its KeyUpdate answer: it is read again.
		sd.held = false
		l.rearm(sd)
	}
	if sd.isClient && s.backendGone {
		l.end(s, false)
		return
	}
	if s.ending && !sd.isClient {
		l.end(s, !s.clientGone)
		return
	}
	if !sd.peer.recvOn {
		l.rearm(sd.peer)
	}
}

// hungUp handles the end of sd's stream.
func (l *uringLoop) hungUp(sd *evSide) {
	s := sd.s
	switch {
	case s.handing && !sd.isClient:
		s.handOK = false
	case s.ended:
	case sd.isClient && s.ending:
		// The client hung up after its Terminate, perhaps before what
		// preceded it reached the backend: the session ends when it has.
	case !sd.isClient:
		l.backendEnded(s)
	default:
		l.end(s, false)
	}
}

// backendEnded ends the session of a backend that hung up, closed its TLS
// stream or sent a record that did not open, once what it sent before (its
// FATAL), or the error that tells the client why when it said nothing
// (Tracker.BackendEnded), has gone to the client: a send queued in this
// round is submitted after it, and shutting the client down now would cut
// it. onSend ends the session then.
func (l *uringLoop) backendEnded(s *evSession) {
	if s.backendGone {
		return // already waiting (its alert, then its hang-up)
	}
	c := &s.client
	if bye := s.t.BackendEnded(); len(bye) > 0 && !s.ending && !s.ended {
		if c.tls != nil {
			l.forwardSealed(c, bye, -1)
		} else {
			l.forwardHeap(c, append([]byte(nil), bye...)) // the loop's own copy
		}
	}
	if c.inflight != nil || len(c.out) > 0 {
		s.backendGone = true
		l.stopRecv(&s.backend)
		return
	}
	l.end(s, false)
}

// end takes the session off the loop: the client socket is closed, and the
// backend either reset for the pool (clean end of a pooled session) or
// closed.
func (l *uringLoop) end(s *evSession, terminated bool) {
	if s.ended {
		return
	}
	keep := terminated && s.keep != nil && s.backend.inflight == nil && len(s.backend.out) == 0 && s.t.Clean() &&
		(s.backend.tls == nil || s.backend.tls.idle())
	l.mu.Lock()
	l.count--
	l.mu.Unlock()
	if rl := s.client.tls; rl != nil && s.client.inflight == nil && len(s.client.out) == 0 {
		// What tls.Conn.Close sends: close_notify, or the alert that says
		// what was wrong. Best effort, as the client may be gone.
		sysWrite(s.client.fd, rl.closeAlert())
	}
	if rl := s.backend.tls; rl != nil && !keep && s.backend.inflight == nil && len(s.backend.out) == 0 {
		sysWrite(s.backend.fd, rl.closeAlert())
	}
	s.mu.Lock()
	s.ended = true
	l.closeSide(&s.client)
	if !keep {
		l.closeSide(&s.backend)
	}
	s.mu.Unlock()
	s.client.out, s.backend.out = nil, nil
	if keep {
		s.t.Keeping()
		l.startReset(s)
	}
	s.callEnd()
	l.release(&s.client)
	l.release(&s.backend)
}

// closeSide shuts sd's socket down now, which completes its requests, and
// closes the descriptor after the next submit.
func (l *uringLoop) closeSide(sd *evSide) {
	fd := sd.fd
	rawShutdown(fd)
	l.afterSubmit = append(l.afterSubmit, func() { rawClose(fd) })
}

// startReset hands the backend of a session whose client left clean to
// Keep: its recv is cancelled, and once it is gone (handOver) the reset is
// sent and the socket handed over, the answer left for Keep's side to read
// (Session.Keep). The loop does not wait a round trip for it.
func (l *uringLoop) startReset(s *evSession) {
	s.handing, s.handOK = true, true
	l.stopRecv(&s.backend)
	l.handOver(s)
}

// abandonHandOver closes, rather than keeps, a backend being handed over
// (shutdown).
func (l *uringLoop) abandonHandOver(s *evSession) {
	s.handOK = false
	unix.Shutdown(s.backend.fd, unix.SHUT_RDWR)
	l.handOver(s)
}

// handOver completes startReset once nothing of the backend is in flight:
// a backend that spoke or hung up meanwhile is closed.
func (l *uringLoop) handOver(s *evSession) {
	if !s.handing || s.backend.ops > 0 {
		return
	}
	s.handing = false
	fd := s.backend.fd
	if s.handOK {
		msg := s.resetMsg
		if rl := s.backend.tls; rl != nil {
			msg = rl.seal(nil, msg)
		}
		if w, err := sysWrite(fd, msg); err != nil || w != len(msg) {
			s.handOK = false
		}
	}
	if !s.handOK {
		l.closeSide(&s.backend)
		fd = -1
	}
	l.afterSubmit = append(l.afterSubmit, func() { s.kept(fd) })
	l.release(&s.backend)
}

// inFlight reports whether any request of a session is still in flight.
func (l *uringLoop) inFlight() bool {
	for _, sd := range l.slots {
		if sd != nil && sd.ops > 0 {
			return true
		}
	}
	return false
}

// giveUp ends a session the loop never took.
func (l *uringLoop) giveUp(s *evSession) {
	s.mu.Lock()
	s.ended = true
	unix.Close(s.client.fd)
	unix.Close(s.backend.fd)
	s.mu.Unlock()
	l.mu.Lock()
	l.count--
	l.mu.Unlock()
	s.callEnd()
}

// shutdown ends every session left, waits (briefly) for their requests to
// complete, and releases the ring.
func (l *uringLoop) shutdown() {
	l.mu.Lock()
	l.stopping = true // also when the loop ends on an error: add refuses
	in := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, s := range in {
		l.giveUp(s)
	}
	for _, sd := range l.slots {
		if sd == nil {
			continue
		}
		switch s := sd.s; {
		case !s.ended && sd.isClient:
			l.end(s, false)
		case s.handing && !sd.isClient:
			l.abandonHandOver(s)
		}
	}
	// The ring must outlive every request that may still write to the
	// buffers; shut-down sockets complete theirs at once.
	ts := unix.NsecToTimespec(50e6)
	for i := 0; i < 20 && (l.inFlight() || l.pending > 0); i++ {
		l.enter(1, &ts)
		l.reap()
	}
	l.enter(0, nil) // closes what the last completions let go
	if l.inFlight() {
		// Leave the buffers mapped rather than let the kernel write into
		// freed memory.
		l.maps = nil
	}
	l.discard()
}
