package dbname

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		lower    bool
	}{
		{"Alice", "alice", false}, {"a.b+c@d-e_1", "a.b+c@d-e_1", false}, {"a" + strings.Repeat("b", 62), "a" + strings.Repeat("b", 62), false},
		{"readers", "readers", true},
	} {
		if got, err := Normalize("P", tt.in, tt.lower); err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in    string
		lower bool
		msg   string
	}{
		{"", false, "between 1 and 64"}, {"1a", false, "begin with a letter"}, {"Readers", true, "lowercase letter"},
		{"rEaders", true, "only lowercase"}, {"a b", false, "only letters"}, {"a/b", false, "only letters"},
		{"a\x00", false, "only letters"}, {"ａ", false, "begin with a letter"}, {"awsu\u0455er", false, "only letters"},
		{"Public", false, "PUBLIC"}, {"select", false, "reserved"}, {"a" + strings.Repeat("b", 63), false, "at most 63"},
		{"a" + strings.Repeat("b", 64), false, "between 1 and 64"},
	} {
		_, err := Normalize("P", tt.in, tt.lower)
		if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "P ") {
			t.Errorf("Normalize(%q): %v, want an error saying %q", tt.in, err, tt.msg)
		}
	}
}
