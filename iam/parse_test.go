package iam

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePolicyErrors(t *testing.T) {
	stmt := func(body string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},` + body + `]}`
	}
	cases := []struct {
		name, doc, want string
	}{
		{"not JSON", `{"Version":`, "invalid JSON"},
		{"trailing data", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`, "unexpected data"},
		{"not an object", `[]`, "must be a JSON object"},
		{"unknown top-level key", `{"Version":"2012-10-17","Statment":[]}`, `unknown policy element "Statment"`},
		{"lower-case element", `{"version":"2012-10-17","Statement":[]}`, `unknown policy element "version"`},
		{"bad version", `{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, "Version must be"},
		{"numeric version", `{"Version":2012,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, "Version must be"},
		{"missing statement", `{"Version":"2012-10-17"}`, "missing Statement"},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, "must not be empty"},
		{"statement is a string", `{"Version":"2012-10-17","Statement":"x"}`, "Statement must be an object or an array"},
		{"duplicate top-level key", `{"Version":"2012-10-17","Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, `duplicate key "Version"`},
		{"duplicate statement key", stmt(`{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}`), `duplicate key "Effect"`},
		{"duplicate operator", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"},"Bool":{"aws:SecureTransport":"false"}}}`), `duplicate key "Bool"`},
		{"unknown statement key", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Resources":"*"}`), `Statement[1]: unknown statement element "Resources"`},
		{"missing effect", stmt(`{"Action":"*","Resource":"*"}`), "Statement[1]: missing Effect"},
		{"bad effect", stmt(`{"Effect":"allow","Action":"*","Resource":"*"}`), `Effect must be "Allow" or "Deny"`},
		{"action and notaction", stmt(`{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}`), "not both"},
		{"no action", stmt(`{"Effect":"Allow","Resource":"*"}`), "missing Action or NotAction"},
		{"resource and notresource", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}`), "not both"},
		{"no resource", stmt(`{"Effect":"Allow","Action":"*"}`), "missing Resource or NotResource"},
		{"principal", stmt(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}`), "Principal is not allowed in an identity-based policy"},
		{"notprincipal", stmt(`{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"*","Resource":"*"}`), "NotPrincipal is not allowed"},
		{"empty action list", stmt(`{"Effect":"Allow","Action":[],"Resource":"*"}`), "Action must not be empty"},
		{"non-string action", stmt(`{"Effect":"Allow","Action":[1],"Resource":"*"}`), "Action must contain only strings"},
		{"action without service", stmt(`{"Effect":"Allow","Action":"GetClusterCredentials","Resource":"*"}`), `is not "*" or "service:action"`},
		{"action with space", stmt(`{"Effect":"Allow","Action":"redshift:Get Credentials","Resource":"*"}`), "invalid character"},
		{"empty notresource", stmt(`{"Effect":"Allow","Action":"*","NotResource":[]}`), "NotResource must not be empty"},
		{"resource not an ARN", stmt(`{"Effect":"Allow","Action":"*","Resource":"examplecluster"}`), "must be \"*\" or an ARN"},
		{"resource too few segments", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:redshift:*"}`), "must be \"*\" or an ARN"},
		{"wildcard service segment", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:red*:us-west-2:123456789012:dbuser:c/u"}`), "service segment"},
		{"variable before the resource part", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:${aws:RequestedRegion}::b"}`), "only in the resource part"},
		{"unterminated variable", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username"}`), "missing '}'"},
		{"empty variable", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${}"}`), "empty variable name"},
		{"unquoted default", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username, anon}"}`), "single quotes"},
		{"unterminated default", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username, 'anon}"}`), "unterminated default"},
		{"sid with hyphen", stmt(`{"Sid":"my-sid","Effect":"Allow","Action":"*","Resource":"*"}`), "only letters and digits"},
		{"duplicate sid", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}`, `duplicate Sid "A"`},
		{"unknown operator", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}`), `Statement[1]: unknown condition operator "StringEqualz"`},
		{"operator case", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"stringequals":{"aws:username":"a"}}}`), `unknown condition operator "stringequals"`},
		{"bad qualifier", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"aws:username":"a"}}}`), "unknown condition operator"},
		{"null with IfExists", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"aws:username":"true"}}}`), "Null takes neither"},
		{"null with qualifier", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:Null":{"aws:username":"true"}}}`), "Null takes neither"},
		{"condition not object", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":[]}`), "Condition must be an object"},
		{"operator block not object", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"x"}}`), "must map condition keys"},
		{"empty operator block", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}`), "has no condition keys"},
		{"key without prefix", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"username":"a"}}}`), `condition key "username"`},
		{"null value", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":null}}}`), "must be a string, number, Boolean"},
		{"object value", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":{"a":"b"}}}}`), "must be a string, number, Boolean"},
		{"empty value list", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":[]}}}`), "must not be empty"},
		{"nested value list", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":[["a"]]}}}`), "must be a string, number or Boolean"},
		{"bad number", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"redshift:DurationSeconds":"ten"}}}`), `"ten" is not a number`},
		{"NaN is no number", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"redshift:DurationSeconds":"NaN"}}}`), "is not a number"},
		{"hex is no number", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"redshift:DurationSeconds":"0x10"}}}`), "is not a number"},
		{"variable in numeric", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"redshift:DurationSeconds":"${aws:x}"}}}`), "not supported with Numeric operators"},
		{"bad date", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"next week"}}}`), "is not an ISO 8601 date"},
		{"bad bool", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}`), "is not a Boolean"},
		{"bad base64", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"BinaryEquals":{"test:blob":"***"}}}`), "is not base64"},
		{"bad ip", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}`), "is not an IP address"},
		{"bad arn", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:sns"}}}`), "is not an ARN"},
		{"bad null", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"aws:username":"maybe"}}}`), "is not true or false"},
		{"too deep", `{"Version":"2012-10-17","Statement":[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]}`, "nested too deeply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy("p", []byte(tc.doc))
			if err == nil {
				t.Fatalf("parsed: %+v", p)
			}
			var me *MalformedPolicyError
			if !errors.As(err, &me) {
				t.Fatalf("error %T %v is not a *MalformedPolicyError", err, err)
			}
			if !strings.Contains(me.Message, tc.want) {
				t.Errorf("message %q does not contain %q", me.Message, tc.want)
			}
		})
	}
}

func TestParsePolicyShapes(t *testing.T) {
	doc := `{
	  "Id": "example",
	  "Version": "2012-10-17",
	  "Statement": {
	    "Sid": "One",
	    "Effect": "Deny",
	    "NotAction": ["redshift:Get*", "redshift:JoinGroup"],
	    "NotResource": "arn:aws:redshift:*:123456789012:dbuser:*/${aws:username}",
	    "Condition": {
	      "NumericLessThan": {"redshift:DurationSeconds": [900, "1800", 2.5e3]},
	      "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a*", true]}
	    }
	  }
	}`
	p, err := ParsePolicy("name", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "name" || p.ID != "example" || p.Version != Version2012 || len(p.Statements) != 1 {
		t.Fatalf("policy = %+v", p)
	}
	s := p.Statements[0]
	if s.Sid != "One" || s.Effect != EffectDeny || s.Action != nil || len(s.NotAction) != 2 || s.Resource != nil || len(s.NotResource) != 1 {
		t.Fatalf("statement = %+v", s)
	}
	if len(s.Conditions) != 2 {
		t.Fatalf("conditions = %+v", s.Conditions)
	}
	c := s.Conditions[0]
	if c.Operator != "NumericLessThan" || c.Key != "redshift:DurationSeconds" || strings.Join(c.Values, ",") != "900,1800,2.5e3" {
		t.Errorf("condition = %+v", c)
	}
	if got := strings.Join(s.Conditions[1].Values, ","); got != "a*,true" {
		t.Errorf("values = %q", got)
	}
	// Version is optional; variables are then literal text.
	if _, err := ParsePolicy("v", []byte(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${x"}]}`)); err != nil {
		t.Errorf("2008 policy with a literal ${: %v", err)
	}
	// The same text is an error where variables are substituted.
	if _, err := ParsePolicy("v", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${x"}]}`)); err == nil {
		t.Error("unterminated variable accepted in a 2012-10-17 policy")
	}
	// Variables in Numeric values are never substituted, so this is literal and invalid in any version.
	if _, err := ParsePolicy("v", []byte(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"${aws:x}"}}}]}`)); err == nil {
		t.Error("variable accepted as a date")
	}
}

func TestMalformedPolicyErrorText(t *testing.T) {
	_, err := ParsePolicy("p", []byte(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}}`))
	want := `malformed policy document: Statement[0]: unknown condition operator "StringEqualz"`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestParseTemplate(t *testing.T) {
	cases := []struct {
		in   string
		ctx  map[string][]string
		want string
		ok   bool
	}{
		{"a${aws:username}b", kv("aws:username", "x"), "axb", true},
		{"${ aws:username , 'it''s' }", nil, "it's", true},
		{"${aws:username, 'a}b'}", nil, "a}b", true},
		{"${aws:username,'d'}", nil, "d", true},
		{"${*}${?}${$}", nil, "*?$", true},
		{"${aws:username}", nil, "", false},
		{"${AWS:USERNAME}", kv("aws:UserName", "x"), "x", true},
		{"$x{y}", nil, "$x{y}", true},
	}
	for _, tc := range cases {
		tmpl, err := parseTemplate(tc.in, true)
		if err != nil {
			t.Errorf("parseTemplate(%q): %v", tc.in, err)
			continue
		}
		got, ok := tmpl.resolveString(newEvalContext(Request{Context: tc.ctx}))
		if got != tc.want || ok != tc.ok {
			t.Errorf("resolve(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParsers(t *testing.T) {
	for _, s := range []string{"0", "-1", "+2", "3.5", ".5", "5.", "1e3", "1E-3", "3600"} {
		if _, ok := parseNumber(s); !ok {
			t.Errorf("parseNumber(%q) failed", s)
		}
	}
	for _, s := range []string{"", "-", ".", "e3", "1e", "1e99999", "Inf", "NaN", "0x1p3", "1_000", " 1", "1/2"} {
		if _, ok := parseNumber(s); ok {
			t.Errorf("parseNumber(%q) succeeded", s)
		}
	}
	for _, s := range []string{"2020-01-01", "2020-01", "2020-01-01T10:00Z", "2020-01-01T10:00:00Z", "2020-01-01T10:00:00.123Z",
		"2020-01-01T10:00:00+02:00", "2020-01-01T10:00:00", "1577836800", "1577836800.5"} {
		if _, ok := parseDate(s); !ok {
			t.Errorf("parseDate(%q) failed", s)
		}
	}
	for _, s := range []string{"", "2020-13-01", "01/01/2020", "99999999999999999999", "1577836800.", "now"} {
		if _, ok := parseDate(s); ok {
			t.Errorf("parseDate(%q) succeeded", s)
		}
	}
}
