package relay

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// callbacks runs the sessions' End and Keep off the loops, on one goroutine
// of the relay's. A goroutine that a loop made ready (a go statement, a
// channel send) would wait in the loop's P's runnext slot: the loop never
// yields its P, so another thread is woken, spins, and may take the
// goroutine only after sleeping a few microseconds (the runtime's
// runqgrab), for every login. The runner is woken through the netpoller
// instead: a write to an eventfd, once per wait of the runner however
// many callbacks have queued since.
type callbacks struct {
	efd  int      // the eventfd; written by the loops
	file *os.File // efd as the runner reads it, through the netpoller

	mu     sync.Mutex
	queue  []func()
	parked bool // the runner waits on efd: the next post wakes it
	closed bool // no loop runs: the runner ends once the queue is empty
}

func newCallbacks() (*callbacks, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &callbacks{efd: fd, file: os.NewFile(uintptr(fd), "relay-callbacks")}, nil
}

// post queues f for the runner; any goroutine may call it.
func (c *callbacks) post(f func()) {
	c.mu.Lock()
	c.queue = append(c.queue, f)
	wake := c.parked
	c.parked = false
	c.mu.Unlock()
	if wake {
		c.wake()
	}
}

func (c *callbacks) wake() {
	rawSignal(c.efd)
}

// close lets the runner end once it has run what is queued (after the last
// loop has ended: nothing posts any more).
func (c *callbacks) close() {
	c.mu.Lock()
	c.closed = true
	wake := c.parked
	c.parked = false
	c.mu.Unlock()
	if wake {
		c.wake()
	}
}

func (c *callbacks) run() {
	defer c.file.Close()
	var spare []func()
	var buf [8]byte
	for {
		c.mu.Lock()
		q := c.queue
		if len(q) == 0 {
			if c.closed {
				c.mu.Unlock()
				return
			}
			c.parked = true
			c.mu.Unlock()
			if _, err := c.file.Read(buf[:]); err != nil {
				return // not seen: the file is closed only here
			}
			continue
		}
		c.queue = spare
		c.mu.Unlock()
		for i, f := range q {
			f()
			q[i] = nil
		}
		spare = q[:0]
	}
}
