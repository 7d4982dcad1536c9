//go:build !linux

package pgwire

func (r *EventRelay) perLoop() []int                { return nil }
func (r *EventRelay) backlogCounts() (int64, int64) { return 0, 0 }
func (r *EventRelay) isRunning() bool               { return false }
