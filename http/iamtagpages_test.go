package http_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// ListUserTags, ListRoleTags and ListPolicyTags page by MaxItems and
// Marker, as IAM's do: a page holds at most MaxItems tags and says it is
// truncated, and the SDK's paginators put the pages back together in the
// tags' order. Before, every call answered all the tags in one page.
func TestTagListsPage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.iamClient(f.keys["admin"])
	var tags []types.Tag
	for i := range 5 {
		tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String(fmt.Sprintf("v%d", i))})
	}
	want := tagString(tags)
	_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("paged"), Tags: tags})
	mustOK(t, "CreateUser", err)
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Paged"), Tags: tags, AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}`)})
	mustOK(t, "CreateRole", err)
	p, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("paged"), Tags: tags, PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`)})
	mustOK(t, "CreatePolicy", err)

	type page struct {
		tags      []types.Tag
		truncated bool
		marker    *string
	}
	lists := map[string]func(marker *string) (page, error){
		"ListUserTags": func(m *string) (page, error) {
			o, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("paged"), MaxItems: aws.Int32(2), Marker: m})
			if err != nil {
				return page{}, err
			}
			return page{o.Tags, o.IsTruncated, o.Marker}, nil
		},
		"ListRoleTags": func(m *string) (page, error) {
			o, err := c.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String("Paged"), MaxItems: aws.Int32(2), Marker: m})
			if err != nil {
				return page{}, err
			}
			return page{o.Tags, o.IsTruncated, o.Marker}, nil
		},
		"ListPolicyTags": func(m *string) (page, error) {
			o, err := c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: p.Policy.Arn, MaxItems: aws.Int32(2), Marker: m})
			if err != nil {
				return page{}, err
			}
			return page{o.Tags, o.IsTruncated, o.Marker}, nil
		},
	}
	for name, list := range lists {
		var got []types.Tag
		var sizes []int
		var marker *string
		for range 10 {
			pg, err := list(marker)
			mustOK(t, name, err)
			got = append(got, pg.tags...)
			sizes = append(sizes, len(pg.tags))
			if !pg.truncated {
				break
			}
			marker = pg.marker
		}
		if tagString(got) != want || fmt.Sprint(sizes) != "[2 2 1]" {
			t.Errorf("%s with MaxItems 2: pages of %v holding %s; want pages of [2 2 1] holding %s", name, sizes, tagString(got), want)
		}
	}
}
