package shiftkey

import (
	"context"
	"strings"
	"time"
)

// CredentialFilter selects issued credentials for an operator (shiftkey
// credentials list|revoke): every field set must match.
type CredentialFilter struct {
	Scope        string // cluster identifier or workgroup credential scope
	LoginName    string
	PrincipalARN string // the IAM principal that asked for them
	ID           string
	// SessionsOf widens PrincipalARN to the assumed-role sessions it
	// started (STS sessions whose source it is): everything a leaked
	// access key of that principal could have obtained.
	SessionsOf bool
}

// IsZero reports whether f selects every credential.
func (f CredentialFilter) IsZero() bool {
	return f.Scope == "" && f.LoginName == "" && f.PrincipalARN == "" && f.ID == ""
}

// Revocation records a credential an operator revoked.
type Revocation struct {
	ID           string
	Scope        string
	LoginName    string
	PrincipalARN string
	ExpiresAt    time.Time
	RevokedAt    time.Time
	Terminate    bool // its open gateway sessions are to end too
}

// CredentialAdmin lists and revokes issued credentials, which Redshift
// cannot do: a revoked credential stops logging in at once, on every
// replica, and with Terminate its open sessions end.
type CredentialAdmin interface {
	// ListCredentials returns the credentials matching f unexpired at
	// now, oldest first, without their keys or digests.
	ListCredentials(ctx context.Context, f CredentialFilter, now time.Time) ([]*Credential, error)
	// RevokeCredentials deletes the credentials matching f, expired or
	// not, and records their revocation at at, in one transaction; it
	// returns them (without keys). A filter matching everything is refused
	// (CodeInvalidParameterValue).
	RevokeCredentials(ctx context.Context, f CredentialFilter, at time.Time, terminate bool) ([]*Credential, error)
	// Revocations returns the revocation records of those of ids that
	// were revoked.
	Revocations(ctx context.Context, ids []string) ([]Revocation, error)
}

// ErrEmptyFilter refuses a revocation that would match every credential.
var ErrEmptyFilter = Errorf(CodeInvalidParameterValue, "name the credentials to revoke: a cluster, login name, principal or credential id")

// AssumedRoleARN is the ARN of an assumed-role session of role in the
// account of principal (an IAM ARN), as STS names it.
func AssumedRoleARN(principal, role, session string) string {
	account := ""
	if f := strings.SplitN(principal, ":", 6); len(f) == 6 {
		account = f[4]
	}
	return "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session
}
