package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// Session tags follow the STS Tag shape: a key of 1-128 characters of
// [\p{L}\p{Z}\p{N}_.:/=+\-@], a value of at most 256 of the same. Lengths
// are characters, not bytes.
func TestAssumeRoleSessionTagShape(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
	role := f.createRole(t, "tagged", trust, credsAllowed)
	c := f.stsClient(f.keys["admin"])
	assume := func(k, v string) error {
		_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("sess"),
			Tags: []ststypes.Tag{{Key: aws.String("ok"), Value: aws.String("1")}, {Key: aws.String(k), Value: aws.String(v)}}})
		return err
	}
	for _, bad := range [][2]string{{"a,b", "v"}, {"a;b", "v"}, {"team", "x*y"}, {"team", "a\"b"}} {
		err := assume(bad[0], bad[1])
		if apiCode(err) != "ValidationError" || httpStatus(err) != 400 || !strings.Contains(err.Error(), "at 'tags.2.member.") {
			t.Errorf("tag %q=%q: %v", bad[0], bad[1], err)
		}
	}
	// 128 and 256 characters of three bytes each: within AWS's limits.
	if err := assume(strings.Repeat("部", 128), strings.Repeat("門", 256)); err != nil {
		t.Errorf("non-ASCII tag at the limits: %v", err)
	}
	if err := assume("a_.:/=+-@ 1", "é _.:/=+-@"); err != nil {
		t.Errorf("tag with every allowed symbol: %v", err)
	}
	if err := assume(strings.Repeat("部", 129), "v"); apiCode(err) != "ValidationError" {
		t.Errorf("129-character key: %v", err)
	}
	if err := assume("k", strings.Repeat("門", 257)); apiCode(err) != "ValidationError" {
		t.Errorf("257-character value: %v", err)
	}
}
