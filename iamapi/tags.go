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
			e, err := s.entity(ctx, c, verb+kindTitle(kind), kind, owner, shiftkey.RequestTagKeys(nil, nil, keys...))
			if err != nil {
				return nil, err
			}
			return nil, s.Store.UntagEntity(ctx, kind, e.Name, keys)
		}
		tags, err := p.tags()
		if err != nil {
			return nil, err
		}
		if len(tags) == 0 {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
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
		return struct {
			Tags        []tagXML `xml:"Tags>member"`
			IsTruncated bool
		}{Tags: tagsXML(tags)}, nil
	}
}
