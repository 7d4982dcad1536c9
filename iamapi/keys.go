package iamapi

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

type accessKeyXML struct {
	UserName        string
	AccessKeyId     string
	Status          string
	SecretAccessKey string `xml:",omitempty"`
	CreateDate      string
}

func (s *Service) createAccessKey(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	u, err := s.userOrCaller(ctx, c, p, "CreateAccessKey")
	if err != nil {
		return nil, err
	}
	// The store enforces the per-user quota in the same write.
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: u.Name, Status: "Active", CreatedAt: s.now()}
	if err := s.Store.CreateAccessKey(ctx, k); err != nil {
		return nil, err
	}
	return struct{ AccessKey accessKeyXML }{accessKeyXML{u.Name, k.ID, k.Status, k.Secret, isoTime(k.CreatedAt)}}, nil
}

func (s *Service) listAccessKeys(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	u, err := s.userOrCaller(ctx, c, p, "ListAccessKeys")
	if err != nil {
		return nil, err
	}
	keys, err := s.Store.AccessKeys(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	keys, pg, err := page(p, keys, nil) // a user has two keys at most
	if err != nil {
		return nil, err
	}
	return struct {
		UserName          string
		AccessKeyMetadata []accessKeyXML `xml:"AccessKeyMetadata>member"`
		pageXML
	}{u.Name, each(keys, func(k *shiftkey.AccessKey) accessKeyXML {
		return accessKeyXML{UserName: u.Name, AccessKeyId: k.ID, Status: k.Status, CreateDate: isoTime(k.CreatedAt)}
	}), pg}, nil
}

// ownedKey checks that the key exists and belongs to the user: by the
// user's id, which a key records, so that a renamed user's key is never
// taken for the key of a user created again under the old name (a cache
// may hold the key as read before the rename).
func (s *Service) ownedKey(ctx context.Context, u *shiftkey.Entity, id string) error {
	k, err := s.Store.AccessKey(ctx, id)
	if err != nil {
		return err
	}
	if k.UserID != u.ID {
		return shiftkey.NoSuchAccessKey(id)
	}
	return nil
}

func (s *Service) updateAccessKey(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	id, err := p.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	status, err := p.required("Status")
	if err != nil {
		return nil, err
	}
	if status != "Active" && status != "Inactive" {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", status)
	}
	u, err := s.userOrCaller(ctx, c, p, "UpdateAccessKey")
	if err != nil {
		return nil, err
	}
	if err := s.ownedKey(ctx, u, id); err != nil {
		return nil, err
	}
	return nil, s.Store.UpdateAccessKey(ctx, id, status)
}

func (s *Service) deleteAccessKey(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	id, err := p.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	u, err := s.userOrCaller(ctx, c, p, "DeleteAccessKey")
	if err != nil {
		return nil, err
	}
	if err := s.ownedKey(ctx, u, id); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteAccessKey(ctx, id)
}

// getAccessKeyLastUsed answers when, for which service and in which region
// a key last signed a request, as the API recorded it (to the
// shiftkey.KeyUseInterval); "N/A" for a key not used since it was made.
// It is authorized on the key's user; an unknown key is NoSuchEntity to a
// caller allowed the action on every user, AccessDenied to others, so that
// key ids cannot be probed.
func (s *Service) getAccessKeyLastUsed(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	id, err := p.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	k, err := s.Store.AccessKey(ctx, id)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
		if aerr := s.authorize(ctx, c, "GetAccessKeyLastUsed", s.arn(shiftkey.KindUser, "/", "*")); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	// The key's user by its id (a cached key may carry a name the user no
	// longer has), authorized under its name now.
	owner, err := s.Store.EntityByID(ctx, shiftkey.KindUser, k.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.entity(ctx, c, "GetAccessKeyLastUsed", shiftkey.KindUser, owner.Name)
	if err != nil {
		return nil, err
	}
	if u.ID != k.UserID {
		// Renamed, and its name taken, between the two reads.
		return nil, shiftkey.Errorf(shiftkey.CodeConcurrentModification, "The user of access key %s changed while the request was processed. Please retry.", k.ID)
	}
	type lastUsed struct {
		LastUsedDate string `xml:",omitempty"`
		ServiceName  string
		Region       string
	}
	used := lastUsed{ServiceName: "N/A", Region: "N/A"}
	if !k.LastUsed.IsZero() {
		used = lastUsed{isoTime(k.LastUsed), k.LastUsedService, k.LastUsedRegion}
	}
	return struct {
		UserName          string
		AccessKeyLastUsed lastUsed
	}{u.Name, used}, nil
}
