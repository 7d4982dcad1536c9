package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// No startup parameter changes the role a session runs as: role and
// session_authorization, given directly in any letter case or in options
// in each form PostgreSQL reads (-c name=value, -cname=value, --name=value,
// backslash-escaped spaces), are left out. (Held on main; pins the
// allow-list against every spelling.)
func TestStartupParametersNeverChangeTheRole(t *testing.T) {
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("startup_role_probe"), AutoCreate: aws.Bool(true)})
	for i, params := range []map[string]string{
		{"options": "-c role=" + DevMasterUser},
		{"options": "-crole=" + DevMasterUser},
		{"options": "--role=" + DevMasterUser},
		{"options": "-c session_authorization=" + DevMasterUser},
		{"options": "--session-authorization=" + DevMasterUser},
		{"options": `-c application_name=x\ -c\ role=` + DevMasterUser},
		{"options": "-c application_name=x -c ROLE=" + DevMasterUser},
		{"role": DevMasterUser},
		{"Role": DevMasterUser},
		{"session_authorization": DevMasterUser},
		{"Options": "-c role=" + DevMasterUser},
		{"application_name": "x -c role=" + DevMasterUser},
	} {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=disable", dev.Gateway.Address, dev.Gateway.Port))
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Password = c.user, c.password
		cfg.RuntimeParams = params
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Errorf("%d %v: %v", i, params, err)
			continue
		}
		var cur, sess, super string
		err = conn.QueryRow(context.Background(), "SELECT current_user, session_user, current_setting('is_superuser')").Scan(&cur, &sess, &super)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cur != "startup_role_probe" || sess != "startup_role_probe" || super != "off" {
			t.Errorf("%d %v: current_user %q session_user %q is_superuser %s", i, params, cur, sess, super)
		}
	}
}
