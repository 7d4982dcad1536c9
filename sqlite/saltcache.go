package sqlite

import (
	"sync"

	"github.com/shiftkey/shiftkey"
)

// saltCache remembers the salts LoginSalt returned. A login's salt never
// changes while it exists; only DeleteCluster removes salts, and it drops
// the cluster's entries after its commit. A reader notes the generation
// before reading and stores only if no drop happened meanwhile, so a read
// racing DeleteCluster cannot bring back a deleted salt.
type saltCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[loginKey]shiftkey.LoginSalt
}

// saltCacheMax bounds memory under a flood of distinct logins; when full
// the cache is cleared.
const saltCacheMax = 100_000

func newSaltCache() *saltCache { return &saltCache{m: map[loginKey]shiftkey.LoginSalt{}} }

func (c *saltCache) get(k loginKey) (shiftkey.LoginSalt, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[k]
	return s, ok, c.gen
}

func (c *saltCache) put(k loginKey, s shiftkey.LoginSalt, gen uint64) {
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

func (c *saltCache) dropCluster(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k := range c.m {
		if k.cluster == cluster {
			delete(c.m, k)
		}
	}
}
