package iam

import (
	"fmt"
	"slices"
	"testing"
)

type testPolicy struct{ name, doc string }

type evalCase struct {
	name     string
	policies []testPolicy
	action   string
	resource string
	ctx      map[string][]string
	want     Outcome
	deciding []string // "policy:Sid", or "policy:#index" for statements without a Sid
}

const (
	rsPrefix   = "arn:aws:redshift:us-west-2:123456789012:"
	rsUser     = rsPrefix + "dbuser:examplecluster/"
	rsGroup    = rsPrefix + "dbgroup:examplecluster/"
	rsDB       = rsPrefix + "dbname:examplecluster/"
	getCreds   = "redshift:GetClusterCredentials"
	joinGroup  = "redshift:JoinGroup"
	createUser = "redshift:CreateClusterUser"
	aliceID    = "AIDIODR4TAW7CSEXAMPLE:alice@yourdomain.com"
)

// selfService is the Redshift documentation's example: each federated user
// gets credentials only for the database user named in their own user id,
// may auto-create that user, and may join common_group.
const selfService = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "GetClusterCredsStatement",
      "Effect": "Allow",
      "Action": ["redshift:GetClusterCredentials"],
      "Resource": [
        "arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/${redshift:DbUser}",
        "arn:aws:redshift:us-west-2:123456789012:dbname:examplecluster/testdb",
        "arn:aws:redshift:us-west-2:123456789012:dbgroup:examplecluster/common_group"
      ],
      "Condition": {
        "StringEquals": {"aws:userid": "AIDIODR4TAW7CSEXAMPLE:${redshift:DbUser}@yourdomain.com"}
      }
    },
    {
      "Sid": "CreateClusterUserStatement",
      "Effect": "Allow",
      "Action": ["redshift:CreateClusterUser"],
      "Resource": ["arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/${redshift:DbUser}"],
      "Condition": {
        "StringEquals": {"aws:userid": "AIDIODR4TAW7CSEXAMPLE:${redshift:DbUser}@yourdomain.com"}
      }
    },
    {
      "Sid": "RedshiftJoinGroupStatement",
      "Effect": "Allow",
      "Action": ["redshift:JoinGroup"],
      "Resource": ["arn:aws:redshift:us-west-2:123456789012:dbgroup:examplecluster/common_group"]
    }
  ]
}`

const adminAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`

// allowIf builds a policy allowing everything when cond (a Condition object) holds.
func allowIf(cond string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"Cond","Effect":"Allow","Action":"*","Resource":"*","Condition":` + cond + `}]}`
}

// denyIf builds a policy denying everything when cond holds.
func denyIf(cond string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"DenyCond","Effect":"Deny","Action":"*","Resource":"*","Condition":` + cond + `}]}`
}

// allowRes builds a policy allowing action on one resource pattern.
func allowRes(version, action, resource string) string {
	v := ""
	if version != "" {
		v = `"Version":"` + version + `",`
	}
	return `{` + v + `"Statement":{"Sid":"Res","Effect":"Allow","Action":"` + action + `","Resource":"` + resource + `"}}`
}

func kv(pairs ...string) map[string][]string {
	m := map[string][]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = append(m[pairs[i]], pairs[i+1])
	}
	return m
}

func self(dbUser, userID string) map[string][]string {
	return kv("redshift:DbUser", dbUser, "aws:userid", userID)
}

func one(name, doc string) []testPolicy { return []testPolicy{{name, doc}} }

