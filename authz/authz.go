// Package authz authorizes API callers by evaluating, with the iam policy
// engine, the policies the store holds for them: a user's inline and
// attached policies and those of its groups; for an assumed-role session,
// the role's policies intersected with the session policy; either capped
// by the user's or role's permissions boundary.
package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// Store is what the authorizer reads and where it records denials.
type Store interface {
	shiftkey.IdentityStore
	shiftkey.AuditStore
}

// Authorizer implements shiftkey.Authorizer.
type Authorizer struct {
	Store  Store
	Logger *slog.Logger // nil → discard

	mu    sync.Mutex
	cache map[string]*iam.Policy      // parsed policies by label + document
	trust map[string]*iam.TrustPolicy // parsed trust policies by document
}

var _ shiftkey.Authorizer = (*Authorizer)(nil)

func (a *Authorizer) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func (a *Authorizer) parse(ctx context.Context, label, doc string) *iam.Policy {
	key := label + "\x00" + doc
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[string]*iam.Policy{}
	}
	if p, ok := a.cache[key]; ok {
		return p
	}
	p, err := iam.ParsePolicy(label, []byte(doc))
	if err != nil {
		// Documents are validated on write; one that no longer parses (a
		// rule added since, an edit in the store) may hold a Deny, which
		// dropping it would lift. It denies every call of its entity, in
		// its name, until an administrator mends or deletes it.
		a.logger().WarnContext(ctx, "stored policy does not parse: it denies every call of its entity", "policy", label, "error", err)
		p = denyAll(label + " (it does not parse: " + err.Error() + ")")
	}
	if len(a.cache) > 4096 {
		clear(a.cache)
	}
	a.cache[key] = p
	return p
}

