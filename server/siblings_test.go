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
	s.onServer("analytics", shiftkey.Backend{Host: "/var/run/postgresql", Port: 5432})
	s.onServer("analytics-wg", shiftkey.Backend{Host: "/var/run/postgresql/"}) // the same directory, the default port
	s.onServer("other", shiftkey.Backend{Host: "db.example.com", Port: 5432})
	s.onServer("other-too", shiftkey.Backend{Host: "DB.example.com", Port: 5432})
	s.onServer("elsewhere", shiftkey.Backend{Host: "db.example.com", Port: 5433})
	s.onServer("socket-elsewhere", shiftkey.Backend{Host: "/var/run/postgresql", Port: 5433})
	for scope, want := range map[string][]string{
		"analytics": {"analytics-wg"}, "analytics-wg": {"analytics"}, "other": {"other-too"}, "other-too": {"other"},
		"elsewhere": nil, "socket-elsewhere": nil,
	} {
		if got := s.siblingsOf(scope); !slices.Equal(got, want) {
			t.Errorf("siblingsOf(%s) = %q, want %q", scope, got, want)
		}
	}
	// Their backends, once made, are the ones a cut on the server reaches.
	backends := map[string]*pgbackend.Backend{}
	for _, scope := range []string{"analytics", "analytics-wg", "other", "other-too", "elsewhere"} {
		backends[scope] = new(pgbackend.Backend)
		s.servedBy(scope, backends[scope])
	}
	for scope, want := range map[string][]*pgbackend.Backend{
		"analytics": {backends["analytics-wg"]}, "analytics-wg": {backends["analytics"]}, "other": {backends["other-too"]},
		"elsewhere": nil, "socket-elsewhere": nil,
	} {
		if got := s.siblingBackends(scope); !slices.Equal(got, want) {
			t.Errorf("siblingBackends(%s) = %p, want %p", scope, got, want)
		}
	}
	s.onServer("analytics-wg", shiftkey.Backend{}) // its workgroup removed
	if got := s.siblingBackends("analytics"); got != nil {
		t.Errorf("after analytics-wg's removal: siblingBackends(analytics) = %p, want none", got)
	}
	if got := s.siblingsOf("analytics"); got != nil {
		t.Errorf("after analytics-wg's removal: siblingsOf(analytics) = %q, want none", got)
	}
}
