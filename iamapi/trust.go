package iamapi

import (
	"errors"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// ParseTrustPolicy validates a role trust policy as CreateRole does: the
// iam package parses it, and a malformed document is IAM's
// MalformedPolicyDocument error.
func ParseTrustPolicy(doc string) (*iam.TrustPolicy, error) {
	t, err := iam.ParseTrustPolicy("trust policy", []byte(doc))
	if me, ok := errors.AsType[*iam.MalformedPolicyError](err); ok {
		return nil, shiftkey.Errorf(CodeMalformedPolicyDocument, "%s", me.Message)
	}
	return t, err
}
