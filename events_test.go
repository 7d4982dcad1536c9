package shiftkey_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// recorder notes each event it hears as "name:kind".
type recorder struct {
	name  string
	heard *[]string
}

func (r recorder) note(kind string)                { *r.heard = append(*r.heard, r.name+":"+kind) }
func (r recorder) APICall(*shiftkey.APICall)       { r.note("api") }
func (r recorder) Login(*shiftkey.Login)           { r.note("login") }
func (r recorder) SessionEnd(*shiftkey.SessionEnd) { r.note("end") }
func (r recorder) Grant(e *shiftkey.GrantChange)   { r.note(fmt.Sprintf("grant-%p", e)) }

// Observers passes each event, through the method of its kind, to every
// member in order.
func TestObserversTellEveryMemberInOrder(t *testing.T) {
	var heard []string
	os := shiftkey.Observers{recorder{"a", &heard}, recorder{"b", &heard}}
	g := &shiftkey.GrantChange{}
	os.APICall(&shiftkey.APICall{})
	os.Login(&shiftkey.Login{})
	os.SessionEnd(&shiftkey.SessionEnd{})
	os.Grant(g)
	grant := fmt.Sprintf("grant-%p", g)
	want := []string{"a:api", "b:api", "a:login", "b:login", "a:end", "b:end", "a:" + grant, "b:" + grant}
	if !slices.Equal(heard, want) {
		t.Fatalf("heard %v, want %v", heard, want)
	}
}

// audit tail reads back which groups a login did not join from the text of
// its notices: the group, however it is spelled, and nothing else.
func TestGroupNotJoinedReadsTheNotice(t *testing.T) {
	for _, g := range []string{"analysts", `odd "name`, "ünï\\cödé, not joined", ""} {
		for _, n := range []string{shiftkey.NotJoinedNotice(g) + ": it does not exist",
			shiftkey.NotJoinedNotice(g) + ", and revoked from dana for its other sessions too, as it turned unsafe since it was granted: why"} {
			if got, ok := shiftkey.GroupNotJoined(n); !ok || got != g {
				t.Errorf("GroupNotJoined(%q) = %q, %v; want %q", n, got, ok, g)
			}
		}
	}
	for _, n := range []string{"the role was created", `group "x" joined`, `group x not joined`, `group "x`} {
		if g, ok := shiftkey.GroupNotJoined(n); ok {
			t.Errorf("GroupNotJoined(%q) = %q, want none", n, g)
		}
	}
}
