package http_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/iamapi"
	"github.com/shiftkey/shiftkey/sqlite"
)

// keyRace is the SQLite store with calls run between the first
// AccessKey read it answers and whatever the server reads next: another
// request's writes landing between the key's read and its user's.
type keyRace struct {
	*sqlite.DB
	between func()
}

func (s *keyRace) AccessKey(ctx context.Context, id string) (*shiftkey.AccessKey, error) {
	k, err := s.DB.AccessKey(ctx, id)
	if f := s.between; f != nil && err == nil {
		s.between = nil
		f()
	}
	return k, err
}

// A request signed with bob's key while bob is renamed robert and a new
// user bob created (UpdateUser, then CreateUser, landing between the
// server's read of the key and its read of the key's user) is robert's:
// the key is his. It was answered as the new bob (his id, ARN and
// policies), read by the name the key named a moment before.
func TestKeyOfARenamedUserIsNotTheNewUsers(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &keyRace{DB: db}
	az := &authz.Authorizer{Store: st}
	api := &shttp.Server{Identities: st, IAM: &iamapi.Service{Store: st, Authorizer: az, AccountID: account, Now: time.Now}, AccountID: account, Now: time.Now}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	defer api.WaitBackground()
	f := &fixture{store: db, srv: srv, keys: map[string]aws.Credentials{}}
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}`
	bobKey := f.addUser(t, "bob", allow)
	bob, _ := db.Entity(ctx, shiftkey.KindUser, "bob")
	st.between = func() {
		if err := db.RenameEntity(ctx, shiftkey.KindUser, bob, &shiftkey.Entity{Name: "robert", Path: "/", ARN: "arn:aws:iam::" + account + ":user/robert"}); err != nil {
			t.Error(err)
		}
		if err := db.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bob", ID: "AIDANEWBOB", Path: "/", ARN: "arn:aws:iam::" + account + ":user/bob", CreatedAt: time.Now()}); err != nil {
			t.Error(err)
		}
		db.PutInlinePolicy(ctx, shiftkey.KindUser, "bob", shiftkey.PolicyDocument{Name: "p", Document: allow})
	}
	out, err := f.iamClient(bobKey).GetUser(ctx, &iam.GetUserInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.User.UserId) != bob.ID || aws.ToString(out.User.Arn) != "arn:aws:iam::"+account+":user/robert" {
		t.Fatalf("bob's key, robert's since the rename, signed as %s (id %s); want robert (id %s)", aws.ToString(out.User.Arn), aws.ToString(out.User.UserId), bob.ID)
	}
}
