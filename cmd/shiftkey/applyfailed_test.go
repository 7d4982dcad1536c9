package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// A failed apply says "none applied" only when the store knows nothing
// was: a COMMIT whose outcome it could not learn says the changes may be
// in the store.
func TestApplyFailedSaysWhatTheStoreKnows(t *testing.T) {
	known := applyFailed(errors.New("store unavailable"))
	if !strings.Contains(known.Error(), "none of its identity changes applied") {
		t.Errorf("a known failure: %q, want it to say none applied", known)
	}
	unknown := applyFailed(fmt.Errorf("%w: conn closed", shiftkey.ErrCommitUnknown))
	if strings.Contains(unknown.Error(), "none") || !strings.Contains(unknown.Error(), "may or may not be in the store") {
		t.Errorf("an unknown outcome: %q, want it to say the changes may or may not be in the store", unknown)
	}
	if !errors.Is(unknown, shiftkey.ErrCommitUnknown) {
		t.Errorf("an unknown outcome no longer wraps ErrCommitUnknown: %v", unknown)
	}
}
