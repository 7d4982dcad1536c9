package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Found rehearsing issue 17's check (two replicas, the audit log read as an
// incident responder would): every gateway record (GatewayLogin,
// GatewaySessionEnd, GrantSessionGroup, RevokeSessionGroup) lacked
// awsRegion, which CloudTrail puts in every record and which the queries
// of CloudTrail Lake and Athena select by (awsRegion = '…'): such a query
// found who got a credential and never where they logged in. Each now
// names the region of its cluster or workgroup, as the issuing call's
// record names the region it was signed for.
func TestAuditGatewayRecordsNameTheirRegion(t *testing.T) {
	ctx := context.Background()
	user, group := fresh("regional"), fresh("regiongroup")
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN")
	before, err := os.ReadFile(dev.AuditFile)
	if err != nil {
		t.Fatal(err)
	}
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(user), AutoCreate: aws.Bool(true), DbGroups: []string{group}})
	conn := mustConnect(t, dev, c, DevDatabase)
	conn.Close(ctx)
	// regions are the awsRegion of the new records about user, by eventName
	// ("<none>" for a record without one).
	regions := func() map[string]string {
		out := map[string]string{}
		b, _ := os.ReadFile(dev.AuditFile)
		for _, l := range bytes.Split(b[len(before):], []byte("\n")) {
			var r struct {
				EventName         string         `json:"eventName"`
				AWSRegion         *string        `json:"awsRegion"`
				RequestParameters map[string]any `json:"requestParameters"`
			}
			if json.Unmarshal(l, &r) != nil {
				continue
			}
			p := r.RequestParameters
			if p["dbUser"] != user && p["loginName"] != c.user {
				continue
			}
			out[r.EventName] = "<none>"
			if r.AWSRegion != nil {
				out[r.EventName] = *r.AWSRegion
			}
		}
		return out
	}
	var got map[string]string
	poll(t, 10*time.Second, "the call's, login's, grant's, revoke's and session end's records", func() bool {
		got = regions()
		return len(got) == 5
	})
	want := got["GetClusterCredentials"]
	if want == "" || want == "<none>" {
		t.Fatalf("GetClusterCredentials record's awsRegion %q: want the region signed for", want)
	}
	for _, name := range []string{"GatewayLogin", "GatewaySessionEnd", "GrantSessionGroup", "RevokeSessionGroup"} {
		if got[name] != want {
			t.Errorf("%s record: awsRegion %s, want %s (the cluster's, as the issuing call's record says)", name, got[name], want)
		}
	}
}
