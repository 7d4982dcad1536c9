package iam

import (
	"fmt"
	"strings"
)

// Effect is a statement's effect: EffectAllow or EffectDeny.
type Effect string

// The two effects a statement can have.
const (
	EffectAllow Effect = "Allow"
	EffectDeny  Effect = "Deny"
)

// Policy language versions. Only 2012-10-17 substitutes policy variables.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Policy is a parsed identity-based policy. Build it with ParsePolicy; it is
// immutable afterwards and safe for concurrent use.
type Policy struct {
	Name       string // labels the policy in decisions, e.g. "user/alice/inline/admin"
	Version    string // "2012-10-17", "2008-10-17", or "" when absent (treated as 2008-10-17)
	ID         string
	Statements []Statement
}

// Statement is one parsed policy statement. Exactly one of Action and
// NotAction, and one of Resource and NotResource, is non-nil.
type Statement struct {
	Sid         string
	Effect      Effect
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	Conditions  []Condition // all must hold

	compiled  bool // set by ParsePolicy; a hand-built statement never matches
	actions   [][]token
	resources []resourceEntry
}

type resourceEntry struct {
	tmpl   template
	static resourcePattern // when tmpl has no variables
}

// MalformedPolicyError reports a policy document that is not valid JSON or
// not a valid identity-based policy.
type MalformedPolicyError struct {
	Message string
}

func (e *MalformedPolicyError) Error() string {
	return "malformed policy document: " + e.Message
}

func malformed(format string, args ...any) error {
	return &MalformedPolicyError{Message: fmt.Sprintf(format, args...)}
}

// ParsePolicy parses and validates an identity-based policy document. name
// labels the policy in decisions. Errors are *MalformedPolicyError.
func ParsePolicy(name string, doc []byte) (*Policy, error) {
	p := &Policy{Name: name}
	var err error
	p.Version, p.ID, p.Statements, err = parseDocument(doc, parseStatement, "missing Statement", "Statement must not be empty")
	if err != nil {
		return nil, err
	}
	return p, nil
}

// sidOf is how parseDocument sees a statement of either kind of policy.
func (s Statement) sidOf() string { return s.Sid }

// parseDocument reads what every policy document shares: Version, Id and
// the Statement (an object or an array of them), each statement read by
// stmt with unique Sids. missing and empty are the messages for no
// Statement and for an empty one, which differ between the policy kinds.
func parseDocument[S interface{ sidOf() string }](doc []byte, stmt func(*jvalue, bool) (S, error), missing, empty string) (version, id string, out []S, err error) {
	root, err := decodeJSON(doc)
	if err != nil {
		return "", "", nil, malformed("%v", err)
	}
	if root.kind != jObject {
		return "", "", nil, malformed("the policy must be a JSON object, not %v", root.kind)
	}
	var stmts *jvalue
	for i := range root.members {
		m := &root.members[i]
		switch m.key {
		case "Version":
			if m.val.kind != jString || (m.val.text != Version2012 && m.val.text != Version2008) {
				return "", "", nil, malformed("Version must be %q or %q", Version2012, Version2008)
			}
			version = m.val.text
		case "Id":
			if m.val.kind != jString {
				return "", "", nil, malformed("Id must be a string")
			}
			id = m.val.text
		case "Statement":
			stmts = &m.val
		default:
			return "", "", nil, malformed("unknown policy element %q", m.key)
		}
	}
	if stmts == nil {
		return "", "", nil, malformed("%s", missing)
	}
	items := []jvalue{*stmts}
	switch stmts.kind {
	case jObject:
	case jArray:
		items = stmts.items
	default:
		return "", "", nil, malformed("Statement must be an object or an array of objects, not %v", stmts.kind)
	}
	if len(items) == 0 {
		return "", "", nil, malformed("%s", empty)
	}
	substitute := version == Version2012
	sids := map[string]bool{}
	for i := range items {
		s, err := stmt(&items[i], substitute)
		if err != nil {
			return "", "", nil, malformed("Statement[%d]: %v", i, err)
		}
		if sid := s.sidOf(); sid != "" {
			if sids[sid] {
				return "", "", nil, malformed("Statement[%d]: duplicate Sid %q: Sids must be unique within a policy", i, sid)
			}
			sids[sid] = true
		}
		out = append(out, s)
	}
	return version, id, out, nil
}

