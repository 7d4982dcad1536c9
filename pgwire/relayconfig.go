package pgwire

// Event relay engines (RelayConfig.Engine).
const (
	EngineIOURing = "io_uring"
	EngineEpoll   = "epoll"
)

// Scheduling policies for the event loops' threads (RelayConfig.Sched).
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
)

// RelayConfig configures an event relay.
type RelayConfig struct {
	Threads int    // event loops (at least one)
	Engine  string // EngineIOURing, EngineEpoll, or "": io_uring where this kernel allows it, else epoll
	Sched   string // SchedBatch (also ""), or SchedNormal
}
