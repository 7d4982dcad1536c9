package storecache_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/storecache"
)

// heldReplica is replica B's PostgreSQL store with its change feed held:
// what other replicas commit reaches B's cache only when the test
// delivers it (B's LISTEN connection has not delivered it yet, as within
// the feed's delay). between runs once, right after the first access key
// B reads from the store: another replica's writes landing between B's
// read of a key and its next read.
type heldReplica struct {
	shiftkey.Store // hides the PostgreSQL store's own feed (Subscribe, Current)
	subs           []func(shiftkey.Change)
	between        func()
}

func (h *heldReplica) Subscribe(fn func(shiftkey.Change)) { h.subs = append(h.subs, fn) }

func (h *heldReplica) deliver(ch shiftkey.Change) {
	for _, fn := range h.subs {
		fn(ch)
	}
}

func (h *heldReplica) AccessKey(ctx context.Context, id string) (*shiftkey.AccessKey, error) {
	k, err := h.Store.AccessKey(ctx, id)
	if f := h.between; f != nil && err == nil {
		h.between = nil
		f()
	}
	return k, err
}

// Replicas A and B share a PostgreSQL store. bob signs a request to B;
// between B's read of his key and of its user, A renames bob robert and
// creates a new user bob, and B's feed has not yet delivered that. The
// request is robert's (the key is his), not the new bob's: B resolved the
// key, cached under the old name, to whoever has that name now.
func TestReplicaNeverResolvesARenamedUsersKeyToTheNewUserOfItsName(t *testing.T) {
	ctx := context.Background()
	s := pgtest.Server(t)
	url := s.ConnString(s.Superuser(), pgtest.NewDatabase(t))
	a, b := openReplica(t, url), openReplica(t, url)
	hb := &heldReplica{Store: b}
	cb := storecache.New(hb)
	if len(hb.subs) != 1 {
		t.Fatal("the cache did not subscribe to B's feed")
	}
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}`
	bobCreds, _ := addUser(t, a, "bob", allow)
	bob, err := a.Entity(ctx, shiftkey.KindUser, "bob")
	if err != nil {
		t.Fatal(err)
	}
	const newBob = "AIDANEWBOB"
	hb.between = func() {
		// On A, through its own cache (which drops and announces).
		ca := storecache.New(a)
		if err := ca.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "bob"},
			&shiftkey.Entity{Name: "robert", Path: "/", ARN: "arn:aws:iam::" + account + ":user/robert"}); err != nil {
			t.Error(err)
		}
		if err := ca.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: newBob, Path: "/",
			ARN: "arn:aws:iam::" + account + ":user/bob", CreatedAt: time.Now()}); err != nil {
			t.Error(err)
		}
		if err := ca.PutInlinePolicy(ctx, shiftkey.KindUser, "bob", shiftkey.PolicyDocument{Name: "p", Document: allow}); err != nil {
			t.Error(err)
		}
	}

	srv := iamServer(t, cb)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Retryer: func() aws.Retryer { return aws.NopRetryer{} },
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return bobCreds, nil })}
	getUser := func() *iam.GetUserOutput {
		t.Helper()
		out, err := iam.NewFromConfig(cfg).GetUser(ctx, &iam.GetUserInput{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	robertARN := "arn:aws:iam::" + account + ":user/robert"
	out := getUser()
	if hb.between != nil {
		t.Fatal("B never read the key from the store")
	}
	if id, arn := aws.ToString(out.User.UserId), aws.ToString(out.User.Arn); id != bob.ID || arn != robertARN {
		t.Fatalf("on B, bob's key (robert's since the rename on A) signed as %s (id %s); want %s (id %s)", arn, id, robertARN, bob.ID)
	}
	// And still so from B's memory, and once B's feed has delivered A's
	// changes.
	if out := getUser(); aws.ToString(out.User.UserId) != bob.ID {
		t.Fatalf("B answered bob's key from memory as id %s; want %s", aws.ToString(out.User.UserId), bob.ID)
	}
	hb.deliver(shiftkey.Change{Kind: shiftkey.KindUser, Name: "bob"})
	hb.deliver(shiftkey.Change{Kind: shiftkey.KindUser, Name: "robert"})
	if out := getUser(); aws.ToString(out.User.UserId) != bob.ID || aws.ToString(out.User.Arn) != robertARN {
		t.Fatalf("after B's feed delivered: bob's key signed as %s (id %s); want %s (id %s)", aws.ToString(out.User.Arn), aws.ToString(out.User.UserId), robertARN, bob.ID)
	}
}

// On replica B, which still holds bob's key from before A renamed bob
// robert and created a new bob (B's feed has not delivered it), the key is
// not the new bob's to delete, deactivate or look up: IAM's key calls take
// the key's user by its id. The key was deleted as the new bob's, the
// cached key naming "bob".
func TestReplicaNeverTakesARenamedUsersKeyForTheNewUsers(t *testing.T) {
	ctx := context.Background()
	s := pgtest.Server(t)
	url := s.ConnString(s.Superuser(), pgtest.NewDatabase(t))
	a, b := openReplica(t, url), openReplica(t, url)
	hb := &heldReplica{Store: b}
	cb := storecache.New(hb)
	adminCreds, _ := addUser(t, a, "admin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	_, bobKey := addUser(t, a, "bob", "")
	// B read bob's key (a request of bob's) before A's writes.
	if k, err := cb.AccessKey(ctx, bobKey); err != nil || k.UserName != "bob" {
		t.Fatal(k, err)
	}
	if err := a.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "bob"},
		&shiftkey.Entity{Name: "robert", Path: "/", ARN: "arn:aws:iam::" + account + ":user/robert"}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: "AIDANEWBOB", Path: "/",
		ARN: "arn:aws:iam::" + account + ":user/bob", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	srv := iamServer(t, cb)
	admin := iam.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Retryer: func() aws.Retryer { return aws.NopRetryer{} },
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return adminCreds, nil })})
	_, err := admin.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String(bobKey), Status: "Inactive"})
	if code := errorCode(err); code != "NoSuchEntity" {
		t.Errorf("on B, UpdateAccessKey of robert's key as the new bob's: %v; want NoSuchEntity", err)
	}
	_, err = admin.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String(bobKey)})
	if code := errorCode(err); code != "NoSuchEntity" {
		t.Errorf("on B, DeleteAccessKey of robert's key as the new bob's: %v; want NoSuchEntity", err)
	}
	k, err := a.AccessKey(ctx, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	if k.UserName != "robert" || k.Status != "Active" {
		t.Fatalf("robert's key after B's refusals: user %s, %s; want robert's, Active", k.UserName, k.Status)
	}
	last, err := admin.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(bobKey)})
	if err != nil || aws.ToString(last.UserName) != "robert" {
		t.Fatalf("on B, GetAccessKeyLastUsed of robert's key: %+v, %v; want robert's", last, err)
	}
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// iamServer serves the IAM API over st (replica B's cached store) on a
// real HTTP server, closed when the test ends.
func iamServer(t *testing.T, st *storecache.Store) *httptest.Server {
	api := &shttp.Server{Identities: st, IAM: &iamapi.Service{Store: st, Authorizer: &authz.Authorizer{Store: st}, AccountID: account, Now: time.Now},
		AccountID: account, Now: time.Now}
	t.Cleanup(api.WaitBackground)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}
