package sqlite

import (
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// walIndexHeader is the first copy of the WAL-index header in the store's
// -shm file (https://www.sqlite.org/walformat.html, "The WAL-Index
// Header"), mapped read-only: SQLite rewrites it at every commit, by any
// process, before the commit returns (its change counter, frame count and
// checksums), so comparing it with an earlier read tells whether anything
// was committed since, for the price of twelve loads instead of a read
// transaction (PRAGMA data_version costs ~10 µs through the driver: file
// locks). SQLite never truncates the file while a connection of this
// process has it open, and the header is read only while the store's
// own connection is.
type walIndexHeader struct {
	mem  []byte
	fd   int
	key  [2]uint64
	path string // the -shm file's, as SQLite names it (shmPath)
	refs int    // stores of this process that use it; walIndexes.Mutex
}

// walIndexHeaderSize is the header's size: twelve 32-bit words.
const walIndexHeaderSize = 4 * walIndexHeaderWords

// walIndexes are the headers mapped by this process, by the -shm file's
// device and inode, shared by the stores open on one file. A descriptor
// is closed only once every store of the file has closed its SQLite
// connections (release): closing any descriptor of a file drops every
// POSIX lock this process holds on it, SQLite's included
// (https://www.sqlite.org/howtocorrupt.html, 2.2), and another process
// that then found the file unlocked would take itself for its last user
// and delete the WAL under this one. Nor while a store of the file is
// opening (openingStore).
var walIndexes struct {
	sync.Mutex
	m map[[2]uint64]*walIndexHeader
	// opening counts, by shmPath, the stores between openingStore and its
	// done.
	opening map[string]int
}

// shmPath is the -shm file SQLite uses for the store at dbPath: it names
// it after the file the path resolves to (one beside a symlink is no
// one's).
func shmPath(dbPath string) (string, error) {
	real, err := filepath.EvalSymlinks(dbPath)
	return real + "-shm", err
}

// openingStore marks a store of dbPath as opening, from before its first
// connection until done, which Open calls once it has mapped the header
// or closed its connections. Its connections hold SQLite's locks on the
// -shm from their first read, before it maps the header; meanwhile the
// last other store of the file to release its header must not close its
// descriptor, which would drop them: the header is kept, for the opening
// store to take over, and what none took is closed at the last done.
func openingStore(dbPath string) (done func()) {
	path, err := shmPath(dbPath)
	if err != nil {
		path = dbPath + "-shm"
	}
	walIndexes.Lock()
	defer walIndexes.Unlock()
	if walIndexes.opening == nil {
		walIndexes.opening = map[string]int{}
	}
	walIndexes.opening[path]++
	return func() {
		walIndexes.Lock()
		defer walIndexes.Unlock()
		if walIndexes.opening[path]--; walIndexes.opening[path] > 0 {
			return
		}
		delete(walIndexes.opening, path)
		for _, h := range walIndexes.m {
			if h.path == path && h.refs == 0 {
				h.close()
			}
		}
	}
}

// openWALIndexHeader maps the header of the store at dbPath, whose
// connections are open: nil when the file cannot be opened, unmapped (ok
// false) when it cannot be mapped; then data_version serves. Release it
// once the store's connections have closed.
func openWALIndexHeader(dbPath string) *walIndexHeader {
	path, err := shmPath(dbPath)
	if err != nil {
		return nil
	}
	walIndexes.Lock()
	defer walIndexes.Unlock()
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil || st.Size < walIndexHeaderSize {
		return nil
	}
	if h := walIndexes.m[fileKey(&st)]; h != nil {
		h.refs++
		return h
	}
	// Not an *os.File, which would close itself when collected.
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	h := &walIndexHeader{fd: fd, path: path, refs: 1}
	if syscall.Fstat(fd, &st) == nil && st.Size >= walIndexHeaderSize && walIndexes.m[fileKey(&st)] == nil && inUse(fd) {
		h.mem, err = syscall.Mmap(fd, 0, walIndexHeaderSize, syscall.PROT_READ, syscall.MAP_SHARED)
	}
	h.key = fileKey(&st)
	if h.mem == nil {
		// Kept, unmapped, until the store closes: closing it now would
		// drop the locks of the connections just opened. Under a key of
		// its own, which no other store finds.
		h.key = [2]uint64{^uint64(0), uint64(fd)}
	}
	if walIndexes.m == nil {
		walIndexes.m = map[[2]uint64]*walIndexHeader{}
	}
	walIndexes.m[h.key] = h
	return h
}

// shmDMS is the byte of the -shm that every SQLite connection with the
// file open holds a read lock on (UNIX_SHM_DMS in SQLite's os_unix.c).
const shmDMS = 128

// inUse tells whether some connection, of this process or another, holds
// the -shm's DMS lock: a file nobody holds it on is not the one the
// store's connections use (a leftover), and its header would never
// change. F_OFD_GETLK reports this process's own (POSIX) locks too, and
// takes none.
func inUse(fd int) bool {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: shmDMS, Len: 1}
	return syscall.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk) == nil && lk.Type != syscall.F_UNLCK
}

// ok tells whether the header is mapped.
func (h *walIndexHeader) ok() bool { return h.mem != nil }

// fileKey is a file's device and inode (their widths vary by platform).
func fileKey(st *syscall.Stat_t) [2]uint64 { return [2]uint64{uint64(st.Dev), uint64(st.Ino)} }

// read is the header as it is now. Another process may be writing it: a
// torn read differs from the last one, which only costs a store read.
func (h *walIndexHeader) read() (m changeMark) {
	for i := range m {
		m[i] = atomic.LoadUint32((*uint32)(unsafe.Pointer(&h.mem[4*i])))
	}
	return m
}

// release is a store's close of h, after its connections have closed:
// the last one unmaps it and closes its descriptor, unless a store of the
// file is opening (openingStore).
func (h *walIndexHeader) release() {
	walIndexes.Lock()
	defer walIndexes.Unlock()
	if h.refs--; h.refs > 0 || walIndexes.opening[h.path] > 0 {
		return
	}
	h.close()
}

// close unmaps h and closes its descriptor; walIndexes is locked.
func (h *walIndexHeader) close() {
	delete(walIndexes.m, h.key)
	if h.mem != nil {
		syscall.Munmap(h.mem)
	}
	syscall.Close(h.fd)
}