func parseStatement(v *jvalue, substitute bool) (Statement, error) {
	var s Statement
	if v.kind != jObject {
		return s, fmt.Errorf("a statement must be an object, not %v", v.kind)
	}
	var (
		effectSeen      bool
		action, notAct  *jvalue
		resource, notRs *jvalue
		condition       *jvalue
	)
	for i := range v.members {
		m := &v.members[i]
		switch m.key {
		case "Sid":
			if m.val.kind != jString {
				return s, fmt.Errorf("Sid must be a string")
			}
			if !isAlnum(m.val.text) {
				return s, fmt.Errorf("Sid %q must contain only letters and digits", m.val.text)
			}
			s.Sid = m.val.text
		case "Effect":
			if m.val.kind != jString || (m.val.text != string(EffectAllow) && m.val.text != string(EffectDeny)) {
				return s, fmt.Errorf("Effect must be \"Allow\" or \"Deny\"")
			}
			s.Effect = Effect(m.val.text)
			effectSeen = true
		case "Action":
			action = &m.val
		case "NotAction":
			notAct = &m.val
		case "Resource":
			resource = &m.val
		case "NotResource":
			notRs = &m.val
		case "Condition":
			condition = &m.val
		case "Principal", "NotPrincipal":
			return s, fmt.Errorf("%s is not allowed in an identity-based policy (it belongs in trust and resource-based policies)", m.key)
		default:
			return s, fmt.Errorf("unknown statement element %q", m.key)
		}
	}
	if !effectSeen {
		return s, fmt.Errorf("missing Effect")
	}

	switch {
	case action != nil && notAct != nil:
		return s, fmt.Errorf("a statement must have Action or NotAction, not both")
	case action == nil && notAct == nil:
		return s, fmt.Errorf("missing Action or NotAction")
	}
	elem, av := "Action", action
	if notAct != nil {
		elem, av = "NotAction", notAct
	}
	actions, err := stringList(elem, av)
	if err != nil {
		return s, err
	}
	for _, a := range actions {
		if err := checkAction(a); err != nil {
			return s, fmt.Errorf("%s: %v", elem, err)
		}
		s.actions = append(s.actions, collapseStars(globTokens(nil, strings.ToLower(a))))
	}
	if notAct != nil {
		s.NotAction = actions
	} else {
		s.Action = actions
	}

	switch {
	case resource != nil && notRs != nil:
		return s, fmt.Errorf("a statement must have Resource or NotResource, not both")
	case resource == nil && notRs == nil:
		return s, fmt.Errorf("missing Resource or NotResource (required in identity-based policies)")
	}
	elem, rv := "Resource", resource
	if notRs != nil {
		elem, rv = "NotResource", notRs
	}
	resources, err := stringList(elem, rv)
	if err != nil {
		return s, err
	}
	for _, r := range resources {
		e, err := compileResource(r, substitute)
		if err != nil {
			return s, fmt.Errorf("%s: %v", elem, err)
		}
		s.resources = append(s.resources, e)
	}
	if notRs != nil {
		s.NotResource = resources
	} else {
		s.Resource = resources
	}

	if condition != nil {
		conds, err := parseConditionBlock(condition, substitute)
		if err != nil {
			return s, err
		}
		s.Conditions = conds
	}
	s.compiled = true
	return s, nil
}

