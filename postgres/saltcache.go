package postgres

import (
	"strings"
	"sync"

	"github.com/shiftkey/shiftkey"
)

// saltCache remembers the salts LoginSalt returned, so that an issue for a
// login seen before makes no read. A login's salt never changes while it
// exists; only DeleteCluster removes salts, and every replica drops the
// cluster's entries when it hears of it (its own after the commit, the
// others' through the change feed). A reader notes the generation before
// reading and stores only if no drop happened meanwhile, so a read racing
// a delete cannot bring back a deleted salt. What remains is the feed's
// delay (milliseconds): an issue on this replica in that window after
// another replica deleted the cluster stores a credential under the old
// salt, as an issue that read the salt just before the delete would.
type saltCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]shiftkey.LoginSalt // by cluster + "\x00" + login
}

// saltCacheMax bounds memory under a flood of distinct logins; when full
// the cache is cleared.
const saltCacheMax = 100_000

func newSaltCache() *saltCache { return &saltCache{m: map[string]shiftkey.LoginSalt{}} }

func saltKey(cluster, login string) string { return cluster + "\x00" + login }

func (c *saltCache) get(k string) (shiftkey.LoginSalt, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[k]
	return s, ok, c.gen
}

func (c *saltCache) put(k string, s shiftkey.LoginSalt, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= saltCacheMax {
		clear(c.m)
	}
	c.m[k] = s
}

// dropCluster drops the salts of cluster; "" drops every salt.
func (c *saltCache) dropCluster(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if cluster == "" {
		clear(c.m)
		return
	}
	for k := range c.m {
		if strings.HasPrefix(k, cluster+"\x00") {
			delete(c.m, k)
		}
	}
}

// changed drops what another replica's change may have removed: a deleted
// cluster's salts, and everything when the feed was lost (the zero Change)
// or all credentials changed.
func (c *saltCache) changed(ch shiftkey.Change) {
	switch {
	case ch.Kind == shiftkey.KindCluster:
		c.dropCluster(ch.Name)
	case ch.Kind == "", ch.Kind == shiftkey.KindCredential && ch.Name == "":
		c.dropCluster("")
	}
}
