package iamapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// TrustPolicy is a role's AssumeRolePolicyDocument: statements that name
// principals, with the actions they may take on the role (sts:AssumeRole,
// sts:TagSession) and conditions.
type TrustPolicy struct {
	Statements []TrustStatement
}

// TrustStatement is one statement of a trust policy.
type TrustStatement struct {
	Index     int
	Sid       string
	Effect    string
	Principal map[string][]string // "AWS", "Service", "Federated"; {"*": nil} for a bare "*"
	// policy evaluates Action and Condition; its Resource is "*".
	policy *iam.Policy
}

func malformed(format string, args ...any) error {
	return shiftkey.Errorf(CodeMalformedPolicyDocument, format, args...)
}

// ParseTrustPolicy parses and validates a trust policy.
func ParseTrustPolicy(doc string) (*TrustPolicy, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	version := "2008-10-17"
	if raw, ok := top["Version"]; ok {
		if err := json.Unmarshal(raw, &version); err != nil {
			return nil, malformed("Version must be a string.")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, malformed("Missing required field Statement")
	}
	var stmts []map[string]json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, malformed("Syntax errors in policy.")
		}
		stmts = append(stmts, one)
	} else if err := json.Unmarshal(raw, &stmts); err != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	if len(stmts) == 0 {
		return nil, malformed("Missing required field Statement")
	}
	tp := &TrustPolicy{}
	for i, st := range stmts {
		ts := TrustStatement{Index: i}
		for _, forbidden := range []string{"Resource", "NotResource", "NotPrincipal"} {
			if _, ok := st[forbidden]; ok {
				return nil, malformed("Has prohibited field %s", forbidden)
			}
		}
		pr, ok := st["Principal"]
		if !ok {
			return nil, malformed("Statement[%d]: missing required field Principal", i)
		}
		p, err := parsePrincipal(pr)
		if err != nil {
			return nil, malformed("Statement[%d]: %v", i, err)
		}
		ts.Principal = p
		if sid, ok := st["Sid"]; ok {
			json.Unmarshal(sid, &ts.Sid)
		}
		if eff, ok := st["Effect"]; ok {
			json.Unmarshal(eff, &ts.Effect)
		}
		rest := map[string]json.RawMessage{}
		for k, v := range st {
			if k != "Principal" {
				rest[k] = v
			}
		}
		rest["Resource"] = json.RawMessage(`"*"`)
		one, _ := json.Marshal(map[string]any{"Version": version, "Statement": []any{rest}})
		pol, err := iam.ParsePolicy(fmt.Sprintf("trust policy Statement[%d]", i), one)
		if err != nil {
			if me, ok := err.(*iam.MalformedPolicyError); ok {
				return nil, malformed("%s", me.Message)
			}
			return nil, malformed("%v", err)
		}
		for _, a := range pol.Statements[0].Action {
			if !strings.HasPrefix(strings.ToLower(a), "sts:") && a != "*" {
				return nil, malformed("Statement[%d]: trust policies only allow sts actions, not %s", i, a)
			}
		}
		ts.policy = pol
		tp.Statements = append(tp.Statements, ts)
	}
	return tp, nil
}

func parsePrincipal(raw json.RawMessage) (map[string][]string, error) {
	var star string
	if err := json.Unmarshal(raw, &star); err == nil {
		if star != "*" {
			return nil, fmt.Errorf("Principal must be \"*\" or an object")
		}
		return map[string][]string{"*": nil}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || len(obj) == 0 {
		return nil, fmt.Errorf("Principal must be \"*\" or an object of AWS, Service or Federated")
	}
	out := map[string][]string{}
	for k, v := range obj {
		switch k {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return nil, fmt.Errorf("unknown principal type %s", k)
		}
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			out[k] = []string{one}
			continue
		}
		var many []string
		if err := json.Unmarshal(v, &many); err != nil || len(many) == 0 {
			return nil, fmt.Errorf("Principal %s must be a string or a list of strings", k)
		}
		out[k] = many
	}
	for _, v := range out["AWS"] {
		if v != "*" && !strings.HasPrefix(v, "arn:") && !isAccountID(v) {
			return nil, fmt.Errorf("Invalid principal in policy: \"AWS\":\"%s\"", v)
		}
	}
	return out, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// TrustDecision is the outcome of a trust policy for one caller.
type TrustDecision struct {
	Outcome iam.Outcome
	// Direct is true when an allowing statement names the caller itself
	// (or "*"); when it only names the account, the caller's own identity
	// policies must allow the action as well.
	Direct    bool
	Statement string
}

// Evaluate decides whether caller may take action (sts:AssumeRole,
// sts:TagSession) on the role roleARN with the given condition keys.
func (t *TrustPolicy) Evaluate(caller *shiftkey.Principal, action, roleARN string, keys map[string][]string) TrustDecision {
	var d TrustDecision
	for _, st := range t.Statements {
		direct, ok := matchPrincipal(st.Principal, caller)
		if !ok {
			continue
		}
		dec := iam.Evaluate(iam.Request{Action: action, Resource: roleARN, Context: keys}, st.policy)
		label := fmt.Sprintf("Statement[%d]", st.Index)
		if st.Sid != "" {
			label += " (Sid " + st.Sid + ")"
		}
		switch dec.Outcome {
		case iam.ExplicitDeny:
			return TrustDecision{Outcome: iam.ExplicitDeny, Statement: label}
		case iam.Allow:
			if d.Outcome != iam.Allow || direct && !d.Direct {
				d = TrustDecision{Outcome: iam.Allow, Direct: direct, Statement: label}
			}
		}
	}
	return d
}

// matchPrincipal reports whether the statement's principal covers caller,
// and whether it names the caller directly rather than its account.
func matchPrincipal(p map[string][]string, c *shiftkey.Principal) (direct, ok bool) {
	if _, star := p["*"]; star {
		return true, true
	}
	for _, v := range p["AWS"] {
		switch {
		case v == "*":
			return true, true
		case v == c.ARN, c.RoleARN != "" && v == c.RoleARN:
			return true, true
		case v == c.Account, v == "arn:aws:iam::"+c.Account+":root":
			ok = true
		}
	}
	return false, ok
}
