package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/iam"
	"github.com/shiftkey/shiftkey/sqlite"
)

// errDenied makes `policy explain` exit non-zero for a denial.
var errDenied = errors.New("denied")

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: shiftkey policy explain|why …\n")
		return flag.ErrHelp
	}
	switch args[0] {
	case "explain":
		return runExplain(ctx, args[1:], stdout, stderr)
	case "why":
		return runWhy(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown policy command %q", args[0])
}

// runExplain is a local policy simulator: it evaluates a request against
// policy files, or against what the store holds for a principal, and says
// which statement decided.
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var policies, contexts multiFlag
	fs.Var(&policies, "policy", "identity policy JSON file (repeatable)")
	sessionPolicy := fs.String("session-policy", "", "session policy JSON file")
	principal := fs.String("principal", "", "evaluate the stored policies of user/NAME or role/NAME (needs --data-dir)")
	dataDir := fs.String("data-dir", "", "shiftkey data dir holding shiftkey.db")
	action := fs.String("action", "", "action, e.g. redshift:GetClusterCredentials")
	resource := fs.String("resource", "*", "resource ARN")
	fs.Var(&contexts, "context", "condition key=value (repeatable; a key given twice has several values)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *action == "" {
		return errors.New("--action is required")
	}
	keys := map[string][]string{}
	for _, kv := range contexts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--context %q: want key=value", kv)
		}
		keys[k] = append(keys[k], v)
	}
	set := &authz.PolicySet{}
	for _, path := range policies {
		p, err := readPolicy(path)
		if err != nil {
			return err
		}
		set.Identity = append(set.Identity, p)
	}
	if *sessionPolicy != "" {
		p, err := readPolicy(*sessionPolicy)
		if err != nil {
			return err
		}
		set.Session = p
	}
	if *principal != "" {
		stored, err := storedPolicies(ctx, *dataDir, *principal, keys)
		if err != nil {
			return err
		}
		set.Identity = append(set.Identity, stored.Identity...)
	}
	if len(set.Identity) == 0 {
		return errors.New("give at least one --policy or a --principal")
	}
	d, why := authz.Decide(set, iam.Request{Action: *action, Resource: *resource, Context: keys})
	fmt.Fprintf(stdout, "decision: %s\n", d.Outcome)
	fmt.Fprintf(stdout, "because:  %s\n", why)
	if !d.Allowed() {
		return errDenied
	}
	return nil
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

func openStore(ctx context.Context, dataDir string) (*sqlite.DB, error) {
	if dataDir == "" {
		d, err := DefaultDataDir()
		if err != nil {
			return nil, err
		}
		dataDir = d
	}
	path := filepath.Join(dataDir, devStoreName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store at %s: %w", path, err)
	}
	return openExistingDevStore(ctx, dataDir)
}

// storedPolicies loads the policies the store holds for user/NAME or
// role/NAME, and adds the principal's global keys to keys.
func storedPolicies(ctx context.Context, dataDir, principal string, keys map[string][]string) (*authz.PolicySet, error) {
	kind, name, ok := strings.Cut(principal, "/")
	if !ok || (kind != "user" && kind != "role") {
		return nil, fmt.Errorf("--principal %q: want user/NAME or role/NAME", principal)
	}
	db, err := openStore(ctx, dataDir)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	set, global, err := (&authz.Authorizer{Store: db}).Simulate(ctx, shiftkey.EntityKind(kind), name)
	if err != nil {
		return nil, err
	}
	for k, v := range global {
		if _, given := keys[k]; !given {
			keys[k] = v
		}
	}
	return set, nil
}

// runWhy prints the recorded explanation of a denied API call.
func runWhy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy why", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "shiftkey data dir holding shiftkey.db")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: shiftkey policy why [--data-dir DIR] REQUEST_ID")
	}
	db, err := openStore(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	recs, err := db.Decisions(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("no denial recorded for request %s", fs.Arg(0))
	}
	for _, r := range recs {
		fmt.Fprintf(stdout, "%s  %s\n  principal: %s\n  action:    %s\n  resource:  %s\n  decision:  %s\n  because:   %s\n",
			r.At.Format("2006-01-02T15:04:05Z"), r.RequestID, r.Principal, r.Action, r.Resource, r.Outcome, r.Explanation)
	}
	return nil
}
