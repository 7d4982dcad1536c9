package server

import (
	"slices"
	"testing"

	"github.com/shiftkey/shiftkey"
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
	s.onServer("analytics-wg", shiftkey.Backend{}) // its workgroup removed
	if got := s.siblingsOf("analytics"); got != nil {
		t.Errorf("after analytics-wg's removal: siblingsOf(analytics) = %q, want none", got)
	}
}
