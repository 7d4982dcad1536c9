// Command uringrelay is the experiment behind the event relay's use of epoll
// rather than io_uring: a bare proxy (TCP in, PostgreSQL's unix socket out)
// with two engines on one locked thread each, so that they differ only in how
// bytes reach the kernel.
//
//   - epoll: level-triggered epoll_wait, then recvfrom and sendto per chunk,
//     as the gateway's event relay does.
//   - uring: io_uring with a multishot recv per socket into a provided-buffer
//     ring, and the send submitted from that buffer; one io_uring_enter per
//     loop turn submits everything queued and waits (SINGLE_ISSUER,
//     DEFER_TASKRUN; Linux 6.1+).
//
// It does no authentication and no framing (the client's startup and
// authentication pass through to PostgreSQL), and every client gets a new
// backend, so measure it mid-run (bench/gateway/midsplit.sh), after the
// backends are warm. Linux on amd64 or arm64 only.
//
//	go run ./bench/gateway/uringrelay -l 127.0.0.1:28439 -b $W/.s.PGSQL.25432 -engine uring
//
// See ../README.md ("io_uring") for how it was measured.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("l", "127.0.0.1:28439", "listen address (TCP)")
	backend := flag.String("b", "", "PostgreSQL's unix socket, e.g. $W/.s.PGSQL.25432")
	engine := flag.String("engine", "uring", "uring or epoll")
	flag.Parse()
	var add func(client, backend int)
	switch *engine {
	case "uring":
		l, err := startURingLoop()
		if err != nil {
			log.Fatal(err)
		}
		add = l.add
	case "epoll":
		l, err := newEpollLoop()
		if err != nil {
			log.Fatal(err)
		}
		go l.run()
		add = l.add
	default:
		log.Fatalf("unknown engine %q", *engine)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("pid %d, %s engine, listening on %s", os.Getpid(), *engine, ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		b, err := net.Dial("unix", *backend)
		if err != nil {
			log.Print(err)
			c.Close()
			continue
		}
		cfd, err1 := takeFD(c)
		bfd, err2 := takeFD(b)
		if err1 != nil || err2 != nil {
			log.Print(err1, err2)
			unix.Close(cfd)
			unix.Close(bfd)
			continue
		}
		add(cfd, bfd)
	}
}

// takeFD returns a non-blocking duplicate of c's socket and closes c.
func takeFD(c net.Conn) (int, error) {
	defer c.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return fd, unix.SetNonblock(fd, true)
}

// epollLoop relays as the gateway's event relay does, without its
// protocol tracking.
type epollLoop struct{ epfd int }

func newEpollLoop() (*epollLoop, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	return &epollLoop{epfd: fd}, err
}

// add registers both sockets, each event naming its peer.
func (l *epollLoop) add(a, b int) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, a, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a), Pad: int32(b)})
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, b, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b), Pad: int32(a)})
}

func (l *epollLoop) run() {
	runtime.LockOSThread()
	buf := make([]byte, 64<<10)
	events := make([]unix.EpollEvent, 128)
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), ^uintptr(0), 0, 0)
		if e != 0 {
			continue
		}
		closed := map[int32]bool{}
		for _, ev := range events[:n] {
			if closed[ev.Fd] {
				continue
			}
			r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(ev.Fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
			if e == unix.EAGAIN {
				continue
			}
			if e == 0 && r > 0 {
				// A bench client reads what it asked for: a short write
				// is not handled.
				_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(ev.Pad), uintptr(unsafe.Pointer(&buf[0])), r, unix.MSG_NOSIGNAL, 0, 0)
				if e == 0 {
					continue
				}
			}
			closed[ev.Fd], closed[ev.Pad] = true, true
			unix.Close(int(ev.Fd))
			unix.Close(int(ev.Pad))
		}
	}
}

// io_uring ABI (include/uapi/linux/io_uring.h).
type sqe struct {
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

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

type ringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	_                                                                      [3]uint32
	sqOff                                                                  [10]uint32 // head, tail, ring_mask, ring_entries, flags, dropped, array, resv1, user_addr (u64)
	cqOff                                                                  [10]uint32 // head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1, user_addr (u64)
}

const (
	opRead = 22
	opSend = 26
	opRecv = 27

	sqeBufferSelect = 1 << 5
	recvMultishot   = 1 << 1
	cqeFBuffer      = 1 << 0
	cqeFMore        = 1 << 1

	setupCQSize       = 1 << 3
	setupSubmitAll    = 1 << 7
	setupCoopTaskrun  = 1 << 8
	setupSingleIssuer = 1 << 12
	setupDeferTaskrun = 1 << 13
	enterGetEvents    = 1
	registerPbufRing  = 22
	offSQEs           = 0x10000000

	nBufs   = 256
	bufSize = 16 << 10
	wakeTag = ^uint64(0)
)

