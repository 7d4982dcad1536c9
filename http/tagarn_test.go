package http_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
)

// A tag call whose ResourceName is not a cluster ARN is answered with a
// code of the service model's tag operations, InvalidTagFault (400), which
// aws-sdk-go-v2 decodes as its typed error; an ARN of an unknown cluster is
// ResourceNotFoundFault (404).
func TestTagCallsOnABadResourceNameAreModelledErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.client("admin")
	calls := map[string]func(name string) error{
		"CreateTags": func(name string) error {
			_, err := rc.CreateTags(ctx, &redshift.CreateTagsInput{ResourceName: aws.String(name), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"DeleteTags": func(name string) error {
			_, err := rc.DeleteTags(ctx, &redshift.DeleteTagsInput{ResourceName: aws.String(name), TagKeys: []string{"k"}})
			return err
		},
		"DescribeTags": func(name string) error {
			_, err := rc.DescribeTags(ctx, &redshift.DescribeTagsInput{ResourceName: aws.String(name)})
			return err
		},
	}
	for op, call := range calls {
		for _, name := range []string{"dev-cluster", "arn:aws:redshift:us-east-1:" + account + ":dbuser:dev-cluster/alice"} {
			err := call(name)
			var invalid *types.InvalidTagFault
			if !errors.As(err, &invalid) || httpStatus(err) != 400 {
				t.Errorf("%s on ResourceName %q: %v (status %d), want the typed InvalidTagFault, 400", op, name, err, httpStatus(err))
			}
		}
		err := call("arn:aws:redshift:us-east-1:" + account + ":cluster:no-such-cluster")
		var nf *types.ResourceNotFoundFault
		if !errors.As(err, &nf) || httpStatus(err) != 404 {
			t.Errorf("%s on an unknown cluster's ARN: %v (status %d), want the typed ResourceNotFoundFault, 404", op, err, httpStatus(err))
		}
	}
}
