// Package authz authorizes API callers by evaluating the IAM policies that
// the store holds for them with the iam policy engine.
package authz

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// Authorizer implements shiftkey.Authorizer over an IdentityStore.
type Authorizer struct {
	Store  shiftkey.IdentityStore
	Logger *slog.Logger // nil → discard

	mu    sync.Mutex
	cache map[string]*iam.Policy // parsed policies by name + document
}

var _ shiftkey.Authorizer = (*Authorizer)(nil)

func (a *Authorizer) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// policies returns the parsed identity policies of the caller.
func (a *Authorizer) policies(ctx context.Context, p *shiftkey.Principal) ([]*iam.Policy, error) {
	docs, err := a.Store.UserPolicies(ctx, p.UserName)
	if err != nil {
		return nil, fmt.Errorf("policies of %s: %w", p.ARN, err)
	}
	out := make([]*iam.Policy, 0, len(docs))
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[string]*iam.Policy{}
	}
	for _, d := range docs {
		name := "user/" + p.UserName + "/" + d.Name
		key := name + "\x00" + d.Document
		pol, ok := a.cache[key]
		if !ok {
			pol, err = iam.ParsePolicy(name, []byte(d.Document))
			if err != nil {
				// Documents are validated on write; one that no longer parses
				// grants nothing rather than failing every call.
				a.logger().WarnContext(ctx, "stored policy does not parse", "policy", name, "error", err)
				continue
			}
			if len(a.cache) > 4096 {
				clear(a.cache)
			}
			a.cache[key] = pol
		}
		out = append(out, pol)
	}
	return out, nil
}

// GlobalContext returns the global condition keys of a call.
func GlobalContext(c *shiftkey.Caller) map[string][]string {
	p := c.Principal
	m := map[string][]string{
		"aws:PrincipalArn":     {p.ARN},
		"aws:PrincipalAccount": {p.Account},
		"aws:PrincipalType":    {p.Type},
		"aws:userid":           {p.UserID},
		"aws:CurrentTime":      {c.Time.UTC().Format("2006-01-02T15:04:05Z")},
		"aws:EpochTime":        {strconv.FormatInt(c.Time.Unix(), 10)},
		"aws:SecureTransport":  {strconv.FormatBool(c.SecureTransport)},
		"aws:RequestedRegion":  {c.Region},
	}
	if p.UserName != "" {
		m["aws:username"] = []string{p.UserName}
	}
	if c.SourceIP != "" {
		m["aws:SourceIp"] = []string{c.SourceIP}
	}
	return m
}

// Authorize checks every request; the first one not allowed is the error.
func (a *Authorizer) Authorize(ctx context.Context, caller *shiftkey.Caller, reqs ...shiftkey.AuthzRequest) error {
	pols, err := a.policies(ctx, caller.Principal)
	if err != nil {
		return err
	}
	global := GlobalContext(caller)
	for _, r := range reqs {
		keys := make(map[string][]string, len(global)+len(r.Context))
		for k, v := range global {
			keys[k] = v
		}
		for k, v := range r.Context {
			keys[k] = v
		}
		d := iam.Evaluate(iam.Request{Action: r.Action, Resource: r.Resource, Context: keys}, pols...)
		if d.Allowed() {
			continue
		}
		msg := fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s", caller.Principal.ARN, r.Action, r.Resource)
		if d.Outcome == iam.ExplicitDeny {
			msg += " with an explicit deny in an identity-based policy"
		} else {
			msg += " because no identity-based policy allows the " + r.Action + " action"
		}
		a.logger().InfoContext(ctx, "access denied", "request_id", caller.RequestID, "principal", caller.Principal.ARN,
			"action", r.Action, "resource", r.Resource, "outcome", d.Outcome.String(), "deciding", describe(d.Deciding))
		return &shiftkey.Error{Code: shiftkey.CodeAccessDenied, Message: msg}
	}
	return nil
}

func describe(refs []iam.StatementRef) string {
	var parts []string
	for _, r := range refs {
		id := r.Sid
		if id == "" {
			id = "#" + strconv.Itoa(r.Index)
		}
		parts = append(parts, r.Policy+":"+id)
	}
	return strings.Join(parts, ",")
}
