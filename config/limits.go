package config

import (
	"cmp"
	"os"
	"runtime"
	"time"

	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/scram"
)

// Limits are the gateways' and the API's operational limits.
type Limits struct {
	MaxConnections int `yaml:"max_connections"` // per gateway; 0: pgwire.DefaultMaxConnections (10,000)
	// MaxConnectionsPerSource caps one client address's connections to a
	// gateway (0: 256); MaxAuthPerSource those still logging in (0: 64).
	MaxConnectionsPerSource int           `yaml:"max_connections_per_source"`
	MaxAuthPerSource        int           `yaml:"max_auth_per_source"`
	IdleTimeout             time.Duration `yaml:"idle_timeout"`         // idle outside a transaction; 0: off
	MaxSessionLifetime      time.Duration `yaml:"max_session_lifetime"` // 0: sessions outlive credentials
	ShutdownGrace           time.Duration `yaml:"shutdown_grace"`       // sessions may finish this long at shutdown; 0: 2s
	UnreadyDelay            time.Duration `yaml:"unready_delay"`        // serve accepts this long after SIGTERM with /readyz failing, then drains; 0: drain at once
	PoolSize                int           `yaml:"pool_size"`            // idle backend connections kept per role, database and startup parameters; 0: no reuse
	PoolIdleTimeout         time.Duration `yaml:"pool_idle_timeout"`    // 0: 1 min
	// Relay moves plaintext sessions' bytes: "event" (default on Linux:
	// loops on RelayThreads locked threads, on io_uring where the kernel
	// allows it, else on epoll), "io_uring" or "epoll" (event, on that
	// engine only), or "goroutine".
	Relay        string `yaml:"relay"`
	RelayThreads int    `yaml:"relay_threads"` // 0: half of CPUs(), at least 1
	// RelaySched is the event loops' threads' scheduling policy: "batch"
	// (default; a woken loop does not preempt the running task, except
	// while it feeds slow readers), "normal", or "process" (batch, and every
	// other thread of the process SCHED_BATCH too; see pgwire.SchedProcess).
	RelaySched string `yaml:"relay_sched"`
	// API limits the AWS API's connections and requests.
	API APILimits `yaml:"api"`
	// Procs is the process's GOMAXPROCS: 0: GoMaxProcs's choice, -1: Go's
	// own default (CPUs()), or a count; GOMAXPROCS in the environment wins.
	// A P more than the cores: while PBKDF2 holds every P for hundreds of
	// microseconds at a time, Go polls the network only on a P that has
	// run out of work (or from sysmon, every 10 ms), so that new requests,
	// answers and the group writer's wake-ups waited behind it; a spare P
	// polls at once, and the kernel shares the cores among the threads.
	Procs int `yaml:"procs"`
	// GCHeapFloorMB is the heap size (MiB) below which the garbage
	// collector does not run (gcfloor): 0: DefaultGCHeapFloorMB, -1: off.
	// GOGC set in the environment turns it off too.
	GCHeapFloorMB int `yaml:"gc_heap_floor_mb"`
}

// DefaultGCHeapFloorMB is gc_heap_floor_mb's default.
const DefaultGCHeapFloorMB = 16

// GCHeapFloor is the heap floor in bytes, 0 for none.
func (l Limits) GCHeapFloor() uint64 {
	switch {
	case l.GCHeapFloorMB < 0:
		return 0
	case l.GCHeapFloorMB == 0:
		return DefaultGCHeapFloorMB << 20
	}
	return uint64(l.GCHeapFloorMB) << 20
}

// APILimits bound what a client of the AWS API can hold: every connection
// is closed after its timeouts, and requests beyond MaxConcurrentRequests
// at once are answered with AWS's throttling error at once. Bodies are
// capped at 1 MiB (shttp.MaxBodyBytes). Zero values take the defaults;
// it converts to shttp.Limits, which applies them.
type APILimits struct {
	ReadHeaderTimeout     time.Duration `yaml:"read_header_timeout"`     // from accept to the end of the headers; 0: 10s
	ReadTimeout           time.Duration `yaml:"read_timeout"`            // from accept to the end of the body; 0: 30s
	WriteTimeout          time.Duration `yaml:"write_timeout"`           // from the end of the headers to the end of the answer; 0: 60s
	IdleTimeout           time.Duration `yaml:"idle_timeout"`            // between requests on a keep-alive connection; 0: 60s
	MaxHeaderBytes        int           `yaml:"max_header_bytes"`        // request line and headers; 0: 64 KiB
	MaxConcurrentRequests int           `yaml:"max_concurrent_requests"` // 0: 256
	CPUSlots              int           `yaml:"cpu_slots"`               // requests doing CPU work at once, the rest queued in order; 0: see Slots, -1: no bound
}

// cpus is Go's GOMAXPROCS when the process started, before shiftkey
// changed it: the machine's CPUs, or fewer under a container's CPU limit.
var cpus = runtime.GOMAXPROCS(0)

// CPUs is how many CPUs the process may use, as Go found at start.
func CPUs() int { return cpus }

// GoMaxProcs is the GOMAXPROCS to set, 0 to leave Go's, for a server
// whose issued logins' verifiers take scramIterations PBKDF2 iterations (0:
// the default). By default one P more than the CPUs where that derivation
// holds a P for long (longDerivations); none where it
// does not, since each spare P costs idle wake-ups (about 7% more CPU per
// gateway login on 2 cores).
func (l Limits) GoMaxProcs(scramIterations int) int {
	switch {
	case l.Procs > 0:
		return l.Procs
	case l.Procs < 0 || os.Getenv("GOMAXPROCS") != "":
		return 0
	case !longDerivations(scramIterations):
		return 0
	}
	return CPUs() + 1
}

// longDerivations reports whether scramIterations (0: the default) is
// 1024 or more: enough that an issue's key derivation holds a P for long
// (75 µs and more with the SHA extensions), so that requests, answers and
// the store writer wait behind it, and that pairing derivations pays.
func longDerivations(scramIterations int) bool {
	return cmp.Or(scramIterations, scram.IssuedIterations) >= 1024
}

// Slots is cpu_slots with its default applied, for a server whose issued
// logins' verifiers take scramIterations PBKDF2 iterations (0: the
// default): the CPUs, or twice as many where derivations of that length
// run two on a core (scram.PairsDerivations), since a request whose keys
// are being derived beside another's holds a slot but no core.
func (a APILimits) Slots(scramIterations int) int {
	switch {
	case a.CPUSlots != 0:
		return a.CPUSlots
	case scram.PairsDerivations() && longDerivations(scramIterations):
		return 2 * CPUs()
	}
	return CPUs()
}

// EventRelay is the config of the event relay the gateways share; ok is
// false for the goroutine relay (configured, or the only one this platform
// has). Threads: from CPUs(), which follows a container's CPU limit.
func (l Limits) EventRelay() (cfg pgwire.RelayConfig, ok bool) {
	if l.Relay == "goroutine" || (l.Relay == "" && !pgwire.EventRelaySupported) {
		return cfg, false
	}
	cfg = pgwire.RelayConfig{Threads: l.RelayThreads, Sched: l.RelaySched}
	if cfg.Threads <= 0 {
		cfg.Threads = max(1, CPUs()/2)
	}
	if l.Relay == pgwire.EngineIOURing || l.Relay == pgwire.EngineEpoll {
		cfg.Engine = l.Relay
	}
	return cfg, true
}
