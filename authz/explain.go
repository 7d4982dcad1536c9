package authz

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// Simulation is one request of the local policy simulator (`shiftkey
// policy explain`): policy files, or what the store holds for a principal,
// evaluated against an action on a resource.
type Simulation struct {
	PolicyFiles       []string
	SessionPolicyFile string
	// Principal is "user/NAME" or "role/NAME", whose stored policies and
	// global condition keys are added; it needs Store.
	Principal string
	Store     Store
	Action    string
	Resource  string
	// Context holds condition keys as "key=value"; a key given twice has
	// several values. Given keys win over the principal's.
	Context []string
}

// Run evaluates s and says which statements decided.
func (s Simulation) Run(ctx context.Context) (iam.Decision, string, error) {
	if s.Action == "" {
		return iam.Decision{}, "", errors.New("--action is required")
	}
	keys := map[string][]string{}
	for _, kv := range s.Context {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return iam.Decision{}, "", fmt.Errorf("--context %q: want key=value", kv)
		}
		keys[k] = append(keys[k], v)
	}
	set := &PolicySet{}
	for _, path := range s.PolicyFiles {
		p, err := readPolicy(path)
		if err != nil {
			return iam.Decision{}, "", err
		}
		set.Identity = append(set.Identity, p)
	}
	if s.SessionPolicyFile != "" {
		p, err := readPolicy(s.SessionPolicyFile)
		if err != nil {
			return iam.Decision{}, "", err
		}
		set.Session = []*iam.Policy{p}
	}
	if s.Principal != "" {
		kind, name, ok := strings.Cut(s.Principal, "/")
		if !ok || (kind != "user" && kind != "role") {
			return iam.Decision{}, "", fmt.Errorf("--principal %q: want user/NAME or role/NAME", s.Principal)
		}
		stored, global, err := (&Authorizer{Store: s.Store}).Simulate(ctx, shiftkey.EntityKind(kind), name)
		if err != nil {
			return iam.Decision{}, "", err
		}
		set.Identity = append(set.Identity, stored.Identity...)
		for k, v := range global {
			if _, given := keys[k]; !given {
				keys[k] = v
			}
		}
	}
	if len(set.Identity) == 0 {
		return iam.Decision{}, "", errors.New("give at least one --policy or a --principal")
	}
	d, why := Decide(set, iam.Request{Action: s.Action, Resource: s.Resource, Context: keys})
	return d, why, nil
}

func readPolicy(path string) (*iam.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := iam.ParsePolicy(filepath.Base(path), b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
