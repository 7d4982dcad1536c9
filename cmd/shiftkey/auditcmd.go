package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/shiftkey/shiftkey/audit"
	"github.com/shiftkey/shiftkey/config"
)

// runAudit is `shiftkey audit tail`: the audit log's records of one
// principal (or all), and with -f those that follow.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, fs, err := verbFlags(args, stderr, "audit", "audit: want: audit tail --principal ARN [--file F | --config FILE] [-f]", "tail")
	if err != nil {
		return err
	}
	principal := fs.String("principal", "", "only records of this principal ARN (a user, an assumed-role session, or the role behind sessions)")
	file := fs.String("file", "", "the audit log (default: audit.file of --config)")
	cfgPath := fs.String("config", "", "serve's config file, for audit.file")
	follow := fs.Bool("f", false, "keep printing records as they are written, across rotations")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path := *file
	if path == "" && *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		path = cfg.Audit.File
	}
	if path == "" || path == "-" {
		return errors.New("audit tail: --file (or a --config with audit.file set to a file) is required")
	}
	f := audit.Filter{Principal: *principal}
	if *follow {
		return audit.Follow(ctx, stdout, path, f)
	}
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	return audit.Copy(stdout, in, f)
}
