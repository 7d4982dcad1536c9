package iam

import "testing"

// FuzzParsePolicy checks that parsing never panics and that any policy that
// parses can be evaluated without panicking.
func FuzzParsePolicy(f *testing.F) {
	for _, tc := range evalCases() {
		for _, p := range tc.policies {
			key, value := "aws:username", "alice"
			for k, v := range tc.ctx {
				if len(v) > 0 {
					key, value = k, v[0]
				}
				break
			}
			f.Add([]byte(p.doc), tc.action, tc.resource, key, value)
		}
	}
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::${aws:username, 'x'}/${*}","Condition":{"ForAllValues:ArnNotLikeIfExists":{"aws:SourceArn":"${aws:PrincipalArn}"}}}}`),
		"s3:GetObject", "arn:aws:s3:::alice/*", "aws:PrincipalArn", "arn:aws:iam::1:user/a")
	f.Add([]byte(`{"Statement":[[[[`), "", "", "", "")
	f.Fuzz(func(t *testing.T, doc []byte, action, resource, key, value string) {
		p, err := ParsePolicy("fuzz", doc)
		if err != nil {
			if _, ok := err.(*MalformedPolicyError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		ctxs := []map[string][]string{
			nil,
			{key: {value}},
			{key: {value, value + "x"}, "aws:username": {value}},
			{key: {}},
		}
		for _, ctx := range ctxs {
			d := Evaluate(Request{Action: action, Resource: resource, Context: ctx}, p, p)
			if (d.Outcome == ImplicitDeny) != (len(d.Deciding) == 0) {
				t.Fatalf("decision %v with deciding %v", d.Outcome, d.Deciding)
			}
		}
	})
}
