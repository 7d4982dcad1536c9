package config

import (
	"strings"
	"testing"
)

// doc is an identity policy of about n characters that are not white
// space (IAM counts policy sizes without it), padded with pad spaces.
func doc(n, pad int) string {
	head := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::`
	tail := `"}]}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail + strings.Repeat(" ", pad)
}

func trust(n int) string {
	head := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"`
	tail := `"}}}]}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// TestDeclaredPoliciesWithinIAMLimits: what the config declares is held to
// the limits the IAM API holds callers to, so that a file the API would
// refuse fails at start (and at SIGHUP, which parses the file the same
// way) naming the field and the identity: managed policies 6,144
// characters, inline policies of one user 2,048, group 5,120, role 10,240
// in all, a trust policy 2,048 (white space not counted); IAM's paths,
// policy characters and description length.
func TestDeclaredPoliciesWithinIAMLimits(t *testing.T) {
	base := "store: {sqlite: /tmp/x.db}\n"
	q := func(s string) string { return "'" + s + "'" }
	okTrust := q(trust(200))
	tests := []struct{ name, yaml, want string }{
		{"managed policy size", `iam: {policies: [{name: big, document: ` + q(doc(6145, 0)) + `}]}`,
			`iam.policies[0].document: policy "big": 6145 characters (white space not counted), over IAM's 6144 for a managed policy`},
		{"user inline total", `iam: {users: [{name: alice, policies: {a: ` + q(doc(1100, 0)) + `, b: ` + q(doc(1000, 0)) + `}}]}`,
			`iam.users[0].policies: user "alice": its inline policies total 2100 characters (white space not counted), over IAM's 2048 for a user`},
		{"group inline total", `iam: {groups: [{name: ops, policies: {a: ` + q(doc(5121, 0)) + `}}]}`,
			`iam.groups[0].policies: group "ops": its inline policies total 5121 characters`},
		{"role inline total", `iam: {roles: [{name: etl, trust_policy: ` + okTrust + `, policies: {a: ` + q(doc(6000, 0)) + `, b: ` + q(doc(4241, 0)) + `}}]}`,
			`iam.roles[0].policies: role "etl": its inline policies total 10241 characters`},
		{"trust policy size", `iam: {roles: [{name: etl, trust_policy: ` + q(trust(2049)) + `}]}`,
			`iam.roles[0].trust_policy: role "etl": 2049 characters (white space not counted), over IAM's 2048 for a trust policy`},
		{"managed policy path", `iam: {policies: [{name: p, path: "/a b/", document: ` + q(doc(200, 0)) + `}]}`,
			`iam.policies[0].path: policy "p": `},
		{"user path", "iam: {users: [{name: alice, path: \"/a\\tb/\"}]}",
			`iam.users[0].path: user "alice": `},
		{"policy characters", `iam: {users: [{name: alice, policies: {a: ` + q(strings.Replace(doc(200, 0), "xxx", "x€x", 1)) + `}}]}`,
			`iam.users[0].policies.a: user "alice": `},
		{"policy description", `iam: {policies: [{name: p, description: "` + strings.Repeat("d", 1001) + `", document: ` + q(doc(200, 0)) + `}]}`,
			`iam.policies[0].description: policy "p": `},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(base+tt.yaml), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	// At the limits, and over them only in white space: accepted, as the
	// API accepts them.
	ok := `iam:
  policies: [{name: full, path: /a/b/, document: ` + q(doc(6144, 5000)) + `}]
  groups: [{name: ops, policies: {a: ` + q(doc(5120, 100)) + `}}]
  users: [{name: alice, path: "/x!~/", policies: {a: ` + q(doc(1048, 3000)) + `, b: ` + q(doc(1000, 0)) + `}}]
  roles: [{name: etl, trust_policy: ` + q(trust(2048)+strings.Repeat(" ", 500)) + `, policies: {a: ` + q(doc(10240, 0)) + `}}]
`
	if _, err := Parse(strings.NewReader(base+ok), func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("a config at IAM's limits: %v", err)
	}
}
