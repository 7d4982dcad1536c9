package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/pgserver"
)

// errDenied makes `policy explain` exit non-zero for a denial.
var errDenied = errors.New("denied")

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: shiftkey policy explain|why …\n")
		return errUsage
	}
	switch args[0] {
	case "explain":
		return runExplain(ctx, args[1:], stdout, stderr)
	case "why":
		return runWhy(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, "usage: shiftkey policy explain|why … (shiftkey policy explain --help, shiftkey policy why --help)\n")
		return nil
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
	principal := fs.String("principal", "", "evaluate the stored policies of user/NAME or role/NAME, or of a user's or role's ARN (in the store of --config or --data-dir)")
	configPath := fs.String("config", "", "serve's YAML config file (its store)")
	dataDir := fs.String("data-dir", "", "dev's data dir (default: "+pgserver.DefaultHomeHelp()+")")
	action := fs.String("action", "", "action, e.g. redshift:GetClusterCredentials")
	resource := fs.String("resource", "*", "resource ARN")
	fs.Var(&contexts, "context", "condition key=value (repeatable; a key given twice has several values)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sim := authz.Simulation{PolicyFiles: policies, SessionPolicyFile: *sessionPolicy, Principal: *principal,
		Action: *action, Resource: *resource, Context: contexts}
	if *principal != "" {
		db, err := openToolStore(ctx, *configPath, *dataDir)
		if err != nil {
			return err
		}
		defer db.Close()
		sim.Store = db
	}
	d, why, err := sim.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "decision: %s\n", d.Outcome)
	fmt.Fprintf(stdout, "because:  %s\n", why)
	if !d.Allowed() {
		return errDenied
	}
	return nil
}

// runWhy prints the recorded explanation of a denied API call.
func runWhy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy why", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "serve's YAML config file (its store)")
	dataDir := fs.String("data-dir", "", "dev's data dir (default: "+pgserver.DefaultHomeHelp()+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: shiftkey policy why [--config FILE | --data-dir DIR] REQUEST_ID")
	}
	db, err := openToolStore(ctx, *configPath, *dataDir)
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
