package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AssumeRole's inline session policy: "The plaintext ... can't exceed
// 2,048 characters. The JSON policy characters can be any ASCII character
// from the space character to the end of the valid character list (\u0020
// through \u00FF)", plus tab, line feed and carriage return.
func TestAssumeRoleSessionPolicyCharacters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	role := f.createRole(t, "scoped", trust, credsAllowed)
	c := f.stsClient(f.keys["admin"])
	assume := func(resource string) error {
		p := "{\"Version\":\"2012-10-17\",\r\n\t\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"arn:aws:s3:::" + resource + "\"}]}"
		_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("sess"), Policy: aws.String(p)})
		return err
	}
	// Outside \u00FF: refused as the parameter's pattern refuses it.
	if err := assume("bucket-部"); apiCode(err) != "ValidationError" || httpStatus(err) != 400 || !strings.Contains(err.Error(), "at 'policy'") {
		t.Errorf("policy with U+90E8: %v", err)
	}
	// 1,500 Latin-1 characters (3,000 bytes) within 2,048 characters: allowed.
	if err := assume(strings.Repeat("é", 1500)); err != nil {
		t.Errorf("policy of under 2,048 Latin-1 characters: %v", err)
	}
	// Over 2,048 characters: still refused.
	if err := assume(strings.Repeat("é", 2000)); apiCode(err) != "PackedPolicyTooLarge" {
		t.Errorf("policy over 2,048 characters: %v", err)
	}
}
