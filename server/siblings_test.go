package server

import (
	"slices"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// Only gateways on the same backend server count each other's session
// grants: were a gateway on another server counted, a session's end would
// leave its group granted because another server's session holds a group
// of the same name.
func TestSiblingsAreTheGatewaysOnTheSameServer(t *testing.T) {
	s := &Server{}
	backends := map[string]*pgbackend.Backend{}
	for scope, b := range map[string]shiftkey.Backend{
		"analytics":        {Host: "/var/run/postgresql", Port: 5432},
		"analytics-wg":     {Host: "/var/run/postgresql/"}, // the same directory, the default port
		"other":            {Host: "db.example.com", Port: 5432},
		"other-too":        {Host: "DB.example.com", Port: 5432},
		"elsewhere":        {Host: "db.example.com", Port: 5433},
		"socket-elsewhere": {Host: "/var/run/postgresql", Port: 5433},
	} {
		s.onServer(scope, b)
		backends[scope] = new(pgbackend.Backend)
		s.servedBy(scope, backends[scope])
	}
	// A gateway whose backend is not made yet (StartGateway between
	// onServer and servedBy) has no sessions, and is nobody's sibling yet.
	s.onServer("starting", shiftkey.Backend{Host: "/var/run/postgresql"})
	for scope, want := range map[string][]string{
		"analytics": {"analytics-wg"}, "analytics-wg": {"analytics"}, "other": {"other-too"}, "other-too": {"other"},
		"elsewhere": nil, "socket-elsewhere": nil, "starting": {"analytics", "analytics-wg"},
	} {
		var wantBackends []*pgbackend.Backend
		for _, w := range want {
			wantBackends = append(wantBackends, backends[w])
		}
		if got := s.siblingsOf(scope); !slices.Equal(got, wantBackends) {
			t.Errorf("siblingsOf(%s) = %p, want %s's backends %p", scope, got, want, wantBackends)
		}
	}
	s.onServer("analytics-wg", shiftkey.Backend{}) // its workgroup removed
	if got := s.siblingsOf("analytics"); got != nil {
		t.Errorf("after analytics-wg's removal: siblingsOf(analytics) = %p, want none", got)
	}
}
