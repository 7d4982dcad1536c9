package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey/audit"
)

// runAudit is `shiftkey audit tail`: the audit log's records (of several
// replicas' logs merged in time order) of one principal, access key,
// credential or source address, or all, and with -f those that follow.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, fs, err := verbFlags(args, stderr, "audit", "audit: want: audit tail [--principal ARN|ID] [--access-key ID] [--credential ID] [--source-ip ADDR] [--since T] [--until T] [--event NAMES] [--failed] [--file F ... | --config FILE] [-f]", "tail")
	if err != nil {
		return err
	}
	var f audit.Filter
	fs.StringVar(&f.Principal, "principal", "", "only records of this principal ARN (a user, an assumed-role session; a role's ARN, with its path or without: each of its sessions', whichever role of that name), or unique id (userIdentity.principalId: a user's AIDA…, a role's AROA… for one incarnation of a role deleted and created again under its name, a session's AROA…:name)")
	fs.StringVar(&f.AccessKey, "access-key", "", "only calls signed with this access key ID or the STS sessions it started, the calls that created or changed it, and the logins, sessions, grants and revocations of the credentials they issued")
	fs.StringVar(&f.Credential, "credential", "", "only records of this issued credential (its id, as in credentials list and the audit log)")
	fs.StringVar(&f.SourceIP, "source-ip", "", "only records of calls and logins from this address (failed logins too)")
	since := fs.String("since", "", "only records at or after this time: RFC 3339 (2026-12-07T10:00:00Z) or a duration ago (90m, 24h)")
	until := fs.String("until", "", "only records at or before this time: RFC 3339 or a duration ago")
	fs.StringVar(&f.Events, "event", "", "only records of these eventNames, comma-separated (GetClusterCredentials,GatewayLogin,…)")
	fs.BoolVar(&f.Failed, "failed", false, "only records with an errorCode: refused calls and logins")
	var files multiFlag
	fs.Var(&files, "file", "an audit log; repeat it for each replica's, merged in time order (default: audit.file of --config)")
	cfgPath := fs.String("config", "", "serve's config file, for audit.file")
	follow := fs.Bool("f", false, "keep printing records as they are written, across rotations")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if strings.HasPrefix(f.Principal, "AGPA") {
		// A group is not a principal: no record is a group's.
		return fmt.Errorf("audit tail: --principal %s is a group's id: a group makes no calls; select its users by their ARNs or ids", f.Principal)
	}
	if strings.HasPrefix(f.Principal, "AKIA") || strings.HasPrefix(f.Principal, "ASIA") {
		// A key is not a principal: it would match nothing.
		return fmt.Errorf("audit tail: --principal %s is an access key id, not a principal: use --access-key", f.Principal)
	}
	now := time.Now()
	if f.Since, err = timeArg("since", *since, now); err != nil {
		return err
	}
	if f.Until, err = timeArg("until", *until, now); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return fmt.Errorf("audit tail: --until %s is before --since %s", f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	if len(files) == 0 && *cfgPath != "" {
		place, err := findTool(*cfgPath, "")
		if err != nil {
			return err
		}
		if f := place.auditFile(); f != "" {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return errors.New("audit tail: --file (or a --config with audit.file set to a file) is required")
	}
	n, err := audit.TailCount(ctx, stdout, files, f, *follow)
	if err == nil && !*follow && n.Written == 0 && f != (audit.Filter{}) {
		// Said, so that a mistyped filter is not read as "no activity".
		fmt.Fprintf(stderr, "audit tail: no record matched the filters (%d records read from %d files; ARNs and ids are compared exactly)\n", n.Read, len(files))
	}
	return err
}

// timeArg reads --since or --until: an RFC 3339 time, or a duration
// before now; "" is no bound.
func timeArg(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("audit tail: --%s %q: want an RFC 3339 time (2026-12-07T10:00:00Z) or a duration ago (90m)", name, v)
}
