package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Found in an operator's review: --help on every subcommand printed its
// usage and exited 1, and `policy --help` said "unknown policy command".
// Asking for help exits 0; a command line that is wrong still exits 1.
func TestHelpExitsZero(t *testing.T) {
	for _, tc := range []struct {
		args string
		code int
	}{
		{"--help", 0}, {"serve --help", 0}, {"dev -h", 0}, {"policy --help", 0}, {"policy why --help", 0},
		{"audit tail --help", 0}, {"credentials list --help", 0}, {"store rotate-key --help", 0},
		{"serve", 1}, {"policy", 1}, {"policy nonsense", 1}, {"nonsense", 1},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), mainChildEnv+"="+tc.args)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || strings.Contains(string(out), "unknown policy command \"--help\"") {
			t.Errorf("shiftkey %s: exit %d, want %d\n%s", tc.args, code, tc.code, out)
		}
	}
}
