package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shiftkey/shiftkey/audit"
)

// runAudit is `shiftkey audit tail`: the audit log's records (of several
// replicas' logs merged in time order) of one principal, access key,
// credential or source address, or all, and with -f those that follow.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, fs, err := verbFlags(args, stderr, "audit", "audit: want: audit tail [--principal ARN|ID] [--access-key ID] [--credential ID] [--source-ip ADDR] [--file F ... | --config FILE] [-f]", "tail")
	if err != nil {
		return err
	}
	var f audit.Filter
	fs.StringVar(&f.Principal, "principal", "", "only records of this principal ARN (a user, an assumed-role session; a role's ARN, with its path or without: each of its sessions', whichever role of that name), or unique id (userIdentity.principalId: a user's AIDA…, a role's AROA… for one incarnation of a role deleted and created again under its name, a session's AROA…:name)")
	fs.StringVar(&f.AccessKey, "access-key", "", "only calls signed with this access key ID or the STS sessions it started, the calls that created or changed it, and the logins, sessions, grants and revocations of the credentials they issued")
	fs.StringVar(&f.Credential, "credential", "", "only records of this issued credential (its id, as in credentials list and the audit log)")
	fs.StringVar(&f.SourceIP, "source-ip", "", "only records of calls and logins from this address (failed logins too)")
	var files multiFlag
	fs.Var(&files, "file", "an audit log; repeat it for each replica's, merged in time order (default: audit.file of --config)")
	cfgPath := fs.String("config", "", "serve's config file, for audit.file")
	follow := fs.Bool("f", false, "keep printing records as they are written, across rotations")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if strings.HasPrefix(f.Principal, "AKIA") || strings.HasPrefix(f.Principal, "ASIA") {
		// A key is not a principal: it would match nothing.
		return fmt.Errorf("audit tail: --principal %s is an access key id, not a principal: use --access-key", f.Principal)
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
