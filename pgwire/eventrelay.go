package pgwire

import "github.com/shiftkey/shiftkey/relay"

// The event relay lives in package relay; these names keep the gateway's
// configuration where its callers find it.
type (
	EventRelay  = relay.EventRelay
	RelayConfig = relay.Config
)

const (
	EngineIOURing       = relay.EngineIOURing
	EngineEpoll         = relay.EngineEpoll
	SchedBatch          = relay.SchedBatch
	SchedNormal         = relay.SchedNormal
	SchedProcess        = relay.SchedProcess
	EventRelaySupported = relay.Supported
)

// NewEventRelay is relay.New.
func NewEventRelay(c RelayConfig) (*EventRelay, error) { return relay.New(c) }
