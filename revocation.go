package shiftkey

import (
	"context"
	"strings"
	"time"
)

// CredentialFilter selects issued credentials for an operator (shiftkey
// credentials list|revoke): every field set must match.
type CredentialFilter struct {
	Scope     string // cluster identifier or workgroup credential scope
	LoginName string
	// PrincipalARN is the IAM principal that asked for them; a role's
	// ARN stands for its sessions (RoleSessionsPrefix).
	PrincipalARN string
	ID           string
	// SessionsOf widens PrincipalARN to the assumed-role sessions it
	// started (STS sessions whose source it is): everything a leaked
	// access key of that principal could have obtained.
	SessionsOf bool
	// AccessKeyID selects the credentials issued by calls signed with
	// this key and with the temporary keys of the STS sessions it
	// started, chains included: exactly what one leaked key obtained,
	// where an assumed-role ARN may be shared by other callers.
	AccessKeyID string
}

// IsZero reports whether f selects every credential.
func (f CredentialFilter) IsZero() bool {
	return f.Scope == "" && f.LoginName == "" && f.PrincipalARN == "" && f.ID == "" && f.AccessKeyID == ""
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
	// AccessKeyID signed the call that issued it; "" when not recorded
	// (revoked by a version that did not keep it, or issued before keys
	// were recorded).
	AccessKeyID string
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
	// TerminateRevoked marks terminate the revocations of the credentials
	// matching f that were revoked without it (expired or not), in one
	// transaction, and returns them: their open sessions then end on
	// every replica as those of a revoke with terminate do. A revocation
	// whose issuing key was not recorded is not selected by AccessKeyID.
	// A filter matching everything is refused (CodeInvalidParameterValue).
	TerminateRevoked(ctx context.Context, f CredentialFilter) ([]Revocation, error)
}

// SessionAdmin ends STS sessions before they expire, which AWS cannot do
// by key: the answer to a leaked key whose AssumeRole results would
// otherwise keep working for up to 12 hours.
type SessionAdmin interface {
	// SessionsStartedWith returns the sessions unexpired at now whose
	// temporary key is key or that key started, chains included (as
	// SessionKeysStartedBy walks them), oldest first, without their
	// secrets or token hashes.
	SessionsStartedWith(ctx context.Context, key string, now time.Time) ([]*Session, error)
	// EndSessions ends the sessions SessionsStartedWith selects, expired
	// or not, in one transaction, and returns them (without secrets): each
	// is deleted, so a call signed with it is refused as a token AWS does
	// not accept, and recorded as ended at at, so that a later walk by key
	// (a revocation by access key, the sessions of a principal) still
	// follows it to what it issued and to the sessions it started. Every
	// replica drops its cached copy once its change feed has delivered that.
	EndSessions(ctx context.Context, key string, at time.Time) ([]*Session, error)
}

// RevokedKeys finds credentials revoked before they expired by the keys a
// client proves them with, so that a gateway refuses a login with one as
// revoked and audits it with its credential and principal, instead of as
// a login without a credential. Only the failure path of a login asks.
type RevokedKeys interface {
	// RevokedCredentials returns the credentials of (cluster, login)
	// revoked and unexpired at now, the RevokedLookupLimit revoked last,
	// with ID, Cluster, LoginName, DBUser, PrincipalARN, ExpiresAt and the
	// SCRAM keys (revocations recorded before the keys were kept are left
	// out).
	RevokedCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*Credential, error)
}

// RevokedLookupLimit bounds what one failed login reads and checks of its
// name's revoked credentials: a name with thousands (a leaked key's
// haul, revoked at once) would otherwise make every wrong password cost
// as much, for anyone who tries one.
const RevokedLookupLimit = 32

// ErrEmptyFilter refuses a revocation that would match every credential.
var ErrEmptyFilter = Errorf(CodeInvalidParameterValue, "name the credentials to revoke: a cluster or workgroup, login name, principal, credential id or access key")

// AssumedRoleARN is the ARN of an assumed-role session of role in the
// account of principal (an IAM ARN), as STS names it.
func AssumedRoleARN(principal, role, session string) string {
	account := ""
	if f := strings.SplitN(principal, ":", 6); len(f) == 6 {
		account = f[4]
	}
	return "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session
}

// RoleSessionsPrefix is, for an IAM role's ARN
// (arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME), what the ARNs of its
// sessions begin with: arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/ (a
// session's ARN names the role without its path; a role's name is unique in
// its account whatever its path). ok is false for any other ARN.
func RoleSessionsPrefix(arn string) (prefix string, ok bool) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "iam" || !strings.HasPrefix(f[5], "role/") {
		return "", false
	}
	name := f[5][strings.LastIndexByte(f[5], '/')+1:]
	if name == "" {
		return "", false
	}
	return "arn:" + f[1] + ":sts::" + f[4] + ":assumed-role/" + name + "/", true
}

// SessionStart is one assumed-role session as a store records it: who
// called AssumeRole (SourceARN), for which role, under which name.
type SessionStart struct{ SourceARN, RoleName, SessionName string }

// maxRoleChain bounds the walk of SessionsStartedBy. AWS caps a chained
// session at one hour, so real chains are short; the bound only stops a
// walk from running on without end.
const maxRoleChain = 16

// SessionsStartedBy is the ARNs of every assumed-role session principal
// started, and of every session those started in turn (role chaining),
// for revoking all a leaked key obtained. startedBy returns the sessions
// whose SourceARN is one of sources or, when prefix is not empty, starts
// with prefix: a store answers it with one query per level of the chain.
// A role calls nothing itself, so for a role's ARN the walk starts from
// what its sessions (the ARNs under RoleSessionsPrefix) started.
func SessionsStartedBy(principal string, startedBy func(sources []string, prefix string) ([]SessionStart, error)) ([]string, error) {
	var out []string
	seen := map[string]bool{principal: true}
	prefix, _ := RoleSessionsPrefix(principal)
	for frontier, level := []string{principal}, 0; len(frontier) > 0 && level < maxRoleChain; level++ {
		started, err := startedBy(frontier, prefix)
		if err != nil {
			return nil, err
		}
		frontier, prefix = nil, ""
		for _, s := range started {
			if arn := AssumedRoleARN(s.SourceARN, s.RoleName, s.SessionName); !seen[arn] {
				seen[arn] = true
				frontier = append(frontier, arn)
				out = append(out, arn)
			}
		}
	}
	return out, nil
}

// SessionKeysStartedBy is the temporary access keys of every STS session
// started with key, and of every session those started in turn (role
// chaining): with key, the keys whose issued credentials are all a leak of
// key obtained. startedBy returns the keys of the sessions started with
// one of keys: a store answers it with one query per level of the chain.
func SessionKeysStartedBy(key string, startedBy func(keys []string) ([]string, error)) ([]string, error) {
	var out []string
	seen := map[string]bool{key: true}
	for frontier, level := []string{key}, 0; len(frontier) > 0 && level < maxRoleChain; level++ {
		started, err := startedBy(frontier)
		if err != nil {
			return nil, err
		}
		frontier = nil
		for _, k := range started {
			if !seen[k] {
				seen[k] = true
				frontier = append(frontier, k)
				out = append(out, k)
			}
		}
	}
	return out, nil
}
