package iamapi

import (
	"context"
	"time"

	"github.com/shiftkey/shiftkey"
)

// AdministratorAccess allows every action on every resource.
const AdministratorAccess = `{"Version":"2012-10-17","Statement":[{"Sid":"DevAdministratorAccess","Effect":"Allow","Action":"*","Resource":"*"}]}`

// EnsureAdmin makes sure user name of account exists with the inline
// policy AdministratorAccess and an active access key, and returns that
// key. A user that exists keeps its policies; its first active key is
// returned, or a new one is made. This is how `shiftkey dev` gives its
// user a working key on every start.
func EnsureAdmin(ctx context.Context, st shiftkey.IdentityStore, account, name string, now time.Time) (*shiftkey.AccessKey, error) {
	_, err := st.Entity(ctx, shiftkey.KindUser, name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
		u := &shiftkey.Entity{
			Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/",
			ARN: "arn:aws:iam::" + account + ":user/" + name, CreatedAt: now,
		}
		if err := st.CreateEntity(ctx, u); err != nil {
			return nil, err
		}
		if err := st.PutInlinePolicy(ctx, shiftkey.KindUser, name, shiftkey.PolicyDocument{Name: "AdministratorAccess", Document: AdministratorAccess}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	keys, err := st.AccessKeys(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Status == "Active" {
			return k, nil
		}
	}
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: name, Status: "Active", CreatedAt: now}
	return k, st.CreateAccessKey(ctx, k)
}
