package iam

import (
	"slices"
	"strconv"
	"strings"
)

// Request is one authorization question: may the caller perform Action on
// Resource, given the condition keys in Context?
type Request struct {
	Action   string              // e.g. "redshift:GetClusterCredentials"
	Resource string              // full ARN
	Context  map[string][]string // condition keys; names are case-insensitive, values are not
}

// Outcome is the result of evaluating identity policies.
type Outcome int

// Outcomes, from AWS's identity-policy evaluation logic.
const (
	ImplicitDeny Outcome = iota // no statement allows the request
	Allow                       // a statement allows it and none denies it
	ExplicitDeny                // a Deny statement matches
)

func (o Outcome) String() string {
	switch o {
	case ImplicitDeny:
		return "implicitDeny"
	case Allow:
		return "allow"
	case ExplicitDeny:
		return "explicitDeny"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// StatementRef identifies a statement in a decision. Index is the
// statement's 0-based position in the policy's Statement array.
type StatementRef struct {
	Policy string
	Index  int
	Sid    string
	Effect Effect
}

// Decision is the outcome with the statements that decided it: the matching
// Deny statements for ExplicitDeny, the matching Allow statements for Allow,
// none for ImplicitDeny.
type Decision struct {
	Outcome  Outcome
	Deciding []StatementRef
}

// Allowed reports whether the request is allowed.
func (d Decision) Allowed() bool { return d.Outcome == Allow }

// Evaluate applies AWS's identity-policy logic: a matching Deny statement in
// any policy gives ExplicitDeny; otherwise a matching Allow statement gives
// Allow; otherwise the request is implicitly denied. Policy and statement
// order do not matter. Nil policies are skipped.
func Evaluate(req Request, policies ...*Policy) Decision {
	ctx := newEvalContext(req)
	var allows, denies []StatementRef
	for _, p := range policies {
		if p == nil {
			continue
		}
		for i := range p.Statements {
			s := &p.Statements[i]
			if !s.matches(ctx) {
				continue
			}
			ref := StatementRef{Policy: p.Name, Index: i, Sid: s.Sid, Effect: s.Effect}
			if s.Effect == EffectDeny {
				denies = append(denies, ref)
			} else {
				allows = append(allows, ref)
			}
		}
	}
	switch {
	case len(denies) > 0:
		return Decision{Outcome: ExplicitDeny, Deciding: denies}
	case len(allows) > 0:
		return Decision{Outcome: Allow, Deciding: allows}
	}
	return Decision{Outcome: ImplicitDeny}
}

// evalContext is a request prepared for matching.
type evalContext struct {
	action   []rune // lower-cased
	resource []rune
	keys     map[string][]string // lower-cased names
}

func newEvalContext(req Request) *evalContext {
	ctx := &evalContext{
		action:   []rune(strings.ToLower(req.Action)),
		resource: []rune(req.Resource),
		keys:     make(map[string][]string, len(req.Context)),
	}
	// Names differing only in case are one key; merge them in a fixed order
	// so that the result does not depend on map iteration.
	names := make([]string, 0, len(req.Context))
	for k := range req.Context {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		lk := strings.ToLower(k)
		if prev, ok := ctx.keys[lk]; ok {
			ctx.keys[lk] = append(slices.Clip(prev), req.Context[k]...)
		} else {
			ctx.keys[lk] = req.Context[k]
		}
	}
	return ctx
}

// values returns the request's values for a lower-cased key; none when absent.
func (c *evalContext) values(key string) []string {
	if c == nil {
		return nil
	}
	return c.keys[key]
}

// variable returns the value a policy variable takes: only a key with
// exactly one value can be used, as multivalued keys cannot be variables.
func (c *evalContext) variable(key string) (string, bool) {
	v := c.values(key)
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// matches reports whether the statement applies to the request: its action,
// resource and every condition match.
func (s *Statement) matches(ctx *evalContext) bool {
	if !s.compiled {
		return false
	}
	return s.matchAction(ctx) && s.matchResource(ctx) && s.matchConditions(ctx)
}

func (s *Statement) matchAction(ctx *evalContext) bool {
	found := false
	for _, p := range s.actions {
		if globMatch(p, ctx.action) {
			found = true
			break
		}
	}
	if s.NotAction != nil {
		return !found
	}
	return found
}

// matchResource matches Resource or NotResource. An entry whose variable
// cannot be resolved matches nothing, as AWS documents. Under NotResource
// that would make the statement cover more resources, so there the
// unresolvable entry instead fails safe: an Allow statement does not apply,
// and a Deny statement applies unless another entry excludes the resource.
func (s *Statement) matchResource(ctx *evalContext) bool {
	found, missing := false, false
	for i := range s.resources {
		e := &s.resources[i]
		rp := e.static
		if e.tmpl.vars {
			toks, ok := e.tmpl.resolve(ctx, true)
			if !ok {
				missing = true
				continue
			}
			rp = newResourcePattern(toks)
		}
		if rp.match(ctx.resource) {
			found = true
			break
		}
	}
	if s.NotResource == nil {
		return found
	}
	if missing && s.Effect == EffectAllow {
		return false
	}
	return !found
}

func (s *Statement) matchConditions(ctx *evalContext) bool {
	for i := range s.Conditions {
		if !s.Conditions[i].eval(ctx, s.Effect) {
			return false
		}
	}
	return true
}
