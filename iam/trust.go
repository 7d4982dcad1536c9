package iam

import (
	"fmt"
	"slices"
	"strings"
)

// TrustPolicy is a role trust policy (AssumeRolePolicyDocument): the
// resource-based policy of a role, whose statements name the principals
// that may act on the role (sts:AssumeRole, sts:TagSession, …). Build it
// with ParseTrustPolicy; it is immutable afterwards.
type TrustPolicy struct {
	Name       string // labels the policy in decisions
	Version    string
	Statements []TrustStatement
	// ids binds IAM user and role principals to unique ids (Bind); nil:
	// they match by name.
	ids map[string]string
}

// BindablePrincipals are the IAM user and role ARNs the policy names: the
// principals AWS resolves to unique ids when a trust policy is saved.
func (t *TrustPolicy) BindablePrincipals() []string {
	var out []string
	for _, s := range t.Statements {
		for _, p := range s.Principal["AWS"] {
			if bindable(p) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func bindable(p string) bool {
	parts := strings.SplitN(p, ":", 6)
	return len(parts) == 6 && parts[2] == "iam" && (strings.HasPrefix(parts[5], "user/") || strings.HasPrefix(parts[5], "role/"))
}

// Bind returns t whose IAM user and role principals name only the
// entities of ids (lower-case ARN → unique id, as they were when the
// policy was saved): a caller of that ARN with another id (a user deleted
// and created again under the name) does not match. A principal missing
// from ids matches no one in an Allow, and everyone of its ARN in a Deny.
func (t *TrustPolicy) Bind(ids map[string]string) *TrustPolicy {
	b := *t
	b.ids = ids
	if b.ids == nil {
		b.ids = map[string]string{}
	}
	return &b
}

// boundTo reports whether principal p, which matched a caller by ARN,
// names the entity whose unique id is id, in a statement of effect e. A
// principal that named no entity when the policy was saved matches no one
// in an Allow but, in a Deny, everyone of its ARN: AWS refuses such a
// policy, so it never trusts by an Allow whose Deny names a user created
// later.
func (t *TrustPolicy) boundTo(p, id string, e Effect) bool {
	if t.ids == nil || !bindable(p) {
		return true
	}
	want, ok := t.ids[strings.ToLower(p)]
	if !ok {
		return e == EffectDeny
	}
	return id != "" && want == id
}

// namesRenamed reports whether the IAM user principal p was bound, when
// the policy was saved, to the user whose unique id is id, whatever that
// user's ARN is now: IAM updates the role policies that name a user as a
// principal when the user is renamed or moved (UpdateUser), so the user
// stays named by them, in an Allow as in a Deny.
func (t *TrustPolicy) namesRenamed(p, id string) bool {
	if t.ids == nil || id == "" || !bindable(p) {
		return false
	}
	parts := strings.SplitN(p, ":", 6)
	return strings.HasPrefix(parts[5], "user/") && t.ids[strings.ToLower(p)] == id
}

// TrustStatement is one statement of a trust policy: the identity-policy
// statement (Effect, Action, Condition) with its Principal.
type TrustStatement struct {
	Statement
	Principal map[string][]string // "AWS", "Service", "Federated", "CanonicalUser"; {"*": nil} for a bare "*"
}

// ParseTrustPolicy parses and validates a trust policy. AWS forbids
// Resource, NotResource and NotPrincipal in trust policies, requires a
// Principal in every statement and allows only sts actions. Errors are
// *MalformedPolicyError.
func ParseTrustPolicy(name string, doc []byte) (*TrustPolicy, error) {
	t := &TrustPolicy{Name: name}
	var err error
	t.Version, _, t.Statements, err = parseDocument(doc, parseTrustStatement, "Missing required field Statement", "Missing required field Statement")
	if err != nil {
		return nil, err
	}
	return t, nil
}

func parseTrustStatement(v *jvalue, substitute bool) (TrustStatement, error) {
	var ts TrustStatement
	if v.kind != jObject {
		return ts, fmt.Errorf("a statement must be an object, not %v", v.kind)
	}
	// The statement without its Principal, on Resource "*", is an
	// identity-policy statement: the role itself is the only resource.
	rest := jvalue{kind: jObject}
	var principal *jvalue
	for i := range v.members {
		m := &v.members[i]
		switch m.key {
		case "Resource", "NotResource", "NotPrincipal":
			return ts, fmt.Errorf("Has prohibited field %s", m.key)
		case "Principal":
			principal = &m.val
		default:
			rest.members = append(rest.members, *m)
		}
	}
	if principal == nil {
		return ts, fmt.Errorf("Missing required field Principal")
	}
	p, err := parsePrincipal(principal)
	if err != nil {
		return ts, err
	}
	rest.members = append(rest.members, jmember{key: "Resource", val: jvalue{kind: jString, text: "*"}})
	s, err := parseStatement(&rest, substitute)
	if err != nil {
		return ts, err
	}
	for _, a := range append(s.Action, s.NotAction...) {
		if a != "*" && !strings.HasPrefix(strings.ToLower(a), "sts:") {
			return ts, fmt.Errorf("trust policies only allow sts actions, not %s", a)
		}
	}
	return TrustStatement{Statement: s, Principal: p}, nil
}

func parsePrincipal(v *jvalue) (map[string][]string, error) {
	if v.kind == jString {
		if v.text != "*" {
			return nil, fmt.Errorf("Principal must be \"*\" or an object")
		}
		return map[string][]string{"*": nil}, nil
	}
	if v.kind != jObject || len(v.members) == 0 {
		return nil, fmt.Errorf("Principal must be \"*\" or an object of AWS, Service, Federated or CanonicalUser")
	}
	out := map[string][]string{}
	for _, m := range v.members {
		switch m.key {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return nil, fmt.Errorf("unknown principal type %s", m.key)
		}
		vals, err := stringList("Principal "+m.key, &m.val)
		if err != nil {
			return nil, err
		}
		out[m.key] = vals
	}
	for _, p := range out["AWS"] {
		if !validAWSPrincipal(p) {
			return nil, fmt.Errorf("Invalid principal in policy: \"AWS\":\"%s\"", p)
		}
	}
	return out, nil
}

// validAWSPrincipal accepts "*", a 12-digit account id, or the ARN of an
// account root, IAM user, IAM role or assumed-role session. Principal ARNs
// take no wildcards.
func validAWSPrincipal(p string) bool {
	if p == "*" || isAccountID(p) {
		return true
	}
	if strings.ContainsAny(p, "*?") {
		return false
	}
	parts := strings.SplitN(p, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[3] != "" || !isAccountID(parts[4]) {
		return false
	}
	res := parts[5]
	switch parts[2] {
	case "iam":
		return res == "root" || strings.HasPrefix(res, "user/") && len(res) > 5 || strings.HasPrefix(res, "role/") && len(res) > 5
	case "sts":
		f := strings.Split(res, "/")
		return len(f) == 3 && f[0] == "assumed-role" && f[1] != "" && f[2] != ""
	}
	return false
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// TrustCaller is the principal asking to act on a role.
type TrustCaller struct {
	ARN     string // IAM user ARN, or the assumed-role session ARN
	Account string
	RoleARN string // the role of an assumed-role session; "" for a user
	// ID is a user's unique id; RoleID the unique id of a session's role.
	ID, RoleID string
}

// Grant is how directly an allowing trust statement names the caller. It
// decides, in authz, which of the caller's own policies must allow too.
type Grant int

// Grants, from the weakest.
const (
	GrantNone    Grant = iota
	GrantAccount       // the caller's account: "arn:aws:iam::ACCOUNT:root" or "ACCOUNT"
	GrantRole          // the role ARN of the caller's session, or "*" for a session
	GrantCaller        // the caller itself (user ARN or session ARN), or "*" for a user
)

func (g Grant) String() string {
	switch g {
	case GrantAccount:
		return "the caller's account"
	case GrantRole:
		return "the caller's role"
	case GrantCaller:
		return "the caller"
	}
	return "no one"
}

// TrustDecision is the outcome of a trust policy for one caller: for Allow,
// the strongest grant among the allowing statements.
type TrustDecision struct {
	Outcome  Outcome
	Grant    Grant
	Deciding []StatementRef
}

// Evaluate decides whether the trust policy lets caller perform req.Action
// on the role req.Resource. A matching Deny gives ExplicitDeny whatever it
// names (naming the account denies every principal in it); otherwise a
// matching Allow gives Allow with its grant.
func (t *TrustPolicy) Evaluate(c TrustCaller, req Request) TrustDecision {
	ctx := newEvalContext(req)
	var allows, denies []StatementRef
	best := GrantNone
	for i := range t.Statements {
		s := &t.Statements[i]
		g := t.grant(s, c)
		if g == GrantNone || !s.matches(ctx) {
			continue
		}
		ref := StatementRef{Policy: t.Name, Index: i, Sid: s.Sid, Effect: s.Effect}
		if s.Effect == EffectDeny {
			denies = append(denies, ref)
			continue
		}
		allows = append(allows, ref)
		best = max(best, g)
	}
	switch {
	case len(denies) > 0:
		return TrustDecision{Outcome: ExplicitDeny, Deciding: denies}
	case len(allows) > 0:
		return TrustDecision{Outcome: Allow, Grant: best, Deciding: allows}
	}
	return TrustDecision{Outcome: ImplicitDeny}
}

// grant reports how statement s's Principal names c. A wildcard ("*" or
// {"AWS": "*"}) names a user as the user, but a role session only as its
// role would: AWS lets a resource-based policy grant a session more than
// its session policy only when the policy "specifically references the
// role session" (STS AssumeRole, Policy parameter), which "*" does not.
func (t *TrustPolicy) grant(s *TrustStatement, c TrustCaller) Grant {
	wildcard := GrantCaller
	if c.RoleARN != "" {
		wildcard = GrantRole
	}
	if _, star := s.Principal["*"]; star {
		return wildcard
	}
	g := GrantNone
	for _, p := range s.Principal["AWS"] {
		switch {
		case samePrincipalARN(p, c.ARN) && t.boundTo(p, c.ID, s.Effect), t.namesRenamed(p, c.ID):
			return GrantCaller
		case p == "*":
			g = max(g, wildcard)
		case c.RoleARN != "" && samePrincipalARN(p, c.RoleARN) && t.boundTo(p, c.RoleID, s.Effect):
			g = max(g, GrantRole)
		case p == c.Account, p == "arn:aws:iam::"+c.Account+":root":
			g = max(g, GrantAccount)
		}
	}
	return g
}

// samePrincipalARN compares a principal ARN from a policy with a caller's.
// IAM user and role names are case-insensitive, as IAM resolves them; the
// session name of an assumed-role ARN is chosen by the caller and compared
// exactly.
func samePrincipalARN(policy, caller string) bool {
	if caller == "" {
		return false
	}
	if strings.HasPrefix(caller, "arn:aws:sts::") {
		i, j := strings.LastIndexByte(policy, '/'), strings.LastIndexByte(caller, '/')
		return i >= 0 && j >= 0 && strings.EqualFold(policy[:i], caller[:j]) && policy[i:] == caller[j:]
	}
	return strings.EqualFold(policy, caller)
}
