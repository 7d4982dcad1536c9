package iamapi

import (
	"context"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
)

// Tags.

func (s *Service) tag(kind shiftkey.EntityKind, add bool) handler {
	verb := "Untag"
	if add {
		verb = "Tag"
	}
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		if !add {
			keys, err := p.tagKeys()
			if err != nil {
				return nil, err
			}
			e, err := s.entity(ctx, c, verb+kindTitle(kind), kind, owner, shiftkey.RequestTagKeys(nil, nil, keys...))
			if err != nil {
				return nil, err
			}
			return nil, s.Store.UntagEntity(ctx, kind, e.Name, keys)
		}
		tags, err := p.someTags()
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, verb+kindTitle(kind), kind, owner, shiftkey.RequestTagKeys(nil, tags))
		if err != nil {
			return nil, err
		}
		// The store counts the tags in its write (shiftkey.MaxTags).
		return nil, s.Store.TagEntity(ctx, kind, e.Name, tags)
	}
}

func (s *Service) listTags(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		e, err := s.owned(ctx, c, p, kind, "List"+kindTitle(kind)+"Tags")
		if err != nil {
			return nil, err
		}
		tags, err := s.Store.Tags(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		return tagPage(p, tags)
	}
}

// tagPage is a List*Tags answer: the tags in their order, paged by
// MaxItems and Marker (an offset: tags have no order of their own to key
// a marker by, and an owner has 50 at most).
func tagPage(p params, tags []shiftkey.Tag) (any, error) {
	pg, next, err := page(p, tags, nil)
	if err != nil {
		return nil, err
	}
	return struct {
		Tags []tagXML `xml:"Tags>member"`
		pageXML
	}{tagsXML(pg), next}, nil
}

// tagKeys reads UntagUser's, UntagRole's and UntagPolicy's TagKeys: 1-50
// keys, each of CheckTag's.
func (p params) tagKeys() ([]string, error) {
	keys, _, err := awsquery.List(p.v, "TagKeys", "member")
	if err != nil {
		return nil, shiftkey.Errorf(CodeValidationError, "%s", err.(*awsquery.Error).Message)
	}
	if len(keys) == 0 {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	if len(keys) > 50 {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, k := range keys {
		if err := CheckTag(k, ""); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// someTags reads the Tags of TagUser, TagRole and TagPolicy: at least one.
func (p params) someTags() ([]shiftkey.Tag, error) {
	tags, err := p.tags()
	if err == nil && len(tags) == 0 {
		err = shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	return tags, err
}

// Tags of customer-managed policies: kept by the store under kind
// KindPolicy and the policy's ARN, as a user's are under its name.

// authorizePolicy authorizes action on the managed policy arn, with the
// policy's tags as aws:ResourceTag/* (IAM's policy resource type has
// that key; iam:ResourceTag/* is users' and roles' only) besides keys. A
// policy that does not exist has no tags: the call's own read answers
// NoSuchEntity after the check, so that a caller without permission
// cannot probe which policies exist.
func (s *Service) authorizePolicy(ctx context.Context, c *shiftkey.Caller, action, arn string, keys map[string][]string) error {
	tags, err := s.Store.Tags(ctx, shiftkey.KindPolicy, arn)
	if err != nil {
		return err
	}
	return s.authorizeWith(ctx, c, action, arn, shiftkey.ResourceTagKeys(keys, tags))
}

// tagPolicy is TagPolicy (add) or UntagPolicy, authorized on the policy
// with the request's tag keys as TagUser and UntagUser are.
func (s *Service) tagPolicy(add bool) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		arn, err := p.policyARN()
		if err != nil {
			return nil, err
		}
		if !add {
			keys, err := p.tagKeys()
			if err != nil {
				return nil, err
			}
			if err := s.authorizePolicy(ctx, c, "UntagPolicy", arn, shiftkey.RequestTagKeys(nil, nil, keys...)); err != nil {
				return nil, err
			}
			// The store ignores the keys of a policy that is not there;
			// IAM answers NoSuchEntity.
			if _, err := s.Store.ManagedPolicy(ctx, arn); err != nil {
				return nil, err
			}
			return nil, s.Store.UntagEntity(ctx, shiftkey.KindPolicy, arn, keys)
		}
		tags, err := p.someTags()
		if err != nil {
			return nil, err
		}
		if err := s.authorizePolicy(ctx, c, "TagPolicy", arn, shiftkey.RequestTagKeys(nil, tags)); err != nil {
			return nil, err
		}
		// The store counts the tags in its write (shiftkey.MaxTags) and
		// answers NoSuchEntity for a policy that is not there.
		return nil, s.Store.TagEntity(ctx, shiftkey.KindPolicy, arn, tags)
	}
}

// listPolicyTags is ListPolicyTags: all the policy's tags (50 at most), as
// ListUserTags lists a user's.
func (s *Service) listPolicyTags(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	m, err := s.managedPolicy(ctx, c, p, "ListPolicyTags")
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, shiftkey.KindPolicy, m.ARN)
	if err != nil {
		return nil, err
	}
	return tagPage(p, tags)
}
