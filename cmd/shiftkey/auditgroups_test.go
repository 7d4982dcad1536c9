package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey"
)

// Found reading a scenario's audit log as an incident responder: a login
// whose credential asked for groups the session could not join (one that
// does not exist, one that is not a plain group role) was recorded with
// dbGroups naming them all and nothing else: the gateway told the client
// which were not joined (a NOTICE each), the log did not, so it said the
// session held groups it never held. The login's and the session end's
// records now carry the notices (additionalEventData.notices); the groups
// joined are the GrantSessionGroup records.
func TestAuditLoginSaysWhichGroupsWereNotJoined(t *testing.T) {
	ctx := context.Background()
	user, group, missing, unsafe := fresh("grouped"), fresh("joinable"), fresh("nosuchgroup"), fresh("loginrole")
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN", "CREATE ROLE "+unsafe+" LOGIN")
	before, err := os.ReadFile(dev.AuditFile)
	if err != nil {
		t.Fatal(err)
	}
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(user), AutoCreate: aws.Bool(true), DbGroups: []string{group, missing, unsafe}})
	conn := mustConnect(t, dev, c, DevDatabase)
	conn.Close(ctx)
	// records are the new lines of the audit log about c's login name.
	records := func() (login, end map[string]any, grants []string) {
		b, _ := os.ReadFile(dev.AuditFile)
		for _, l := range bytes.Split(b[len(before):], []byte("\n")) {
			var r map[string]any
			if json.Unmarshal(l, &r) != nil {
				continue
			}
			p, _ := r["requestParameters"].(map[string]any)
			switch r["eventName"] {
			case "GatewayLogin":
				if p["loginName"] == c.user {
					login = r
				}
			case "GatewaySessionEnd":
				if p["loginName"] == c.user {
					end = r
				}
			case "GrantSessionGroup":
				if p["dbUser"] == user {
					grants = append(grants, fmt.Sprint(p["group"]))
				}
			}
		}
		return login, end, grants
	}
	var login, end map[string]any
	var grants []string
	poll(t, 10*time.Second, "the login's and session end's records", func() bool {
		login, end, grants = records()
		return login != nil && end != nil
	})
	if fmt.Sprint(grants) != "["+group+"]" {
		t.Errorf("groups granted: %v, want [%s]", grants, group)
	}
	for name, r := range map[string]map[string]any{"login": login, "session end": end} {
		extra, _ := r["additionalEventData"].(map[string]any)
		notices := fmt.Sprint(extra["notices"])
		if !strings.Contains(notices, fmt.Sprintf("group %q not joined", missing)) || !strings.Contains(notices, fmt.Sprintf("group %q not joined", unsafe)) ||
			strings.Contains(notices, fmt.Sprintf("group %q", group)) {
			t.Errorf("%s record: additionalEventData %v, want the notices that %s and %s were not joined (and none of %s)", name, extra, missing, unsafe, group)
		}
		// audit tail reads the groups not joined back from the notices.
		var notJoined []string
		list, _ := extra["notices"].([]any)
		for _, n := range list {
			if g, ok := shiftkey.GroupNotJoined(fmt.Sprint(n)); ok {
				notJoined = append(notJoined, g)
			}
		}
		if fmt.Sprint(notJoined) != fmt.Sprint([]string{missing, unsafe}) {
			t.Errorf("%s record: groups read back from the notices %v, want [%s %s]", name, notJoined, missing, unsafe)
		}
	}
}
