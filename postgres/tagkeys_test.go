package postgres_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
)

// Found in a review by attack (2026-12-06, review-authz), end to end over
// the API on the Postgres store: a Deny that protects a tag key
// (ForAnyValue:StringEqualsIgnoreCase aws:TagKeys: IAM tag keys are one
// key in any letter case, so a case-sensitive StringEquals would miss
// "QUARANTINED", in AWS as here) held for the key in any case but not
// for the same key in full-width letters,
// which the store's ICU collation took for it: UntagUser removed
// "quarantined" and TagUser replaced it. See storetest's
// TagKeysFoldOnlyCase for the store's side.
func TestProtectedTagKeyCannotBeChangedThroughLookalikes(t *testing.T) {
	ctx := context.Background()
	db := open(t, newURL(t))
	const account = shiftkey.DefaultAccountID
	users := map[string]string{
		"admin": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		"kai": `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iam:TagUser","iam:UntagUser","iam:ListUserTags"],"Resource":"arn:aws:iam::` + account + `:user/${aws:username}"},
			{"Effect":"Deny","Action":["iam:TagUser","iam:UntagUser"],"Resource":"*",
			 "Condition":{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["quarantined"]}}}]}`,
	}
	keys := map[string]aws.Credentials{}
	for name, policy := range users {
		u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::" + account + ":user/" + name, CreatedAt: time.Now()}
		k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: name, Status: "Active", CreatedAt: time.Now()}
		for _, err := range []error{db.CreateEntity(ctx, u), db.CreateAccessKey(ctx, k),
			db.PutInlinePolicy(ctx, shiftkey.KindUser, name, shiftkey.PolicyDocument{Name: "p", Document: policy})} {
			if err != nil {
				t.Fatal(err)
			}
		}
		keys[name] = aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
	}
	authorizer := &authz.Authorizer{Store: db}
	api := &shttp.Server{Identities: db, IAM: &iamapi.Service{Store: db, Authorizer: authorizer, AccountID: account}, AccountID: account}
	t.Cleanup(api.WaitBackground) // before the store closes
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	client := func(user string) *iam.Client {
		c := keys[user]
		return iam.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil }),
			Retryer:     func() aws.Retryer { return aws.NopRetryer{} }})
	}
	_, err := client("admin").TagUser(ctx, &iam.TagUserInput{UserName: aws.String("kai"),
		Tags: []iamtypes.Tag{{Key: aws.String("quarantined"), Value: aws.String("true")}}})
	if err != nil {
		t.Fatal(err)
	}
	kai := client("kai")
	denied := func(what string, err error) {
		t.Helper()
		if api, ok := errors.AsType[smithy.APIError](err); !ok || api.ErrorCode() != "AccessDenied" {
			t.Fatalf("%s: got %v, want AccessDenied", what, err)
		}
	}
	_, err = kai.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("kai"), TagKeys: []string{"quarantined"}})
	denied("UntagUser quarantined", err)
	// Look-alikes of the key are other keys: the Deny does not name them,
	// and they must leave "quarantined" alone. One with a soft hyphen
	// (U+00AD, a format character) is not a tag key at all: refused, as
	// IAM's tagKeyType refuses it.
	_, err = kai.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("kai"), TagKeys: []string{"ｑｕａｒａｎｔｉｎｅｄ"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kai.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("kai"), TagKeys: []string{"quarantin\u00aded"}})
	if api, ok := errors.AsType[smithy.APIError](err); !ok || api.ErrorCode() != "ValidationError" {
		t.Fatalf("UntagUser with a soft hyphen in the key: %v, want ValidationError", err)
	}
	_, err = kai.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("kai"), Tags: []iamtypes.Tag{{Key: aws.String("ＱＵＡＲＡＮＴＩＮＥＤ"), Value: aws.String("false")}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := kai.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("kai")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range out.Tags {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if got["quarantined"] != "true" {
		t.Fatalf("kai's tags are %q: the protected tag quarantined=true is gone", got)
	}
}
