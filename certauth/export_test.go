package certauth

// SetMaxCached sets the cache bound until the returned function restores it.
func SetMaxCached(n int) (restore func()) {
	old := maxCached
	maxCached = n
	return func() { maxCached = old }
}

// CachedCount is how many certificates ca keeps.
func (ca *CA) CachedCount() int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.cache.order.Len()
}