// denyAll is a policy named label that denies every action on every
// resource.
func denyAll(label string) *iam.Policy {
	p, err := iam.ParsePolicy(label, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`))
	if err != nil {
		panic(err) // a constant document
	}
	return p
}

// PolicySet is everything that decides for one principal.
type PolicySet struct {
	Identity []*iam.Policy
	// Session are the session's policies, inline and managed (AssumeRole's
	// Policy and PolicyArns): any of them may allow. Nil when it has none.
	Session []*iam.Policy
	// Boundary is the permissions boundary of the user, or of the role of
	// the session: nil when it has none.
	Boundary *iam.Policy
}

// entityPolicies adds the inline and attached policies of one entity.
func (a *Authorizer) entityPolicies(ctx context.Context, kind shiftkey.EntityKind, name string, out []*iam.Policy) ([]*iam.Policy, error) {
	inline, err := a.Store.InlinePolicies(ctx, kind, name)
	if err != nil {
		return nil, err
	}
	for _, d := range inline {
		out = append(out, a.parse(ctx, fmt.Sprintf("%s/%s inline policy %s", kind, name, d.Name), d.Document))
	}
	attached, err := a.Store.AttachedPolicies(ctx, kind, name)
	if err != nil {
		return nil, err
	}
	for _, m := range attached {
		out = append(out, a.parse(ctx, m.ARN, m.Document))
	}
	return out, nil
}

// Policies returns the policy set of a principal.
func (a *Authorizer) Policies(ctx context.Context, p *shiftkey.Principal) (*PolicySet, error) {
	set := &PolicySet{}
	var err error
	switch p.Type {
	case shiftkey.PrincipalAssumedRole:
		if set.Identity, err = a.entityPolicies(ctx, shiftkey.KindRole, p.RoleName, nil); err != nil {
			return nil, err
		}
		if p.SessionPolicy != "" {
			set.Session = a.sessionPolicies(ctx, p)
		}
		if set.Boundary, err = a.boundary(ctx, shiftkey.KindRole, p.RoleName); err != nil {
			return nil, err
		}
	default:
		if set.Identity, err = a.entityPolicies(ctx, shiftkey.KindUser, p.UserName, nil); err != nil {
			return nil, err
		}
		if set.Boundary, err = a.boundary(ctx, shiftkey.KindUser, p.UserName); err != nil {
			return nil, err
		}
		groups, err := a.Store.GroupsForUser(ctx, p.UserName)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			if set.Identity, err = a.entityPolicies(ctx, shiftkey.KindGroup, g.Name, set.Identity); err != nil {
				return nil, err
			}
		}
		if err := a.stillNamed(ctx, groups...); err != nil {
			return nil, err
		}
	}
	if err := a.stillTheirs(ctx, p); err != nil {
		return nil, err
	}
	return set, nil
}

// stillTheirs checks, once p's policies are read, that p's user or role
// name still names the entity authentication found (by id): a rename and a
// new entity of the old name in between would lend the newcomer's
// policies, tags and groups to the request. A principal without an id
// (policy explain's by name) is taken as named.
func (a *Authorizer) stillTheirs(ctx context.Context, p *shiftkey.Principal) error {
	if p.UserID == "" {
		return nil
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: p.UserName, ID: p.UserID}
	if p.Type == shiftkey.PrincipalAssumedRole {
		id, _, _ := strings.Cut(p.UserID, ":")
		e = &shiftkey.Entity{Kind: shiftkey.KindRole, Name: p.RoleName, ID: id}
	}
	return a.stillNamed(ctx, e)
}

// stillNamed checks that each entity's name still names it (its id), as
// when its policies were read by that name; else the request fails with a
// retryable error, and the retry reads the caller again by its id.
func (a *Authorizer) stillNamed(ctx context.Context, entities ...*shiftkey.Entity) error {
	for _, e := range entities {
		now, err := a.Store.Entity(ctx, e.Kind, e.Name)
		if err != nil && shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			return err
		}
		if err != nil || now.ID != e.ID {
			a.logger().InfoContext(ctx, "an entity the request's policies were read by was renamed or replaced meanwhile; the request is answered ServiceUnavailable", "kind", e.Kind, "name", e.Name)
			return shiftkey.Errorf(shiftkey.CodeServiceUnavailable,
				"The %s %s was renamed or replaced while the request was authorized; nothing was done. Try again.", e.Kind, e.Name)
		}
	}
	return nil
}

// sessionPolicies parses p's session policies (shiftkey.SessionPolicies).
// Fail closed: if any cannot be read, the session gets an empty set, which
// allows nothing (the others must not decide without its denies).
func (a *Authorizer) sessionPolicies(ctx context.Context, p *shiftkey.Principal) []*iam.Policy {
	none := []*iam.Policy{}
	docs, err := shiftkey.SessionPolicies(p.SessionPolicy)
	if err != nil {
		a.logger().WarnContext(ctx, "session policies do not parse", "principal", p.ARN, "error", err)
		return none
	}
	out := make([]*iam.Policy, 0, len(docs))
	for i, d := range docs {
		name := "session policy of " + p.ARN
		if len(docs) > 1 {
			name += " #" + strconv.Itoa(i+1)
		}
		out = append(out, a.parse(ctx, name, d))
	}
	return out
}

// Decide evaluates one request against a policy set the way AWS combines
// identity policies, a permissions boundary and session policies: an
// explicit deny in any denies; else the identity policies must allow and,
// when there is a boundary, so must it, and when there is a session
// policy, so must it.
func Decide(set *PolicySet, req iam.Request) (iam.Decision, string) {
	id := iam.Evaluate(req, set.Identity...)
	if set.Session == nil && set.Boundary == nil {
		return id, Explain(id, "identity-based policy")
	}
	type layer struct {
		d     iam.Decision
		where string
	}
	layers := []layer{{id, "identity-based policy"}}
	if set.Boundary != nil {
		layers = append(layers, layer{iam.Evaluate(req, set.Boundary), "permissions boundary " + set.Boundary.Name})
	}
	if set.Session != nil {
		layers = append(layers, layer{iam.Evaluate(req, set.Session...), "session policy"})
	}
	for _, outcome := range []iam.Outcome{iam.ExplicitDeny, iam.ImplicitDeny} {
		for _, l := range layers {
			if l.d.Outcome == outcome {
				return l.d, Explain(l.d, l.where)
			}
		}
	}
	all := iam.Decision{Outcome: iam.Allow}
	var where []string
	for _, l := range layers {
		all.Deciding = append(all.Deciding, l.d.Deciding...)
		where = append(where, l.where)
	}
	return all, Explain(all, allowedBy(where))
}

// allowedBy names the kinds of policy that all allowed: "identity-based
// and session policies", "identity-based policy and permissions
// boundary", …
func allowedBy(where []string) string {
	if len(where) == 2 && where[1] == "session policy" && where[0] == "identity-based policy" {
		return "identity-based and session policies" // as before boundaries were
	}
	if len(where) == 2 {
		return where[0] + " and " + where[1]
	}
	return strings.Join(where[:len(where)-1], ", ") + " and " + where[len(where)-1]
}

// Explain says in words which statements decided d.
func Explain(d iam.Decision, where string) string {
	var refs []string
	for _, r := range d.Deciding {
		id := "Statement[" + strconv.Itoa(r.Index) + "]"
		if r.Sid != "" {
			id += " (Sid " + r.Sid + ")"
		}
		refs = append(refs, r.Policy+" "+id)
	}
	switch d.Outcome {
	case iam.ExplicitDeny:
		return "explicitly denied in " + where + ": " + strings.Join(refs, "; ")
	case iam.Allow:
		return "allowed by " + where + ": " + strings.Join(refs, "; ")
	}
	return "implicitly denied: no statement in the " + where + " allows it"
}

// GlobalContext returns the global condition keys of a call, as AWS's
// global condition key reference says they are present: for every signed
// request aws:PrincipalArn (a session reports its role's ARN),
// aws:PrincipalAccount, aws:PrincipalType, aws:userid ("AIDA…" for a user,
// "AROA…:session" for a role session), aws:PrincipalTag/* (a user's tags,
// or a role's tags overridden by the session's), aws:CurrentTime,
// aws:EpochTime, aws:SecureTransport, aws:RequestedRegion,
// aws:PrincipalIsAWSService and aws:ViaAWSService (false: callers are never
// AWS services), aws:SourceIp when known; aws:username for IAM users only;
// aws:MultiFactorAuthPresent (false) and aws:TokenIssueTime for temporary
// credentials only, as AWS leaves them out for long-term access keys.
func GlobalContext(c *shiftkey.Caller) map[string][]string {
	p := c.Principal
	principalARN := p.ARN
	if p.Type == shiftkey.PrincipalAssumedRole {
		// For roles AWS reports the role's ARN, not the session's.
		principalARN = p.RoleARN
	}
	m := map[string][]string{
		"aws:PrincipalArn":     {principalARN},
		"aws:PrincipalAccount": {p.Account},
		"aws:PrincipalType":    {p.Type},
		"aws:userid":           {p.UserID},
		"aws:CurrentTime":      {c.Time.UTC().Format("2006-01-02T15:04:05Z")},
		"aws:EpochTime":        {strconv.FormatInt(c.Time.Unix(), 10)},
		"aws:SecureTransport":  {strconv.FormatBool(c.SecureTransport)},
		"aws:RequestedRegion":  {c.Region},

		"aws:PrincipalIsAWSService": {"false"},
		"aws:ViaAWSService":         {"false"},
	}
	switch p.Type {
	case shiftkey.PrincipalUser:
		if p.UserName != "" {
			m["aws:username"] = []string{p.UserName}
		}
	case shiftkey.PrincipalAssumedRole:
		m["aws:MultiFactorAuthPresent"] = []string{"false"}
		if !p.TokenIssueTime.IsZero() {
			// What AWS's revocation of older sessions (a Deny with
			// DateLessThan on it) tests.
			m["aws:TokenIssueTime"] = []string{p.TokenIssueTime.UTC().Format("2006-01-02T15:04:05Z")}
		}
	}
	if c.SourceIP != "" {
		m["aws:SourceIp"] = []string{c.SourceIP}
	}
	for _, t := range p.Tags {
		m["aws:PrincipalTag/"+t.Key] = []string{t.Value}
	}
	return m
}

// Authorize checks every request; the first one not allowed is the error,
// and its explanation is recorded under the caller's request id.
func (a *Authorizer) Authorize(ctx context.Context, caller *shiftkey.Caller, reqs ...shiftkey.AuthzRequest) error {
	set, err := a.Policies(ctx, caller.Principal)
	if err != nil {
		return fmt.Errorf("policies of %s: %w", caller.Principal.ARN, err)
	}
	for _, r := range reqs {
		req := a.request(caller, r)
		d, why := Decide(set, req)
		if d.Allowed() {
			continue
		}
		return a.deny(ctx, caller, r, d.Outcome, why, identitySuffix(set, d, why, r.Action))
	}
	return nil
}

// request is r with the global condition keys of the call under its own.
func (a *Authorizer) request(caller *shiftkey.Caller, r shiftkey.AuthzRequest) iam.Request {
	global := GlobalContext(caller)
	keys := make(map[string][]string, len(global)+len(r.Context))
	for k, v := range global {
		keys[k] = v
	}
	for k, v := range r.Context {
		keys[k] = v
	}
	return iam.Request{Action: r.Action, Resource: r.Resource, Context: keys}
}

// identitySuffix ends AWS's AccessDenied message for a denial by identity or
// session policies.
func identitySuffix(set *PolicySet, d iam.Decision, why, action string) string {
	switch {
	case d.Outcome == iam.ExplicitDeny && strings.HasPrefix(why, "explicitly denied in session policy"):
		return " with an explicit deny in a session policy"
	case d.Outcome == iam.ExplicitDeny && strings.HasPrefix(why, "explicitly denied in permissions boundary"):
		return " with an explicit deny in a permissions boundary"
	case d.Outcome == iam.ExplicitDeny:
		return " with an explicit deny in an identity-based policy"
	case set.Boundary != nil && strings.HasPrefix(why, "implicitly denied: no statement in the permissions boundary"):
		return " because no permissions boundary allows the " + action + " action"
	case set.Session != nil && strings.Contains(why, "session policy"):
		return " because no session policy allows the " + action + " action"
	}
	return " because no identity-based policy allows the " + action + " action"
}

// deny logs and records a denial, so that `shiftkey policy why` can explain
// it, and returns AWS's AccessDenied error.
func (a *Authorizer) deny(ctx context.Context, caller *shiftkey.Caller, r shiftkey.AuthzRequest, outcome iam.Outcome, why, suffix string) error {
	a.logger().InfoContext(ctx, "access denied", "request_id", caller.RequestID, "principal", caller.Principal.ARN,
		"action", r.Action, "resource", r.Resource, "outcome", outcome.String(), "explanation", why)
	rec := &shiftkey.DecisionRecord{RequestID: caller.RequestID, At: caller.Time, Principal: caller.Principal.ARN,
		Action: r.Action, Resource: r.Resource, Outcome: outcome.String(), Explanation: why}
	if err := a.Store.RecordDecision(ctx, rec); err != nil {
		a.logger().ErrorContext(ctx, "record decision failed", "request_id", caller.RequestID, "error", err)
	}
	return &shiftkey.Error{Code: shiftkey.CodeAccessDenied,
		Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s%s", caller.Principal.ARN, r.Action, r.Resource, suffix)}
}

// trustPolicy parses a role's trust policy, cached like identity policies,
// bound to the principals it named when saved (TrustPrincipalIDs; a role
// from before those were kept matches them by name).
func (a *Authorizer) trustPolicy(role *shiftkey.Entity) (*iam.TrustPolicy, error) {
	key := role.AssumeRolePolicy + "\x00" + role.TrustPrincipalIDs
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.trust == nil {
		a.trust = map[string]*iam.TrustPolicy{}
	}
	if t, ok := a.trust[key]; ok {
		return t, nil
	}
	t, err := iam.ParseTrustPolicy("trust policy", []byte(role.AssumeRolePolicy))
	if err != nil {
		return nil, err
	}
	if role.TrustPrincipalIDs != "" {
		var ids map[string]string
		if err := json.Unmarshal([]byte(role.TrustPrincipalIDs), &ids); err != nil {
			return nil, fmt.Errorf("its principals' ids: %w", err)
		}
		t = t.Bind(ids)
	}
	if len(a.trust) > 1024 {
		clear(a.trust)
	}
	a.trust[key] = t
	return t, nil
}

// arnAccount is the account field of an ARN.
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return ""
	}
	return parts[4]
}

// AuthorizeAssumeRole decides whether caller may act on role: reqs are
// sts:AssumeRole and whatever else the call needs (sts:TagSession), each
// with the role's ARN as resource and the call's own condition keys. A nil
// role (no such role in this account) is refused. Every denial is recorded
// with its reason, as Authorize's are.
//
// The decision follows AWS's evaluation of a resource-based policy (the
// trust policy) together with the caller's identity-based and session
// policies:
//
//   - an explicit Deny in the trust policy, the identity policies or the
//     session policy denies;
//   - the trust policy must allow the caller; a role's trust policy is one of
//     the resource-based policies that must always allow (an identity policy
//     alone never suffices);
//   - within one account, a trust statement naming the caller itself (the
//     user ARN, the session ARN, or "*" for a user) suffices on its own: an
//     implicit deny in the caller's identity or session policies does not
//     matter;
//   - a statement naming the role of the caller's session (role chaining),
//     or naming a session only by "*" (which does not specifically
//     reference it), is limited by an implicit deny in the session policy,
//     not by the role's identity policies;
//   - a statement naming only the account (its root ARN or id) delegates
//     to the caller's own policies: they must allow the action too. A caller
//     from another account is always treated this way.
func (a *Authorizer) AuthorizeAssumeRole(ctx context.Context, caller *shiftkey.Caller, role *shiftkey.Entity, reqs ...shiftkey.AuthzRequest) error {
	p := caller.Principal
	if role == nil {
		r := reqs[0]
		return a.deny(ctx, caller, r, iam.ImplicitDeny, "implicitly denied: no role "+r.Resource+" exists in account "+p.Account+", so no trust policy allows it", "")
	}
	trust, err := a.trustPolicy(role)
	if err != nil {
		return a.deny(ctx, caller, reqs[0], iam.ImplicitDeny, "implicitly denied: the trust policy of "+role.ARN+" does not parse: "+err.Error(), "")
	}
	set, err := a.Policies(ctx, p)
	if err != nil {
		return fmt.Errorf("policies of %s: %w", p.ARN, err)
	}
	tc := iam.TrustCaller{ARN: p.ARN, Account: p.Account, RoleARN: p.RoleARN}
	if p.Type == shiftkey.PrincipalAssumedRole {
		tc.RoleID, _, _ = strings.Cut(p.UserID, ":")
	} else {
		tc.ID = p.UserID
	}
	sameAccount := arnAccount(role.ARN) == p.Account
	for _, r := range reqs {
		req := a.request(caller, r)
		td := trust.Evaluate(tc, req)
		id, idWhy := Decide(set, req)
		trustWhy := Explain(iam.Decision{Outcome: td.Outcome, Deciding: td.Deciding}, "trust policy of "+role.ARN)
		grant := td.Grant
		if !sameAccount && grant > iam.GrantAccount {
			grant = iam.GrantAccount
		}
		switch {
		case td.Outcome == iam.ExplicitDeny:
			return a.deny(ctx, caller, r, iam.ExplicitDeny, trustWhy, " with an explicit deny in a resource-based policy")
		case id.Outcome == iam.ExplicitDeny:
			return a.deny(ctx, caller, r, iam.ExplicitDeny, idWhy, identitySuffix(set, id, idWhy, r.Action))
		case td.Outcome != iam.Allow:
			return a.deny(ctx, caller, r, iam.ImplicitDeny, trustWhy+" (it does not name "+p.ARN+", its role or its account)",
				" because no resource-based policy allows the "+r.Action+" action")
		case grant == iam.GrantRole && (set.Session != nil || set.Boundary != nil):
			if d, why, suffix, ok := sessionLimits(set, req); !ok {
				return a.deny(ctx, caller, r, d.Outcome, trustWhy+" names the caller only by its role or \"*\", so its role's permissions boundary and its session policy must allow it too: "+
					why, suffix)
			}
		case grant == iam.GrantAccount && !id.Allowed():
			return a.deny(ctx, caller, r, id.Outcome, trustWhy+" names only the account, so the caller's own policies must allow it too: "+idWhy,
				identitySuffix(set, id, idWhy, r.Action))
		}
	}
	return nil
}
