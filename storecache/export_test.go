package storecache

// SetAfterRead sets the hook run between a store read and its caching.
func SetAfterRead(c *Store, fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.afterRead = fn
}