type uringSide struct {
	fd       int
	id       uint64
	peer     *uringSide
	queue    [][3]int // provided buffers waiting to go to this socket: id, offset, length
	inFlight bool     // a send to this socket is submitted
	recvOn   bool     // its multishot recv is armed
	dead     bool
}

type uringLoop struct {
	ringFD                 int
	sqTail, sqMask         *uint32
	sqes                   []sqe
	cqHead, cqTail, cqMask *uint32
	cqes                   []cqe
	tail, toSubmit         uint32
	bufRing, bufs          []byte
	bufTail                uint16
	wake                   int
	wakeBuf                []byte
	mu                     sync.Mutex
	incoming               [][2]int
	sides                  map[uint64]*uringSide
	nextID                 uint64
}

// startURingLoop makes the ring on a locked thread of its own, which then
// runs the loop: with SINGLE_ISSUER only the ring's creator may submit.
func startURingLoop() (*uringLoop, error) {
	type made struct {
		l   *uringLoop
		err error
	}
	ch := make(chan made)
	go func() {
		runtime.LockOSThread()
		l, err := newURingLoop()
		ch <- made{l, err}
		if err == nil {
			l.run()
		}
	}()
	m := <-ch
	return m.l, m.err
}

func newURingLoop() (*uringLoop, error) {
	l := &uringLoop{sides: map[uint64]*uringSide{}, nextID: 1}
	p := ringParams{flags: setupSingleIssuer | setupDeferTaskrun | setupSubmitAll | setupCoopTaskrun | setupCQSize, cqEntries: 4096}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1024, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e
	}
	l.ringFD = int(fd)
	size := max(p.sqOff[6]+p.sqEntries*4, p.cqOff[5]+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	rb, err := unix.Mmap(l.ringFD, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, err
	}
	sb, err := unix.Mmap(l.ringFD, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, err
	}
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&rb[off])) }
	l.sqTail, l.sqMask = at(p.sqOff[1]), at(p.sqOff[2])
	sqArray := unsafe.Slice(at(p.sqOff[6]), p.sqEntries)
	for i := range sqArray {
		sqArray[i] = uint32(i) // slot i of the SQ array is always SQE i
	}
	l.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sb[0])), p.sqEntries)
	l.cqHead, l.cqTail, l.cqMask = at(p.cqOff[0]), at(p.cqOff[1]), at(p.cqOff[2])
	l.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&rb[p.cqOff[5]])), p.cqEntries)
	l.tail = *l.sqTail

	// Provided buffers live outside Go's heap: the kernel writes them
	// whenever data arrives.
	if l.bufRing, err = unix.Mmap(-1, 0, nBufs*16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
		return nil, err
	}
	if l.bufs, err = unix.Mmap(-1, 0, nBufs*bufSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
		return nil, err
	}
	reg := struct {
		addr    uint64
		entries uint32
		bgid    uint16
		flags   uint16
		_       [3]uint64
	}{addr: uint64(uintptr(unsafe.Pointer(&l.bufRing[0]))), entries: nBufs}
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(l.ringFD), registerPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0); e != 0 {
		return nil, e
	}
	for i := range nBufs {
		l.putBuf(i)
	}
	l.publishBufs()
	if l.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		return nil, err
	}
	l.wakeBuf = make([]byte, 8)
	return l, nil
}

// putBuf hands buffer id back to the kernel (visible after publishBufs).
func (l *uringLoop) putBuf(id int) {
	e := unsafe.Pointer(&l.bufRing[int(l.bufTail%nBufs)*16])
	*(*uint64)(e) = uint64(uintptr(unsafe.Pointer(&l.bufs[id*bufSize])))
	*(*uint32)(unsafe.Add(e, 8)) = bufSize
	*(*uint16)(unsafe.Add(e, 12)) = uint16(id)
	l.bufTail++
}

// publishBufs stores the ring's tail (bytes 14–15, little-endian) with
// release order, rewriting entry 0's id (bytes 12–13) as it is.
func (l *uringLoop) publishBufs() {
	w := (*uint32)(unsafe.Pointer(&l.bufRing[12]))
	atomic.StoreUint32(w, uint32(l.bufTail)<<16|*w&0xffff)
}

func (l *uringLoop) get() *sqe {
	s := &l.sqes[l.tail&*l.sqMask]
	*s = sqe{}
	l.tail++
	l.toSubmit++
	return s
}

