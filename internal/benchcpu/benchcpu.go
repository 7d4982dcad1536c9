// Package benchcpu reports a benchmark's CPU time per iteration: the whole
// test process's (user and system, every thread), which on a shared
// machine says more than wall time.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Clock measures from Start to Report.
type Clock struct {
	b     *testing.B
	start time.Duration
}

// Start begins measuring for b.
func Start(b *testing.B) Clock { return Clock{b, processCPU(b)} }

// Report adds the CPU time per iteration since Start as "cpu-ms/op".
func (c Clock) Report() {
	c.b.ReportMetric(float64(processCPU(c.b)-c.start)/float64(c.b.N)/1e6, "cpu-ms/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