func evalCases() []evalCase {
	ss := one("ss", selfService)
	cond := func(c string) []testPolicy { return one("p", allowIf(c)) }
	denyCond := func(c string) []testPolicy { return []testPolicy{{"admin", adminAll}, {"d", denyIf(c)}} }
	anyRes := rsUser + "alice"
	return []evalCase{
		// (1) The documented self-service policy.
		{"redshift/self-service allows own dbuser", ss, getCreds, rsUser + "alice", self("alice", aliceID), Allow, []string{"ss:GetClusterCredsStatement"}},
		{"redshift/self-service denies another user's id", ss, getCreds, rsUser + "bob", self("bob", aliceID), ImplicitDeny, nil},
		{"redshift/self-service resource must be the requested dbuser", ss, getCreds, rsUser + "bob", self("alice", aliceID), ImplicitDeny, nil},
		{"redshift/self-service without DbUser key", ss, getCreds, rsUser + "alice", kv("aws:userid", aliceID), ImplicitDeny, nil},
		{"redshift/self-service listed dbname", ss, getCreds, rsDB + "testdb", self("alice", aliceID), Allow, []string{"ss:GetClusterCredsStatement"}},
		{"redshift/self-service unlisted dbname", ss, getCreds, rsDB + "proddb", self("alice", aliceID), ImplicitDeny, nil},
		{"redshift/self-service userid is case-sensitive", ss, getCreds, rsUser + "alice", self("alice", "AIDIODR4TAW7CSEXAMPLE:Alice@yourdomain.com"), ImplicitDeny, nil},
		{"redshift/self-service DbUser star is literal", ss, getCreds, rsUser + "alice", self("*", "AIDIODR4TAW7CSEXAMPLE:*@yourdomain.com"), ImplicitDeny, nil},
		{"redshift/self-service condition key names are case-insensitive", ss, getCreds, rsUser + "alice", kv("REDSHIFT:dbuser", "alice", "AWS:UserId", aliceID), Allow, []string{"ss:GetClusterCredsStatement"}},
		// (2) JoinGroup.
		{"redshift/join listed group", ss, joinGroup, rsGroup + "common_group", self("alice", aliceID), Allow, []string{"ss:RedshiftJoinGroupStatement"}},
		{"redshift/join unlisted group", ss, joinGroup, rsGroup + "admins", self("alice", aliceID), ImplicitDeny, nil},
		// (3) CreateClusterUser only when allowed.
		{"redshift/create user allowed", ss, createUser, rsUser + "alice", self("alice", aliceID), Allow, []string{"ss:CreateClusterUserStatement"}},
		{"redshift/create user for another dbuser", ss, createUser, rsUser + "bob", self("alice", aliceID), ImplicitDeny, nil},
		{"redshift/create user not granted by a creds-only policy",
			one("creds", allowRes("2012-10-17", getCreds, rsUser+"*")), createUser, rsUser + "alice", nil, ImplicitDeny, nil},
		{"redshift/creds granted by a creds-only policy",
			one("creds", allowRes("2012-10-17", getCreds, rsUser+"*")), getCreds, rsUser + "alice", nil, Allow, []string{"creds:Res"}},

		// (4) Deny with NotResource.
		{"notresource/deny outside the cluster", notResDeny(), getCreds, rsPrefix + "dbuser:othercluster/alice", nil, ExplicitDeny, []string{"guard:DenyOtherClusters"}},
		{"notresource/deny spares listed resources", notResDeny(), getCreds, rsUser + "alice", nil, Allow, []string{"admin:#0"}},
		{"notresource/deny spares other actions", notResDeny(), "s3:GetObject", "arn:aws:s3:::bucket/key", nil, Allow, []string{"admin:#0"}},
		{"notresource/allow excludes admin group", one("p", `{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":"redshift:*","NotResource":"`+rsGroup+`admin"}}`),
			joinGroup, rsGroup + "admin", nil, ImplicitDeny, nil},
		{"notresource/allow covers other groups", one("p", `{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":"redshift:*","NotResource":"`+rsGroup+`admin"}}`),
			joinGroup, rsGroup + "common_group", nil, Allow, []string{"p:A"}},
		{"notresource/allow with missing variable fails safe", one("p", `{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":"*","NotResource":"`+rsUser+`${aws:username}"}}`),
			getCreds, rsUser + "bob", nil, ImplicitDeny, nil},
		{"notresource/deny with missing variable still denies", []testPolicy{{"admin", adminAll}, {"d", `{"Version":"2012-10-17","Statement":{"Sid":"D","Effect":"Deny","Action":"*","NotResource":"` + rsUser + `${aws:username}"}}`}},
			getCreds, rsUser + "bob", nil, ExplicitDeny, []string{"d:D"}},
		{"notresource/deny with variable spares own user", []testPolicy{{"admin", adminAll}, {"d", `{"Version":"2012-10-17","Statement":{"Sid":"D","Effect":"Deny","Action":"*","NotResource":"` + rsUser + `${aws:username}"}}`}},
			getCreds, rsUser + "alice", kv("aws:username", "alice"), Allow, []string{"admin:#0"}},
		{"notresource/deny with variable denies other user", []testPolicy{{"admin", adminAll}, {"d", `{"Version":"2012-10-17","Statement":{"Sid":"D","Effect":"Deny","Action":"*","NotResource":"` + rsUser + `${aws:username}"}}`}},
			getCreds, rsUser + "bob", kv("aws:username", "alice"), ExplicitDeny, []string{"d:D"}},

		// (5) redshift:DurationSeconds is a string key.
		{"duration/StringEquals 3600", cond(`{"StringEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3600"), Allow, []string{"p:Cond"}},
		{"duration/StringEquals other value", cond(`{"StringEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "900"), ImplicitDeny, nil},
		{"duration/StringEquals does not parse numbers", cond(`{"StringEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3600.0"), ImplicitDeny, nil},
		{"duration/NumericLessThanEquals below", cond(`{"NumericLessThanEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "900"), Allow, []string{"p:Cond"}},
		{"duration/NumericLessThanEquals equal", cond(`{"NumericLessThanEquals":{"redshift:DurationSeconds":3600}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3600"), Allow, []string{"p:Cond"}},
		{"duration/NumericLessThanEquals above", cond(`{"NumericLessThanEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3601"), ImplicitDeny, nil},
		{"duration/NumericEquals decimal forms", cond(`{"NumericEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3600.00"), Allow, []string{"p:Cond"}},
		{"duration/unparseable number is false", cond(`{"NumericLessThan":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "ten"), ImplicitDeny, nil},
		{"duration/unparseable number is false when negated", cond(`{"NumericNotEquals":{"redshift:DurationSeconds":"3600"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "ten"), ImplicitDeny, nil},
		{"duration/NumericNotEquals", cond(`{"NumericNotEquals":{"redshift:DurationSeconds":["900","1800"]}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3600"), Allow, []string{"p:Cond"}},
		{"duration/deny long sessions", denyCond(`{"NumericGreaterThan":{"redshift:DurationSeconds":"1800"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "3600"), ExplicitDeny, []string{"d:DenyCond"}},
		{"duration/deny spares short sessions", denyCond(`{"NumericGreaterThan":{"redshift:DurationSeconds":"1800"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "900"), Allow, []string{"admin:#0"}},
		{"duration/GreaterThanEquals and LessThan range", cond(`{"NumericGreaterThanEquals":{"redshift:DurationSeconds":"900"},"NumericLessThan":{"redshift:DurationSeconds":"1e3"}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "999.5"), Allow, []string{"p:Cond"}},

		// (6) Missing keys, with and without IfExists.
		{"missing/StringEquals is false", cond(`{"StringEquals":{"redshift:DbName":"dev"}}`), getCreds, anyRes, nil, ImplicitDeny, nil},
		{"missing/StringEqualsIfExists is true", cond(`{"StringEqualsIfExists":{"redshift:DbName":"dev"}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"missing/IfExists still checks a present key", cond(`{"StringEqualsIfExists":{"redshift:DbName":"dev"}}`), getCreds, anyRes, kv("redshift:DbName", "prod"), ImplicitDeny, nil},
		{"missing/negated operator is true", cond(`{"StringNotEquals":{"redshift:DbName":"prod"}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"missing/negated IfExists is true", cond(`{"StringNotEqualsIfExists":{"redshift:DbName":"prod"}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"missing/deny with negated IfExists still denies", denyCond(`{"StringNotEqualsIfExists":{"aws:PrincipalTag/team":"data"}}`), getCreds, anyRes, nil, ExplicitDeny, []string{"d:DenyCond"}},
		{"missing/NumericLessThanIfExists", cond(`{"NumericLessThanIfExists":{"redshift:DurationSeconds":"1800"}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"missing/NotIpAddress is true", cond(`{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"missing/empty value list is absent", cond(`{"StringEquals":{"redshift:DbName":"dev"}}`), getCreds, anyRes, map[string][]string{"redshift:DbName": {}}, ImplicitDeny, nil},

		// (7) Set qualifiers.
		{"set/ForAllValues with missing key is true", cond(`{"ForAllValues:StringEquals":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"set/ForAllValues with empty set is true", cond(`{"ForAllValues:StringEquals":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, map[string][]string{"redshift:DbGroups": {}}, Allow, []string{"p:Cond"}},
		{"set/ForAllValues with empty string is true", cond(`{"ForAllValues:StringEquals":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, kv("redshift:DbGroups", ""), Allow, []string{"p:Cond"}},
		{"set/ForAnyValue with missing key is false", cond(`{"ForAnyValue:StringEquals":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, nil, ImplicitDeny, nil},
		{"set/ForAnyValue with empty set is false", cond(`{"ForAnyValue:StringEquals":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, map[string][]string{"redshift:DbGroups": {}}, ImplicitDeny, nil},
		// ForAnyValue ignores IfExists in AWS: an Allow with
		// ForAnyValue:StringEqualsIfExists on aws:TagKeys does not allow
		// sqs:ListQueues, whose request has no aws:TagKeys (re:Post,
		// "ForAnyValue:StringEqualsIfExists behaving unexpectedly";
		// "ForAnyValue ... if there is no matching context key or the
		// dataset is null, the condition returns false"). So an attacker
		// cannot omit DbName to get past a ForAnyValue...IfExists on it.
		{"set/ForAnyValue IfExists with missing key does not allow", cond(`{"ForAnyValue:StringEqualsIfExists":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, nil, ImplicitDeny, nil},
		{"set/ForAnyValue IfExists omitted DbName does not allow", cond(`{"ForAnyValue:StringEqualsIfExists":{"redshift:DbName":["dev"]}}`), getCreds, anyRes, kv("redshift:DbUser", "alice"), ImplicitDeny, nil},
		{"set/ForAnyValue IfExists with empty set does not allow", cond(`{"ForAnyValue:StringEqualsIfExists":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, kv("redshift:DbGroups", ""), ImplicitDeny, nil},
		{"set/ForAnyValue IfExists present key still allows", cond(`{"ForAnyValue:StringEqualsIfExists":{"redshift:DbName":["dev"]}}`), getCreds, anyRes, kv("redshift:DbName", "dev"), Allow, []string{"p:Cond"}},
		// A Deny keeps IfExists' documented reading (a missing key is
		// true): it can only deny more than AWS.
		{"set/ForAnyValue IfExists with missing key still denies", denyCond(`{"ForAnyValue:StringNotEqualsIfExists":{"redshift:DbName":["dev"]}}`), getCreds, anyRes, nil, ExplicitDeny, []string{"d:DenyCond"}},
		{"set/ForAllValues IfExists with missing key is true", cond(`{"ForAllValues:StringEqualsIfExists":{"redshift:DbGroups":["common_group"]}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"set/ForAllValues subset", cond(`{"ForAllValues:StringLike":{"dynamodb:requestedAttributes":["PostDateTime","Message","Tags"]}}`), "dynamodb:GetItem", "arn:aws:dynamodb:us-west-2:123456789012:table/Thread",
			kv("dynamodb:requestedAttributes", "PostDateTime", "dynamodb:requestedAttributes", "Message"), Allow, []string{"p:Cond"}},
		{"set/ForAllValues not a subset", cond(`{"ForAllValues:StringLike":{"dynamodb:requestedAttributes":["PostDateTime","Message","Tags"]}}`), "dynamodb:GetItem", "arn:aws:dynamodb:us-west-2:123456789012:table/Thread",
			kv("dynamodb:requestedAttributes", "PostDateTime", "dynamodb:requestedAttributes", "UserName"), ImplicitDeny, nil},
		{"set/ForAnyValue deny on one forbidden attribute", denyCond(`{"ForAnyValue:StringLike":{"dynamodb:requestedAttributes":["ID","PostDateTime"]}}`), "dynamodb:PutItem", "arn:aws:dynamodb:us-west-2:123456789012:table/Thread",
			kv("dynamodb:requestedAttributes", "UserName", "dynamodb:requestedAttributes", "Message", "dynamodb:requestedAttributes", "PostDateTime"), ExplicitDeny, []string{"d:DenyCond"}},
		{"set/ForAnyValue deny spares allowed attributes", denyCond(`{"ForAnyValue:StringLike":{"dynamodb:requestedAttributes":["ID","PostDateTime"]}}`), "dynamodb:PutItem", "arn:aws:dynamodb:us-west-2:123456789012:table/Thread",
			kv("dynamodb:requestedAttributes", "UserName"), Allow, []string{"admin:#0"}},
		{"set/ForAllValues:StringNotLike deny matches other prefixes", denyCond(`{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}`), "iam:TagUser", "*", kv("aws:TagKeys", "key2:audit"), ExplicitDeny, []string{"d:DenyCond"}},
		{"set/ForAllValues:StringNotLike deny spares the prefix", denyCond(`{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}`), "iam:TagUser", "*", kv("aws:TagKeys", "key1:hr", "aws:TagKeys", "key1:personnel"), Allow, []string{"admin:#0"}},
		{"set/ForAllValues:StringNotLike deny matches a missing key", denyCond(`{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}`), "iam:TagUser", "*", nil, ExplicitDeny, []string{"d:DenyCond"}},
		{"set/ForAnyValue:StringNotEquals one value outside", cond(`{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}`), getCreds, anyRes, kv("aws:TagKeys", "a", "aws:TagKeys", "c"), Allow, []string{"p:Cond"}},
		{"set/ForAnyValue:StringNotEquals all values inside", cond(`{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}`), getCreds, anyRes, kv("aws:TagKeys", "a", "aws:TagKeys", "b"), ImplicitDeny, nil},
		{"set/unqualified multivalued key matches any value", cond(`{"StringEquals":{"aws:TagKeys":"b"}}`), getCreds, anyRes, kv("aws:TagKeys", "a", "aws:TagKeys", "b"), Allow, []string{"p:Cond"}},
		{"set/unqualified negated needs no value to match", cond(`{"StringNotEquals":{"aws:TagKeys":"b"}}`), getCreds, anyRes, kv("aws:TagKeys", "a", "aws:TagKeys", "b"), ImplicitDeny, nil},

		// Null.
		{"null/true and key absent", cond(`{"Null":{"aws:TokenIssueTime":"true"}}`), getCreds, anyRes, nil, Allow, []string{"p:Cond"}},
		{"null/true and key present", cond(`{"Null":{"aws:TokenIssueTime":true}}`), getCreds, anyRes, kv("aws:TokenIssueTime", "2026-01-01T00:00:00Z"), ImplicitDeny, nil},
		{"null/false and key present", cond(`{"Null":{"aws:PrincipalTag/team":"false"}}`), getCreds, anyRes, kv("aws:PrincipalTag/team", "data"), Allow, []string{"p:Cond"}},
		{"null/false and key absent", cond(`{"Null":{"aws:PrincipalTag/team":"false"}}`), getCreds, anyRes, nil, ImplicitDeny, nil},

		// Actions.
		{"action/wildcard Get*", one("p", allowRes("2012-10-17", "redshift:Get*", "*")), getCreds, anyRes, nil, Allow, []string{"p:Res"}},
		{"action/wildcard Get* excludes Describe", one("p", allowRes("2012-10-17", "redshift:Get*", "*")), "redshift:DescribeClusters", anyRes, nil, ImplicitDeny, nil},
		{"action/pattern case-insensitive", one("p", allowRes("2012-10-17", "REDSHIFT:getclustercredentials", "*")), getCreds, anyRes, nil, Allow, []string{"p:Res"}},
		{"action/request case-insensitive", one("p", allowRes("2012-10-17", getCreds, "*")), "REDSHIFT:GETCLUSTERCREDENTIALS", anyRes, nil, Allow, []string{"p:Res"}},
		{"action/question mark one character", one("p", allowRes("2012-10-17", "redshift:Get?lusterCredentials", "*")), getCreds, anyRes, nil, Allow, []string{"p:Res"}},
		{"action/question mark not two characters", one("p", allowRes("2012-10-17", "redshift:Get?Credentials", "*")), getCreds, anyRes, nil, ImplicitDeny, nil},
		{"action/star", one("p", allowRes("2012-10-17", "*", "*")), getCreds, anyRes, nil, Allow, []string{"p:Res"}},
		{"action/service prefix must match", one("p", allowRes("2012-10-17", "redshift:*", "*")), "redshift-serverless:GetCredentials", "*", nil, ImplicitDeny, nil},
		{"action/list", one("p", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["redshift:DescribeClusters","redshift:JoinGroup"],"Resource":"*"}}`), joinGroup, rsGroup + "g", nil, Allow, []string{"p:#0"}},
		{"action/NotAction allow covers others", one("p", `{"Version":"2012-10-17","Statement":{"Sid":"NotIAM","Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`), getCreds, anyRes, nil, Allow, []string{"p:NotIAM"}},
		{"action/NotAction allow excludes listed", one("p", `{"Version":"2012-10-17","Statement":{"Sid":"NotIAM","Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`), "iam:CreateUser", "arn:aws:iam::123456789012:user/x", nil, ImplicitDeny, nil},
		{"action/NotAction deny", []testPolicy{{"admin", adminAll}, {"d", `{"Version":"2012-10-17","Statement":{"Sid":"OnlyRedshift","Effect":"Deny","NotAction":"redshift:*","Resource":"*"}}`}},
			"s3:GetObject", "arn:aws:s3:::b/k", nil, ExplicitDeny, []string{"d:OnlyRedshift"}},

		// Resources.
		{"resource/case-sensitive", one("p", allowRes("2012-10-17", getCreds, rsUser+"Alice")), getCreds, rsUser + "alice", nil, ImplicitDeny, nil},
		{"resource/question mark", one("p", allowRes("2012-10-17", getCreds, rsUser+"user?")), getCreds, rsUser + "user1", nil, Allow, []string{"p:Res"}},
		{"resource/question mark is one character", one("p", allowRes("2012-10-17", getCreds, rsUser+"user?")), getCreds, rsUser + "user12", nil, ImplicitDeny, nil},
		{"resource/star ending a segment crosses colons", one("p", allowRes("2012-10-17", "someservice:Read", "arn:aws:someservice:*:111122223333:finance/*")),
			"someservice:Read", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt", nil, Allow, []string{"p:Res"}},
		{"resource/star inside a segment stays in it", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/a*z")),
			"s3:GetObject", "arn:aws:s3:::bucket/a:b:z", nil, ImplicitDeny, nil},
		{"resource/star inside a segment", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/a*z")),
			"s3:GetObject", "arn:aws:s3:::bucket/a/b/z", nil, Allow, []string{"p:Res"}},
		{"resource/escaped star is literal", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${*}")), "s3:GetObject", "arn:aws:s3:::bucket/x", nil, ImplicitDeny, nil},
		{"resource/escaped star matches a star", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${*}")), "s3:GetObject", "arn:aws:s3:::bucket/*", nil, Allow, []string{"p:Res"}},
		{"resource/escaped dollar and question mark", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${$}${?}")), "s3:GetObject", "arn:aws:s3:::bucket/$?", nil, Allow, []string{"p:Res"}},
		{"resource/default value used", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${aws:username, 'anonymous'}/*")), "s3:GetObject", "arn:aws:s3:::bucket/anonymous/x", nil, Allow, []string{"p:Res"}},
		{"resource/default value not used when present", one("p", allowRes("2012-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${aws:username, 'anonymous'}/*")), "s3:GetObject", "arn:aws:s3:::bucket/anonymous/x", kv("aws:username", "alice"), ImplicitDeny, nil},
		{"resource/variables literal in 2008-10-17", one("p", allowRes("2008-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${aws:username}")), "s3:GetObject", "arn:aws:s3:::bucket/${aws:username}", kv("aws:username", "alice"), Allow, []string{"p:Res"}},
		{"resource/variables not substituted in 2008-10-17", one("p", allowRes("2008-10-17", "s3:GetObject", "arn:aws:s3:::bucket/${aws:username}")), "s3:GetObject", "arn:aws:s3:::bucket/alice", kv("aws:username", "alice"), ImplicitDeny, nil},
		{"resource/variables not substituted without Version", one("p", allowRes("", "s3:GetObject", "arn:aws:s3:::bucket/${aws:username}")), "s3:GetObject", "arn:aws:s3:::bucket/alice", kv("aws:username", "alice"), ImplicitDeny, nil},
		{"resource/principal tag variable", one("p", allowRes("2012-10-17", joinGroup, rsGroup+"${aws:PrincipalTag/team}")), joinGroup, rsGroup + "analysts", kv("AWS:principaltag/TEAM", "analysts"), Allow, []string{"p:Res"}},
		{"resource/multivalued key is no variable", one("p", allowRes("2012-10-17", joinGroup, rsGroup+"${aws:PrincipalTag/team}")), joinGroup, rsGroup + "analysts", kv("aws:PrincipalTag/team", "analysts", "aws:PrincipalTag/team", "ops"), ImplicitDeny, nil},
		{"resource/missing variable matches nothing", one("p", allowRes("2012-10-17", getCreds, rsUser+"${aws:username}")), getCreds, rsUser, nil, ImplicitDeny, nil},

		// Deny beats Allow; order does not matter.
		{"precedence/deny overrides allow across policies", []testPolicy{{"admin", adminAll}, {"deny", `{"Version":"2012-10-17","Statement":{"Sid":"NoCreds","Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}}`}},
			getCreds, anyRes, nil, ExplicitDeny, []string{"deny:NoCreds"}},
		{"precedence/order does not matter", []testPolicy{{"deny", `{"Version":"2012-10-17","Statement":{"Sid":"NoCreds","Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}}`}, {"admin", adminAll}},
			getCreds, anyRes, nil, ExplicitDeny, []string{"deny:NoCreds"}},
		{"precedence/deny in the same policy", one("p", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"redshift:*","Resource":"*"},{"Sid":"D","Effect":"Deny","Action":"redshift:JoinGroup","Resource":"`+rsGroup+`admin"}]}`),
			joinGroup, rsGroup + "admin", nil, ExplicitDeny, []string{"p:D"}},
		{"precedence/deny elsewhere does not apply", one("p", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"redshift:*","Resource":"*"},{"Sid":"D","Effect":"Deny","Action":"redshift:JoinGroup","Resource":"`+rsGroup+`admin"}]}`),
			joinGroup, rsGroup + "common_group", nil, Allow, []string{"p:A"}},
		{"precedence/all matching allows are reported", []testPolicy{{"a", adminAll}, {"b", allowRes("2012-10-17", "redshift:*", "*")}},
			getCreds, anyRes, nil, Allow, []string{"a:#0", "b:Res"}},
		{"precedence/all matching denies are reported", []testPolicy{{"a", adminAll}, {"d1", denyIf(`{}`)}, {"d2", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"redshift:Get*","Resource":"*"}]}`}},
			getCreds, anyRes, nil, ExplicitDeny, []string{"d1:DenyCond", "d2:#1"}},
		{"precedence/no policies", nil, getCreds, anyRes, nil, ImplicitDeny, nil},
		{"precedence/deny whose condition fails", []testPolicy{{"admin", adminAll}, {"d", denyIf(`{"Bool":{"aws:SecureTransport":"false"}}`)}},
			getCreds, anyRes, kv("aws:SecureTransport", "true"), Allow, []string{"admin:#0"}},

		// String operators and variables in conditions.
		{"string/IgnoreCase", cond(`{"StringEqualsIgnoreCase":{"aws:username":"alice"}}`), getCreds, anyRes, kv("aws:username", "ALICE"), Allow, []string{"p:Cond"}},
		{"string/NotEqualsIgnoreCase", cond(`{"StringNotEqualsIgnoreCase":{"aws:username":"alice"}}`), getCreds, anyRes, kv("aws:username", "ALICE"), ImplicitDeny, nil},
		{"string/Equals is case-sensitive", cond(`{"StringEquals":{"aws:username":"alice"}}`), getCreds, anyRes, kv("aws:username", "ALICE"), ImplicitDeny, nil},
		{"string/Equals has no wildcards", cond(`{"StringEquals":{"aws:username":"a*"}}`), getCreds, anyRes, kv("aws:username", "alice"), ImplicitDeny, nil},
		{"string/Like", cond(`{"StringLike":{"aws:username":"a*"}}`), getCreds, anyRes, kv("aws:username", "alice"), Allow, []string{"p:Cond"}},
		{"string/NotLike", cond(`{"StringNotLike":{"aws:username":["a*","b*"]}}`), getCreds, anyRes, kv("aws:username", "bob"), ImplicitDeny, nil},
		{"string/Like with variable", cond(`{"StringLike":{"redshift:DbUser":"${aws:username}_*"}}`), getCreds, anyRes, kv("aws:username", "alice", "redshift:DbUser", "alice_etl"), Allow, []string{"p:Cond"}},
		{"string/Like with variable for another user", cond(`{"StringLike":{"redshift:DbUser":"${aws:username}_*"}}`), getCreds, anyRes, kv("aws:username", "alice", "redshift:DbUser", "bob_etl"), ImplicitDeny, nil},
		{"string/substituted star is literal", cond(`{"StringLike":{"redshift:DbUser":"${aws:username}"}}`), getCreds, anyRes, kv("aws:username", "*", "redshift:DbUser", "bob"), ImplicitDeny, nil},
		{"string/negated with missing variable fails safe in Allow", cond(`{"StringNotEquals":{"redshift:DbUser":"${aws:username}"}}`), getCreds, anyRes, kv("redshift:DbUser", "bob"), ImplicitDeny, nil},
		{"string/negated with missing variable denies in Deny", denyCond(`{"StringNotEquals":{"redshift:DbUser":"${aws:username}"}}`), getCreds, anyRes, kv("redshift:DbUser", "bob"), ExplicitDeny, []string{"d:DenyCond"}},
		{"string/positive with missing variable does not match", cond(`{"StringEquals":{"redshift:DbUser":"${aws:username}"}}`), getCreds, anyRes, kv("redshift:DbUser", "bob"), ImplicitDeny, nil},
		{"string/values are OR'ed", cond(`{"StringEquals":{"aws:username":["bob","alice"]}}`), getCreds, anyRes, kv("aws:username", "alice"), Allow, []string{"p:Cond"}},
		{"string/keys are AND'ed", cond(`{"StringEquals":{"aws:username":"alice","redshift:DbUser":"alice"}}`), getCreds, anyRes, kv("aws:username", "alice", "redshift:DbUser", "bob"), ImplicitDeny, nil},
		{"string/operators are AND'ed", cond(`{"StringEquals":{"aws:username":"alice"},"StringLike":{"redshift:DbUser":"a*"}}`), getCreds, anyRes, kv("aws:username", "alice", "redshift:DbUser", "alice"), Allow, []string{"p:Cond"}},
		{"string/number value compared as text", cond(`{"StringEquals":{"redshift:DurationSeconds":900}}`), getCreds, anyRes, kv("redshift:DurationSeconds", "900"), Allow, []string{"p:Cond"}},

		// Dates.
		{"date/LessThan ISO", cond(`{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`), getCreds, anyRes, kv("aws:CurrentTime", "2026-05-01T12:00:00Z"), Allow, []string{"p:Cond"}},
		{"date/LessThan ISO expired", cond(`{"DateLessThan":{"aws:CurrentTime":"2020-01-01"}}`), getCreds, anyRes, kv("aws:CurrentTime", "2026-05-01T12:00:00Z"), ImplicitDeny, nil},
		{"date/epoch against ISO", cond(`{"DateGreaterThan":{"aws:EpochTime":"2020-01-01T00:00:00Z"}}`), getCreds, anyRes, kv("aws:EpochTime", "1800000000"), Allow, []string{"p:Cond"}},
		{"date/epoch policy value", cond(`{"DateLessThanEquals":{"aws:CurrentTime":1577836800}}`), getCreds, anyRes, kv("aws:CurrentTime", "2020-01-01T00:00:00Z"), Allow, []string{"p:Cond"}},
		{"date/Equals across zones", cond(`{"DateEquals":{"aws:CurrentTime":"2020-01-01T01:00:00+01:00"}}`), getCreds, anyRes, kv("aws:CurrentTime", "2020-01-01T00:00:00Z"), Allow, []string{"p:Cond"}},
		{"date/NotEquals", cond(`{"DateNotEquals":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`), getCreds, anyRes, kv("aws:CurrentTime", "2020-01-01T00:00:01Z"), Allow, []string{"p:Cond"}},
		{"date/unparseable is false", cond(`{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`), getCreds, anyRes, kv("aws:CurrentTime", "yesterday"), ImplicitDeny, nil},

		// Booleans.
		{"bool/true", cond(`{"Bool":{"aws:SecureTransport":"true"}}`), getCreds, anyRes, kv("aws:SecureTransport", "true"), Allow, []string{"p:Cond"}},
		{"bool/JSON true and mixed case", cond(`{"Bool":{"aws:SecureTransport":true}}`), getCreds, anyRes, kv("aws:SecureTransport", "TRUE"), Allow, []string{"p:Cond"}},
		{"bool/false does not match true", cond(`{"Bool":{"aws:SecureTransport":"false"}}`), getCreds, anyRes, kv("aws:SecureTransport", "true"), ImplicitDeny, nil},
		{"bool/deny plain HTTP", denyCond(`{"Bool":{"aws:SecureTransport":"false"}}`), getCreds, anyRes, kv("aws:SecureTransport", "false"), ExplicitDeny, []string{"d:DenyCond"}},

		// IP addresses.
		{"ip/in range", cond(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), getCreds, anyRes, kv("aws:SourceIp", "203.0.113.7"), Allow, []string{"p:Cond"}},
		{"ip/out of range", cond(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), getCreds, anyRes, kv("aws:SourceIp", "198.51.100.1"), ImplicitDeny, nil},
		{"ip/single address", cond(`{"IpAddress":{"aws:SourceIp":"203.0.113.5"}}`), getCreds, anyRes, kv("aws:SourceIp", "203.0.113.5"), Allow, []string{"p:Cond"}},
		{"ip/IPv6 range", cond(`{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}}`), getCreds, anyRes, kv("aws:SourceIp", "2001:db8:1234:5678::1"), Allow, []string{"p:Cond"}},
		{"ip/IPv4-mapped request", cond(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), getCreds, anyRes, kv("aws:SourceIp", "::ffff:203.0.113.9"), Allow, []string{"p:Cond"}},
		{"ip/deny outside corporate range", denyCond(`{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.0/24"]}}`), getCreds, anyRes, kv("aws:SourceIp", "198.51.100.1"), ExplicitDeny, []string{"d:DenyCond"}},
		{"ip/deny spares corporate range", denyCond(`{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.0/24"]}}`), getCreds, anyRes, kv("aws:SourceIp", "10.1.2.3"), Allow, []string{"admin:#0"}},
		{"ip/unparseable request address is false", cond(`{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`), getCreds, anyRes, kv("aws:SourceIp", "localhost"), ImplicitDeny, nil},

		// Binary.
		{"binary/equals", cond(`{"BinaryEquals":{"test:blob":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`), getCreds, anyRes, kv("test:blob", "BinaryValueInBase64"), Allow, []string{"p:Cond"}},
		{"binary/differs", cond(`{"BinaryEquals":{"test:blob":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`), getCreds, anyRes, kv("test:blob", "OtherValue"), ImplicitDeny, nil},

		// ARNs.
		{"arn/Like", cond(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/*"}}`), getCreds, anyRes, kv("aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice"), Allow, []string{"p:Cond"}},
		{"arn/Equals takes wildcards too", cond(`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}`), getCreds, anyRes, kv("aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice"), Allow, []string{"p:Cond"}},
		{"arn/Like matches component by component", cond(`{"ArnLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}`), getCreds, anyRes,
			kv("aws:SourceArn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"), ImplicitDeny, nil},
		{"arn/StringLike crosses components", cond(`{"StringLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}`), getCreds, anyRes,
			kv("aws:SourceArn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"), Allow, []string{"p:Cond"}},
		{"arn/NotLike", cond(`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/*"}}`), getCreds, anyRes, kv("aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice"), Allow, []string{"p:Cond"}},
		{"arn/Like with variable", cond(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/${aws:username}"}}`), getCreds, anyRes,
			kv("aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice", "aws:username", "alice"), Allow, []string{"p:Cond"}},
	}
}

func notResDeny() []testPolicy {
	return []testPolicy{
		{"admin", adminAll},
		{"guard", `{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "DenyOtherClusters",
    "Effect": "Deny",
    "Action": "redshift:*",
    "NotResource": [
      "arn:aws:redshift:us-west-2:123456789012:dbuser:examplecluster/*",
      "arn:aws:redshift:us-west-2:123456789012:dbname:examplecluster/*"
    ]
  }]
}`},
	}
}

func refString(r StatementRef) string {
	if r.Sid != "" {
		return r.Policy + ":" + r.Sid
	}
	return fmt.Sprintf("%s:#%d", r.Policy, r.Index)
}

func TestEvaluate(t *testing.T) {
	cases := evalCases()
	if len(cases) < 80 {
		t.Fatalf("only %d evaluation cases", len(cases))
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			var pols []*Policy
			for _, tp := range tc.policies {
				p, err := ParsePolicy(tp.name, []byte(tp.doc))
				if err != nil {
					t.Fatalf("ParsePolicy(%s): %v", tp.name, err)
				}
				pols = append(pols, p)
			}
			req := Request{Action: tc.action, Resource: tc.resource, Context: tc.ctx}
			d := Evaluate(req, pols...)
			var got []string
			for _, r := range d.Deciding {
				got = append(got, refString(r))
			}
			if d.Outcome != tc.want || !slices.Equal(got, tc.deciding) {
				t.Errorf("Evaluate = %v %v, want %v %v", d.Outcome, got, tc.want, tc.deciding)
			}
			if d.Allowed() != (tc.want == Allow) {
				t.Errorf("Allowed() = %v for %v", d.Allowed(), d.Outcome)
			}
			for _, r := range d.Deciding {
				wantEffect := EffectAllow
				if d.Outcome == ExplicitDeny {
					wantEffect = EffectDeny
				}
				if r.Effect != wantEffect {
					t.Errorf("deciding statement %v has effect %s in a %v decision", r, r.Effect, d.Outcome)
				}
			}
			// Policy order never changes the outcome.
			slices.Reverse(pols)
			if r := Evaluate(req, pols...); r.Outcome != d.Outcome || len(r.Deciding) != len(d.Deciding) {
				t.Errorf("reversed policy order gives %v %v", r.Outcome, r.Deciding)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{ImplicitDeny: "implicitDeny", Allow: "allow", ExplicitDeny: "explicitDeny", 7: "Outcome(7)"} {
		if got := o.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestStatementOrderIndependent(t *testing.T) {
	a := `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"D","Effect":"Deny","Action":"redshift:*","Resource":"*"}]}`
	b := `{"Version":"2012-10-17","Statement":[{"Sid":"D","Effect":"Deny","Action":"redshift:*","Resource":"*"},{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}]}`
	for _, doc := range []string{a, b} {
		p, err := ParsePolicy("p", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		d := Evaluate(Request{Action: getCreds, Resource: rsUser + "x"}, p)
		if d.Outcome != ExplicitDeny || len(d.Deciding) != 1 || d.Deciding[0].Sid != "D" {
			t.Errorf("%s: %+v", doc, d)
		}
	}
}

func TestHandBuiltStatementNeverMatches(t *testing.T) {
	// Without ParsePolicy nothing is compiled; a NotAction statement must not
	// turn into "everything".
	p := &Policy{Name: "hand", Statements: []Statement{{Effect: EffectAllow, NotAction: []string{"iam:*"}, Resource: []string{"*"}}}}
	if d := Evaluate(Request{Action: getCreds, Resource: "*"}, p); d.Outcome != ImplicitDeny {
		t.Errorf("hand-built statement matched: %+v", d)
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	p, err := ParsePolicy("ss", []byte(selfService))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func(g int) {
			ok := true
			for i := 0; i < 200; i++ {
				user := fmt.Sprintf("user%d", (g+i)%5)
				d := Evaluate(Request{Action: getCreds, Resource: rsUser + user,
					Context: self(user, "AIDIODR4TAW7CSEXAMPLE:"+user+"@yourdomain.com")}, p)
				ok = ok && d.Allowed()
			}
			done <- ok
		}(g)
	}
	for g := 0; g < 8; g++ {
		if !<-done {
			t.Error("concurrent evaluation gave a wrong answer")
		}
	}
}

func TestContextKeysMergeCaseInsensitively(t *testing.T) {
	p, err := ParsePolicy("p", []byte(allowIf(`{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}`)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := map[string][]string{"aws:TagKeys": {"a"}, "AWS:TAGKEYS": {"c"}}
	if d := Evaluate(Request{Action: "x:y", Resource: "*", Context: ctx}, p); d.Allowed() {
		t.Errorf("keys differing in case were not merged: %+v", d)
	}
}
