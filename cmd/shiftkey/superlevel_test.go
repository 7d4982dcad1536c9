package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Roles PostgreSQL documents as able to gain superuser-level access are
// refused at login like superusers: members of pg_execute_server_program,
// pg_write_server_files or pg_read_server_files (files and programs as the
// server's OS user), and on PostgreSQL 15 and older a role with CREATEROLE
// (or one it can SET ROLE to), which grants itself any of those. A session
// of one ran a program as the server's OS user.
func TestSuperuserLevelRolesAreRefused(t *testing.T) {
	ctx := context.Background()
	var pre16 bool
	conn0 := mustConnect(t, dev, getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("sl_probe"), AutoCreate: aws.Bool(true)}), "dev")
	if err := conn0.QueryRow(ctx, "SELECT current_setting('server_version_num')::int < 160000").Scan(&pre16); err != nil {
		t.Fatal(err)
	}
	adminExec(t, dev,
		`CREATE ROLE sl_exec LOGIN`, `GRANT pg_execute_server_program TO sl_exec`,
		`CREATE ROLE sl_write LOGIN`, `GRANT pg_write_server_files TO sl_write`,
		`CREATE ROLE sl_read LOGIN`, `GRANT pg_read_server_files TO sl_read`,
		`CREATE ROLE sl_files NOLOGIN`, `GRANT pg_execute_server_program TO sl_files`,
		`CREATE ROLE sl_nested LOGIN`, `GRANT sl_files TO sl_nested`,
		`CREATE ROLE sl_ops LOGIN CREATEROLE`,
		`CREATE ROLE sl_opsgroup NOLOGIN CREATEROLE`, `CREATE ROLE sl_opsmember LOGIN`, `GRANT sl_opsgroup TO sl_opsmember`)
	t.Cleanup(func() {
		adminExec(t, dev, `DROP ROLE IF EXISTS sl_exec`, `DROP ROLE IF EXISTS sl_write`, `DROP ROLE IF EXISTS sl_read`, `DROP ROLE IF EXISTS sl_nested`,
			`DROP ROLE IF EXISTS sl_files`, `DROP ROLE IF EXISTS sl_ops`, `DROP ROLE IF EXISTS sl_opsmember`, `DROP ROLE IF EXISTS sl_opsgroup`)
	})
	cases := []struct{ user, becomes, prove string }{
		{"sl_exec", "pg_execute_server_program", "CREATE TEMP TABLE o (l text); COPY o FROM PROGRAM 'id -un'"},
		{"sl_write", "pg_write_server_files", ""},
		{"sl_read", "pg_read_server_files", ""},
		{"sl_nested", "pg_execute_server_program", "CREATE TEMP TABLE o (l text); COPY o FROM PROGRAM 'id -un'"},
	}
	if pre16 {
		cases = append(cases,
			struct{ user, becomes, prove string }{"sl_ops", "CREATEROLE", "GRANT pg_execute_server_program TO sl_ops; CREATE TEMP TABLE o (l text); COPY o FROM PROGRAM 'id -un'"},
			struct{ user, becomes, prove string }{"sl_opsmember", "sl_opsgroup", "SET ROLE sl_opsgroup; GRANT pg_execute_server_program TO sl_opsgroup; CREATE TEMP TABLE o (l text); COPY o FROM PROGRAM 'id -un'"})
	}
	for _, tc := range cases {
		cr := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(tc.user), DbName: aws.String("dev")})
		conn, err := connect(dev, cr, "dev")
		if err == nil {
			what := "logged in"
			if tc.prove != "" {
				for _, s := range strings.Split(tc.prove, "; ") {
					if _, err := conn.Exec(ctx, s); err != nil {
						what += "; " + s + ": " + err.Error()
						break
					}
				}
				var l string
				if conn.QueryRow(ctx, "SELECT l FROM o").Scan(&l) == nil {
					what += "; ran a program as OS user " + l
				}
			}
			conn.Close(ctx)
			t.Errorf("%s %s", tc.user, what)
			continue
		}
		if sqlState(err) != "28000" || !strings.Contains(err.Error(), tc.becomes) {
			t.Errorf("%s: %v, want 28000 naming %s", tc.user, err, tc.becomes)
		}
	}
	// BYPASSRLS or CREATEDB alone give no superuser-level access: issued.
	adminExec(t, dev, `CREATE ROLE sl_rls LOGIN BYPASSRLS CREATEDB`)
	t.Cleanup(func() { adminExec(t, dev, `DROP ROLE IF EXISTS sl_rls`) })
	cr := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("sl_rls"), DbName: aws.String("dev")})
	if u := currentUser(t, mustConnect(t, dev, cr, "dev")); u != "sl_rls" {
		t.Fatalf("session runs as %q", u)
	}
}
