package iam

import (
	"errors"
	"strings"
	"testing"
)

const acct = "111122223333"

func trustDoc(principal, extra string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"T","Effect":"Allow","Principal":` + principal + `,"Action":"sts:AssumeRole"` + extra + `}]}`
}

func TestTrustPolicyPrincipals(t *testing.T) {
	user := TrustCaller{ARN: "arn:aws:iam::" + acct + ":user/eng/Alice", Account: acct}
	session := TrustCaller{ARN: "arn:aws:sts::" + acct + ":assumed-role/Ops/alice-1", Account: acct, RoleARN: "arn:aws:iam::" + acct + ":role/Ops"}
	other := TrustCaller{ARN: "arn:aws:iam::444455556666:user/Alice", Account: "444455556666"}
	tests := []struct {
		name      string
		principal string
		caller    TrustCaller
		want      Outcome
		grant     Grant
	}{
		{"account root", `{"AWS":"arn:aws:iam::` + acct + `:root"}`, user, Allow, GrantAccount},
		{"bare account id", `{"AWS":"` + acct + `"}`, user, Allow, GrantAccount},
		{"account id of another account", `{"AWS":"` + acct + `"}`, other, ImplicitDeny, GrantNone},
		{"user ARN", `{"AWS":"arn:aws:iam::` + acct + `:user/eng/Alice"}`, user, Allow, GrantCaller},
		{"user ARN, other case", `{"AWS":"arn:aws:iam::` + acct + `:user/eng/ALICE"}`, user, Allow, GrantCaller},
		{"user ARN without its path", `{"AWS":"arn:aws:iam::` + acct + `:user/Alice"}`, user, ImplicitDeny, GrantNone},
		{"another user", `{"AWS":"arn:aws:iam::` + acct + `:user/eng/Bob"}`, user, ImplicitDeny, GrantNone},
		{"list with the user", `{"AWS":["arn:aws:iam::` + acct + `:user/eng/Bob","arn:aws:iam::` + acct + `:user/eng/Alice"]}`, user, Allow, GrantCaller},
		{"role ARN, session of it", `{"AWS":"arn:aws:iam::` + acct + `:role/Ops"}`, session, Allow, GrantRole},
		{"role ARN, a user", `{"AWS":"arn:aws:iam::` + acct + `:role/Ops"}`, user, ImplicitDeny, GrantNone},
		{"session ARN", `{"AWS":"arn:aws:sts::` + acct + `:assumed-role/Ops/alice-1"}`, session, Allow, GrantCaller},
		{"session ARN, another session name", `{"AWS":"arn:aws:sts::` + acct + `:assumed-role/Ops/bob-1"}`, session, ImplicitDeny, GrantNone},
		{"session ARN, session name in other case", `{"AWS":"arn:aws:sts::` + acct + `:assumed-role/Ops/ALICE-1"}`, session, ImplicitDeny, GrantNone},
		{"root and role: the stronger grant", `{"AWS":["` + acct + `","arn:aws:iam::` + acct + `:role/Ops"]}`, session, Allow, GrantRole},
		{"AWS *", `{"AWS":"*"}`, other, Allow, GrantCaller},
		{"bare *", `"*"`, user, Allow, GrantCaller},
		// A wildcard names no session specifically: AWS adds a
		// resource-based policy's grant to a session's session policy only
		// when the policy "specifically references the role session" (STS
		// AssumeRole, Policy parameter), so "*" grants a session as its
		// role ARN would, bounded by the session policy.
		{"AWS *, a session", `{"AWS":"*"}`, session, Allow, GrantRole},
		{"bare *, a session", `"*"`, session, Allow, GrantRole},
		{"* and the session ARN: the stronger grant", `{"AWS":["*","arn:aws:sts::` + acct + `:assumed-role/Ops/alice-1"]}`, session, Allow, GrantCaller},
		{"service principal", `{"Service":"ec2.amazonaws.com"}`, user, ImplicitDeny, GrantNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := ParseTrustPolicy("trust", []byte(trustDoc(tt.principal, "")))
			if err != nil {
				t.Fatal(err)
			}
			d := tp.Evaluate(tt.caller, Request{Action: "sts:AssumeRole", Resource: "arn:aws:iam::" + acct + ":role/Target"})
			if d.Outcome != tt.want || d.Grant != tt.grant {
				t.Fatalf("got %v grant %v, want %v grant %v", d.Outcome, d.Grant, tt.want, tt.grant)
			}
			if d.Outcome == Allow && (len(d.Deciding) != 1 || d.Deciding[0].Sid != "T") {
				t.Fatalf("deciding %+v", d.Deciding)
			}
		})
	}
}

func TestTrustPolicyConditionsAndDeny(t *testing.T) {
	user := TrustCaller{ARN: "arn:aws:iam::" + acct + ":user/Alice", Account: acct}
	root := `{"AWS":"arn:aws:iam::` + acct + `:root"}`
	role := "arn:aws:iam::" + acct + ":role/Target"
	tests := []struct {
		name   string
		doc    string
		action string
		keys   map[string][]string
		want   Outcome
	}{
		{"external id matches", trustDoc(root, `,"Condition":{"StringEquals":{"sts:ExternalId":"x-123"}}`), "sts:AssumeRole", map[string][]string{"sts:ExternalId": {"x-123"}}, Allow},
		{"external id differs", trustDoc(root, `,"Condition":{"StringEquals":{"sts:ExternalId":"x-123"}}`), "sts:AssumeRole", map[string][]string{"sts:ExternalId": {"x-999"}}, ImplicitDeny},
		{"external id missing", trustDoc(root, `,"Condition":{"StringEquals":{"sts:ExternalId":"x-123"}}`), "sts:AssumeRole", nil, ImplicitDeny},
		{"principal tag", trustDoc(root, `,"Condition":{"StringEquals":{"aws:PrincipalTag/team":"data"}}`), "sts:AssumeRole", map[string][]string{"aws:PrincipalTag/team": {"data"}}, Allow},
		{"principal tag differs", trustDoc(root, `,"Condition":{"StringEquals":{"aws:PrincipalTag/team":"data"}}`), "sts:AssumeRole", map[string][]string{"aws:PrincipalTag/team": {"ops"}}, ImplicitDeny},
		{"action not in the statement", trustDoc(root, ""), "sts:TagSession", nil, ImplicitDeny},
		{"deny naming the account wins over allow naming the user",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:user/Alice"},"Action":"sts:AssumeRole"},
			{"Effect":"Deny","Principal":` + root + `,"Action":"sts:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`,
			"sts:AssumeRole", map[string][]string{"aws:SecureTransport": {"false"}}, ExplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := ParseTrustPolicy("trust", []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if d := tp.Evaluate(user, Request{Action: tt.action, Resource: role, Context: tt.keys}); d.Outcome != tt.want {
				t.Fatalf("got %v, want %v", d.Outcome, tt.want)
			}
		})
	}
}

func TestParseTrustPolicyRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"no principal":         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`,
		"NotPrincipal":         `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}`,
		"Resource":             `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}`,
		"non-sts action":       `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}`,
		"wildcard user ARN":    trustDoc(`{"AWS":"arn:aws:iam::`+acct+`:user/*"}`, ""),
		"not an account":       trustDoc(`{"AWS":"12345"}`, ""),
		"S3 ARN":               trustDoc(`{"AWS":"arn:aws:s3:::bucket"}`, ""),
		"unknown type":         trustDoc(`{"Robot":"r2d2"}`, ""),
		"duplicate key":        `{"Version":"2012-10-17","Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`,
		"empty statement":      `{"Version":"2012-10-17","Statement":[]}`,
		"bad effect":           trustDoc(`"*"`, `,"Effect":"Maybe"`),
		"unknown version":      `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`,
		"session ARN, 2 parts": trustDoc(`{"AWS":"arn:aws:sts::`+acct+`:assumed-role/Ops"}`, ""),
	} {
		if _, err := ParseTrustPolicy("trust", []byte(doc)); !errors.As(err, new(*MalformedPolicyError)) {
			t.Errorf("%s: got %v, want a MalformedPolicyError", name, err)
		} else if strings.Contains(name, "NotPrincipal") && !strings.Contains(err.Error(), "prohibited field NotPrincipal") {
			t.Errorf("NotPrincipal: %v", err)
		}
	}
}

// A trust policy saved while a user it names does not exist binds that
// principal to no one. For an Allow that is fail-safe, but a Deny naming a
// user not yet created must still deny that user once created: AWS refuses
// such a policy at CreateRole ("Invalid principal in policy", IAM
// knowledge center, iam-trust-policy-error), so it never holds an Allow
// without its Deny. A Deny bound to an id that is not the caller's (the
// user deleted and created again) spares the new user, as in AWS, where
// the saved policy names the old unique id.
func TestTrustDenyNamingUnboundPrincipal(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Account","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"sts:AssumeRole"},
		{"Sid":"NotDave","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::` + acct + `:user/dave"},"Action":"sts:AssumeRole"}]}`
	tp, err := ParseTrustPolicy("trust", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	dave := TrustCaller{ARN: "arn:aws:iam::" + acct + ":user/dave", Account: acct, ID: "AIDADAVE2"}
	req := Request{Action: "sts:AssumeRole", Resource: "arn:aws:iam::" + acct + ":role/Target"}
	// Saved before dave existed: the principal is not in the bindings.
	if d := tp.Bind(map[string]string{}).Evaluate(dave, req); d.Outcome != ExplicitDeny {
		t.Fatalf("unbound Deny: got %v, want explicitDeny", d.Outcome)
	}
	// Saved while another dave existed: that one is named, not this one.
	if d := tp.Bind(map[string]string{"arn:aws:iam::" + acct + ":user/dave": "AIDADAVE1"}).Evaluate(dave, req); d.Outcome != Allow {
		t.Fatalf("Deny bound to an earlier dave: got %v, want allow", d.Outcome)
	}
	// An Allow naming an unbound principal still matches no one.
	allow, err := ParseTrustPolicy("trust", []byte(trustDoc(`{"AWS":"arn:aws:iam::`+acct+`:user/dave"}`, "")))
	if err != nil {
		t.Fatal(err)
	}
	if d := allow.Bind(map[string]string{}).Evaluate(dave, req); d.Outcome != ImplicitDeny {
		t.Fatalf("unbound Allow: got %v, want implicitDeny", d.Outcome)
	}
}
