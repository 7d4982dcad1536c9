package storecache

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// SetPermissionsBoundary drops the IAM entries: the entity (and with it
// the boundary its principal is evaluated under) is cached there. A
// change of the boundary policy's default version is a KindPolicy write,
// which drops them too. BoundaryEntities is not cached.
func (c *Store) SetPermissionsBoundary(ctx context.Context, kind shiftkey.EntityKind, name, arn string) error {
	return c.after(c.Store.SetPermissionsBoundary(ctx, kind, name, arn), ch(kind, name))
}
