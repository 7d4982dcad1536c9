package iam

import "testing"

// Only the AWS principals of the statements are replaced, as written
// otherwise (white space, order, other strings equal to them).
func TestReplaceAWSPrincipals(t *testing.T) {
	old := "arn:aws:iam::1:user/u"
	repl := func(p string) (string, bool) {
		if p == old {
			return "arn:aws:iam::1:user/team/u2", true
		}
		return "", false
	}
	for doc, want := range map[string]string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/u"},"Action":"sts:AssumeRole"}]}`:                                                                                        `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/team/u2"},"Action":"sts:AssumeRole"}]}`,
		"{ \"Statement\" : {\"Principal\": {\"AWS\" : [ \"arn:aws:iam::1:root\" ,\n \"arn:aws:iam::1:user/u\" ]}, \"Condition\": {\"StringEquals\": {\"aws:PrincipalArn\": \"arn:aws:iam::1:user/u\"}}, \"Effect\": \"Deny\"} }": "{ \"Statement\" : {\"Principal\": {\"AWS\" : [ \"arn:aws:iam::1:root\" ,\n \"arn:aws:iam::1:user/team/u2\" ]}, \"Condition\": {\"StringEquals\": {\"aws:PrincipalArn\": \"arn:aws:iam::1:user/u\"}}, \"Effect\": \"Deny\"} }",
		`{"Statement":[{"Principal":{"Service":"arn:aws:iam::1:user/u"},"Effect":"Allow"}]}`:                                                                                                                                     `{"Statement":[{"Principal":{"Service":"arn:aws:iam::1:user/u"},"Effect":"Allow"}]}`,
		`{"Statement":[{"Principal":"*","Effect":"Allow"}]}`:                              `{"Statement":[{"Principal":"*","Effect":"Allow"}]}`,
		`{"Statement":[{"Principal":{"AWS":"arn:aws:iam::1:user\/u"},"Effect":"Allow"}]}`: `{"Statement":[{"Principal":{"AWS":"arn:aws:iam::1:user/team/u2"},"Effect":"Allow"}]}`,
	} {
		got, err := ReplaceAWSPrincipals(doc, repl)
		if err != nil || got != want {
			t.Errorf("ReplaceAWSPrincipals(%s)\n= %s, %v\nwant %s", doc, got, err, want)
		}
	}
	if _, err := ReplaceAWSPrincipals(`{"Statement":[}`, repl); err == nil {
		t.Error("a malformed document: no error")
	}
}
