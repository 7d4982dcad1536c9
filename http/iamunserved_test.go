package http_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey"
)

// TestUnservedIAMAction: an IAM action shiftkey does not serve answers as
// AWS answers an unknown action (InvalidAction 400 in IAM's envelope, with
// its request id, "Could not find operation …"), and says that shiftkey
// does not serve it: the action exists in AWS, and AWS's words alone would
// send the user looking for a typo.
func TestUnservedIAMAction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.ListSSHPublicKeys(ctx, &iam.ListSSHPublicKeysInput{UserName: aws.String("admin")})
	if apiCode(err) != shiftkey.CodeInvalidAction || httpStatus(err) != 400 || !strings.Contains(err.Error(), "Could not find operation ListSSHPublicKeys for version 2010-05-08. shiftkey does not serve the IAM action ListSSHPublicKeys") {
		t.Fatalf("ListSSHPublicKeys: %v (status %d), want InvalidAction 400 saying shiftkey does not serve it", err, httpStatus(err))
	}
	var withID interface{ ServiceRequestID() string }
	if !errors.As(err, &withID) || withID.ServiceRequestID() == "" {
		t.Fatalf("no request id in %v", err)
	}
}
