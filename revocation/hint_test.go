package revocation_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/revocation"
)

// Found in an operator's review: ARNs are compared exactly, so the ARN of
// a leaked user pasted without its path (user/carol for user/eng/carol) or
// in another case (user/Carol: IAM names are unique whatever their case)
// matched nothing, and list said only "no live credentials match" (exit
// 0), revoke "no credential matches principal …": an operator took the
// user for having nothing live. Both now name the live credentials'
// principals that ARN most likely meant, and how many each has.
func TestNoMatchNamesTheLikelyPrincipal(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	if err := st.CreateCluster(ctx, &shiftkey.Cluster{Identifier: "c1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"arn:aws:iam::1:user/eng/carol", "arn:aws:iam::1:user/eng/carol", "arn:aws:iam::1:user/carol2", "arn:aws:sts::1:assumed-role/Carol/s1"} {
		login := "IAM:u" + string(rune('a'+i))
		st.LoginSalt(ctx, "c1", login, "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
		if err := st.CreateCredential(ctx, &shiftkey.Credential{ID: "cred" + string(rune('a'+i)), Cluster: "c1", LoginName: login, DBUser: "u",
			StoredKey: []byte("stored"), ServerKey: []byte("server"), PrincipalARN: p, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, typed := range []string{"arn:aws:iam::1:user/carol", "arn:aws:iam::1:user/Carol", "arn:aws:iam::1:user/ENG/Carol"} {
		var out bytes.Buffer
		if err := revocation.List(ctx, st, shiftkey.CredentialFilter{PrincipalARN: typed}, now, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "no live credentials match") || !strings.Contains(out.String(), "arn:aws:iam::1:user/eng/carol (2)") ||
			strings.Contains(out.String(), "carol2") || strings.Contains(out.String(), "assumed-role") {
			t.Errorf("list --principal %s:\n%s", typed, out.String())
		}
		out.Reset()
		_, err := revocation.Revoke(ctx, st, shiftkey.CredentialFilter{PrincipalARN: typed}, now, false, &out)
		if !errors.Is(err, revocation.ErrNoMatch) || !strings.Contains(err.Error(), "arn:aws:iam::1:user/eng/carol (2)") || strings.Contains(err.Error(), "carol2") {
			t.Errorf("revoke --principal %s: %v", typed, err)
		}
	}
	// A principal nothing resembles: no note.
	var out bytes.Buffer
	if err := revocation.List(ctx, st, shiftkey.CredentialFilter{PrincipalARN: "arn:aws:iam::1:user/dave"}, now, &out); err != nil || strings.TrimSpace(out.String()) != "no live credentials match" {
		t.Errorf("list --principal user/dave: %v\n%s", err, out.String())
	}
}