// stringList reads a string or a non-empty array of strings.
func stringList(elem string, v *jvalue) ([]string, error) {
	switch v.kind {
	case jString:
		return []string{v.text}, nil
	case jArray:
		if len(v.items) == 0 {
			return nil, fmt.Errorf("%s must not be empty", elem)
		}
		out := make([]string, 0, len(v.items))
		for _, it := range v.items {
			if it.kind != jString {
				return nil, fmt.Errorf("%s must contain only strings, not %v", elem, it.kind)
			}
			out = append(out, it.text)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s must be a string or an array of strings, not %v", elem, v.kind)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// checkAction accepts "*" or "service:action", either part possibly with wildcards.
func checkAction(a string) error {
	if a == "*" {
		return nil
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" || strings.Contains(name, ":") {
		return fmt.Errorf("%q is not \"*\" or \"service:action\"", a)
	}
	for _, part := range []string{svc, name} {
		for _, r := range part {
			if !(r == '-' || r == '_' || r == '.' || r == '*' || r == '?' ||
				'0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
				return fmt.Errorf("%q contains an invalid character %q", a, r)
			}
		}
	}
	return nil
}

// compileResource checks "*" or an ARN. AWS documents that the service
// segment takes no wildcard and that variables may appear only in the
// resource part, after the fifth colon.
func compileResource(r string, substitute bool) (resourceEntry, error) {
	if r != "*" {
		parts := strings.SplitN(r, ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
			return resourceEntry{}, fmt.Errorf("%q must be \"*\" or an ARN (arn:partition:service:region:account:resource)", r)
		}
		if strings.ContainsAny(parts[2], "*?") {
			return resourceEntry{}, fmt.Errorf("%q: the service segment cannot contain wildcards", r)
		}
		if substitute {
			for _, seg := range parts[:5] {
				if strings.Contains(seg, "${") {
					return resourceEntry{}, fmt.Errorf("%q: policy variables are allowed only in the resource part of an ARN", r)
				}
			}
		}
	}
	t, err := parseTemplate(r, substitute)
	if err != nil {
		return resourceEntry{}, err
	}
	e := resourceEntry{tmpl: t}
	if !t.vars {
		toks, _ := t.resolve(nil, true)
		e.static = newResourcePattern(toks)
	}
	return e, nil
}

func parseConditionBlock(v *jvalue, substitute bool) ([]Condition, error) {
	if v.kind != jObject {
		return nil, fmt.Errorf("Condition must be an object, not %v", v.kind)
	}
	var out []Condition
	for _, om := range v.members {
		op, err := parseOperator(om.key)
		if err != nil {
			return nil, err
		}
		if om.val.kind != jObject {
			return nil, fmt.Errorf("Condition %s must map condition keys to values, not be %v", om.key, om.val.kind)
		}
		if len(om.val.members) == 0 {
			return nil, fmt.Errorf("Condition %s has no condition keys", om.key)
		}
		for _, km := range om.val.members {
			if err := checkConditionKey(km.key); err != nil {
				return nil, fmt.Errorf("Condition %s: %v", om.key, err)
			}
			raw, err := conditionValues(&km.val)
			if err != nil {
				return nil, fmt.Errorf("Condition %s %s: %v", om.key, km.key, err)
			}
			c := Condition{Operator: om.key, Key: km.key, Values: raw, op: op, key: strings.ToLower(km.key)}
			for _, r := range raw {
				cv, err := compileValue(op.family, r, substitute && op.family.takesVariables())
				if err != nil {
					return nil, fmt.Errorf("Condition %s %s: %v", om.key, km.key, err)
				}
				c.values = append(c.values, cv)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// checkConditionKey accepts "prefix:name" keys such as "aws:username" or
// "aws:PrincipalTag/team"; a key without a prefix can never be in a request.
func checkConditionKey(k string) error {
	prefix, name, ok := strings.Cut(k, ":")
	if !ok || prefix == "" || name == "" || strings.TrimSpace(k) != k {
		return fmt.Errorf("condition key %q must look like \"prefix:name\"", k)
	}
	return nil
}

// conditionValues reads a string, number or Boolean, or a non-empty array of them.
func conditionValues(v *jvalue) ([]string, error) {
	switch v.kind {
	case jString, jNumber, jBool:
		return []string{v.text}, nil
	case jArray:
		if len(v.items) == 0 {
			return nil, fmt.Errorf("the value list must not be empty")
		}
		out := make([]string, 0, len(v.items))
		for _, it := range v.items {
			switch it.kind {
			case jString, jNumber, jBool:
				out = append(out, it.text)
			default:
				return nil, fmt.Errorf("a condition value must be a string, number or Boolean, not %v", it.kind)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("a condition value must be a string, number, Boolean or an array of them, not %v", v.kind)
}
