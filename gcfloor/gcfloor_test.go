package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{8 << 20, 32 << 20, 300},   // goal 32 MiB
		{2 << 20, 32 << 20, 800},   // goal 32 MiB: the runtime's minimum, 4 MiB × 8
		{16 << 20, 32 << 20, base}, // twice live reaches the floor
		{64 << 20, 32 << 20, base},
		{0, 32 << 20, 800}, // nothing live yet: the minimum makes the floor
		{0, 2 << 20, base}, // a floor under the runtime's minimum changes nothing
		{1 << 20, 6 << 20, 150},
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

func waitGOGC(t *testing.T, what string, cond func(int) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(gogc()); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (GOGC %d)", what, gogc())
		}
		runtime.GC() // a cycle, whose finalizers then run
		time.Sleep(time.Millisecond)
	}
}

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var keep [][]byte

// With a small live heap the percentage rises so the goal reaches the
// floor; with a live heap past half the floor it is GOGC's default;
// stop restores the default.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	const floor = 256 << 20
	stop := Start(floor)
	defer stop()
	waitGOGC(t, "the percentage to rise", func(p int) bool { return p > 400 })
	// The goal is the floor: not the 4 MiB of GOGC=100, nor the runtime's
	// minimum scaled far past it.
	if g := heapGoal(); g < floor*9/10 || g > floor*3/2 {
		t.Fatalf("heap goal %d MiB with a floor of %d MiB", g>>20, floor>>20)
	}
	for range 40 {
		keep = append(keep, make([]byte, 4<<20)) // 160 MB live: past half the floor
	}
	waitGOGC(t, "the default once the live heap is large", func(p int) bool { return p == base })
	keep = nil
	waitGOGC(t, "the percentage to rise again", func(p int) bool { return p > 400 })
	stop()
	if p := gogc(); p != base {
		t.Fatalf("GOGC %d after stop, want %d", p, base)
	}
	runtime.GC()
	runtime.GC()
	if p := gogc(); p != base {
		t.Fatalf("GOGC %d after stop and two collections, want %d", p, base)
	}
}

// GOGC in the environment is the operator's: Start leaves it.
func TestGOGCSetIsLeftAlone(t *testing.T) {
	t.Setenv("GOGC", "100")
	defer debug.SetGCPercent(base)
	stop := Start(256 << 20)
	defer stop()
	// Start adjusts at once when it applies (then at each collection).
	if p := gogc(); p != base {
		t.Fatalf("GOGC %d with GOGC set in the environment, want %d", p, base)
	}
}
