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
	// Principal is "user/NAME" or "role/NAME" (a path allowed), or a
	// user's or role's ARN, whose stored policies and global condition
	// keys are added; it needs Store.
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
		kind, name, err := simulatedPrincipal(s.Principal)
		if err != nil {
			return iam.Decision{}, "", err
		}
		stored, global, err := (&Authorizer{Store: s.Store}).Simulate(ctx, shiftkey.EntityKind(kind), name)
		if err != nil {
			return iam.Decision{}, "", err
		}
		set.Identity = append(set.Identity, stored.Identity...)
		set.Boundary = stored.Boundary // its permissions boundary caps it, with its reason when it denies
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

// simulatedPrincipal is the kind and name --principal names: user/NAME or
// role/NAME, with a path or not, or a user's or role's ARN (as the audit
// log and credentials list write them). A name is unique in its account
// whatever its path, so the path is dropped. A session's ARN is refused:
// its session policy is not its role's.
func simulatedPrincipal(p string) (kind, name string, err error) {
	res := p
	if strings.HasPrefix(p, "arn:") {
		f := strings.SplitN(p, ":", 6)
		if len(f) == 6 && f[2] == "sts" && strings.HasPrefix(f[5], "assumed-role/") {
			role, _, _ := strings.Cut(strings.TrimPrefix(f[5], "assumed-role/"), "/")
			return "", "", fmt.Errorf("--principal %q is a session: give its role, role/%s, and its session policy, if it had one, with --session-policy", p, role)
		}
		if len(f) != 6 || f[2] != "iam" {
			return "", "", fmt.Errorf("--principal %q: want user/NAME, role/NAME or an IAM user's or role's ARN", p)
		}
		res = f[5]
	}
	kind, path, ok := strings.Cut(res, "/")
	name = path[strings.LastIndexByte(path, '/')+1:]
	if !ok || name == "" || (kind != "user" && kind != "role") {
		return "", "", fmt.Errorf("--principal %q: want user/NAME, role/NAME or an IAM user's or role's ARN", p)
	}
	return kind, name, nil
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
