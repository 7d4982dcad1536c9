package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/shiftkey/shiftkey/doctor"
)

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := doctor.Options{Env: doctor.EnvFrom(os.Getenv)}
	fs.StringVar(&opts.Cluster, "cluster", "", "cluster identifier")
	fs.StringVar(&opts.Workgroup, "workgroup", "", "Redshift Serverless workgroup name")
	fs.StringVar(&opts.DBUser, "db-user", "", "database user to get a credential for (--cluster)")
	fs.StringVar(&opts.DBName, "db-name", "", "database (default: the cluster's)")
	fs.BoolVar(&opts.AutoCreate, "auto-create", false, "create the database user if it does not exist (--cluster)")
	fs.StringVar(&opts.CA, "ca", os.Getenv("PGSSLROOTCERT"), "the gateway's CA certificate (PEM) for verify-full; default PGSSLROOTCERT, else the system store")
	fs.DurationVar(&opts.Timeout, "timeout", 0, "per API call and per login (default 15s)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r := doctor.Run(ctx, opts)
	if err := r.WriteText(stdout); err != nil {
		return err
	}
	if r.Problem != nil {
		return fmt.Errorf("doctor: %s failed", r.Problem.Step)
	}
	if !r.OK {
		return doctor.ErrNotHealthy
	}
	return nil
}