func (l *uringLoop) add(client, backend int) {
	l.mu.Lock()
	l.incoming = append(l.incoming, [2]int{client, backend})
	l.mu.Unlock()
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	unix.Write(l.wake, one)
}

func (l *uringLoop) armWake() {
	s := l.get()
	s.opcode, s.fd = opRead, int32(l.wake)
	s.addr, s.len = uint64(uintptr(unsafe.Pointer(&l.wakeBuf[0]))), 8
	s.userData = wakeTag
}

func (l *uringLoop) armRecv(sd *uringSide) {
	s := l.get()
	s.opcode, s.fd, s.ioprio, s.flags = opRecv, int32(sd.fd), recvMultishot, sqeBufferSelect
	s.userData = sd.id << 1
	sd.recvOn = true
}

// kick submits the next queued chunk to sd, one send at a time so that
// chunks arrive in order.
func (l *uringLoop) kick(sd *uringSide) {
	if sd.inFlight || len(sd.queue) == 0 {
		return
	}
	c := sd.queue[0]
	s := l.get()
	s.opcode, s.fd, s.opFlags = opSend, int32(sd.fd), unix.MSG_NOSIGNAL
	s.addr, s.len = uint64(uintptr(unsafe.Pointer(&l.bufs[c[0]*bufSize+c[1]]))), uint32(c[2])
	s.userData = sd.id<<1 | 1
	sd.inFlight = true
}

// kill ends a session: shutdown makes its armed recvs complete, close
// gives the descriptors back (the ring holds the sockets until then).
func (l *uringLoop) kill(sd *uringSide) {
	for _, x := range []*uringSide{sd, sd.peer} {
		if !x.dead {
			x.dead = true
			unix.Shutdown(x.fd, unix.SHUT_RDWR)
			unix.Close(x.fd)
		}
	}
}

// forget drops a dead side once nothing of it is in flight.
func (l *uringLoop) forget(sd *uringSide) bool {
	if !sd.dead || sd.recvOn || sd.inFlight {
		return false
	}
	for _, c := range sd.queue {
		l.putBuf(c[0])
	}
	delete(l.sides, sd.id)
	return true
}

func (l *uringLoop) run() {
	l.armWake()
	for {
		atomic.StoreUint32(l.sqTail, l.tail)
		n, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(l.ringFD), uintptr(l.toSubmit), 1, enterGetEvents, 0, 0)
		if e == 0 {
			l.toSubmit -= uint32(n)
		} else if e != unix.EINTR && e != unix.EAGAIN && e != unix.EBUSY {
			log.Fatal("io_uring_enter: ", e)
		}
		head, tail := *l.cqHead, atomic.LoadUint32(l.cqTail)
		for ; head != tail; head++ {
			c := l.cqes[head&*l.cqMask]
			if c.userData == wakeTag {
				l.mu.Lock()
				in := l.incoming
				l.incoming = nil
				l.mu.Unlock()
				for _, p := range in {
					a := &uringSide{fd: p[0], id: l.nextID}
					b := &uringSide{fd: p[1], id: l.nextID + 1, peer: a}
					a.peer = b
					l.nextID += 2
					l.sides[a.id], l.sides[b.id] = a, b
					l.armRecv(a)
					l.armRecv(b)
				}
				l.armWake()
				continue
			}
			sd := l.sides[c.userData>>1]
			if c.userData&1 == 0 { // recv
				more := c.flags&cqeFMore != 0
				sd.recvOn = more
				if c.flags&cqeFBuffer != 0 {
					id := int(c.flags >> 16)
					if c.res > 0 && !sd.dead {
						sd.peer.queue = append(sd.peer.queue, [3]int{id, 0, int(c.res)})
						l.kick(sd.peer)
					} else {
						l.putBuf(id)
					}
				}
				switch {
				case sd.dead:
				case c.res <= 0 && c.res != -int32(unix.ENOBUFS):
					l.kill(sd)
				case !more:
					l.armRecv(sd)
				}
				l.forget(sd)
				continue
			}
			// send
			sd.inFlight = false
			ch := &sd.queue[0]
			switch {
			case c.res <= 0:
				l.kill(sd)
			case int(c.res) < ch[2]:
				ch[1] += int(c.res)
				ch[2] -= int(c.res)
			default:
				l.putBuf(ch[0])
				sd.queue = sd.queue[1:]
			}
			if !l.forget(sd) && !sd.dead {
				l.kick(sd)
			}
		}
		atomic.StoreUint32(l.cqHead, head)
		l.publishBufs()
	}
}
