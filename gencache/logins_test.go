package gencache

import (
	"strings"
	"testing"
)

// A re-read keeps the known credentials it meets, in the order of the ids
// read, looks up only the others, leaves out those deleted meanwhile, and
// names the new ones.
func TestRereadLooksUpOnlyUnknownIDs(t *testing.T) {
	type cred struct{ id string }
	a, b := &cred{"a"}, &cred{"b"}
	rr := NewReread([]*cred{a, b}, func(c *cred) string { return c.id })
	for _, id := range []string{"a", "n1", "gone", "b", "n2"} {
		rr.Add([]byte(id))
	}
	if got := strings.Join(rr.Unknown(), ","); got != "n1,gone,n2" {
		t.Fatalf("unknown %s, want n1,gone,n2", got)
	}
	var looked []string
	creds, missed, err := rr.Fill(func(id string) (*cred, bool, error) {
		looked = append(looked, id)
		if id == "gone" {
			return nil, false, nil
		}
		return &cred{id}, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(cs []*cred) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.id)
		}
		return strings.Join(s, ",")
	}
	if ids(creds) != "a,n1,b,n2" || ids(missed) != "n1,n2" || strings.Join(looked, ",") != "n1,gone,n2" || creds[0] != a || creds[2] != b {
		t.Fatalf("creds %s, missed %s, looked up %v", ids(creds), ids(missed), looked)
	}
}
