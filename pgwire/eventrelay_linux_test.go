package pgwire

// perLoop counts the sessions on each loop now.
func (r *EventRelay) perLoop() []int {
	out := make([]int, len(r.loops))
	for i, l := range r.loops {
		l.mu.Lock()
		out[i] = len(l.sides) / 2
		l.mu.Unlock()
	}
	return out
}

func (r *EventRelay) backlogCounts() (toClient, toBackend int64) {
	return r.backlogs[0].Load(), r.backlogs[1].Load()
}

func (r *EventRelay) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}
