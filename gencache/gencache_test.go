package gencache

import "testing"

// A read that started before a drop is not stored; one that started after
// is.
func TestPutAfterDropIsRefused(t *testing.T) {
	c := New[string, int](10)
	_, ok, gen := c.Get("a")
	if ok {
		t.Fatal("empty map has a")
	}
	c.Drop("b") // a write elsewhere, committed while "a" was being read
	c.Put("a", 1, gen)
	if _, ok, _ := c.Get("a"); ok {
		t.Fatal("a read older than a drop was stored")
	}
	_, _, gen = c.Get("a")
	c.Put("a", 1, gen)
	if v, ok, _ := c.Get("a"); !ok || v != 1 {
		t.Fatalf("a = %v %v, want 1", v, ok)
	}
}

func TestDropIf(t *testing.T) {
	c := New[int, int](10)
	for i := range 4 {
		_, _, gen := c.Get(i)
		c.Put(i, i, gen)
	}
	c.DropIf(func(k int) bool { return k%2 == 0 })
	for i := range 4 {
		if _, ok, _ := c.Get(i); ok != (i%2 == 1) {
			t.Errorf("key %d present %v after dropping the even keys", i, ok)
		}
	}
	c.DropIf(nil)
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries after dropping all", n)
	}
}

// A new key beyond the bound clears the map; an existing key is replaced.
func TestBound(t *testing.T) {
	c := New[int, int](3)
	for i := range 3 {
		_, _, gen := c.Get(i)
		c.Put(i, i, gen)
	}
	_, _, gen := c.Get(0)
	c.Put(0, 10, gen)
	if n := c.Len(); n != 3 {
		t.Fatalf("replacing a key changed the size to %d", n)
	}
	c.Put(3, 3, gen)
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries after a new key beyond the bound, want 1", n)
	}
}

// Update changes an existing entry, leaves a missing key missing, removes
// the entry when told, and is a write: a read older than it is not stored.
func TestUpdate(t *testing.T) {
	c := New[string, int](10)
	_, _, gen := c.Get("a")
	c.Put("a", 1, gen)
	_, _, stale := c.Get("b")
	c.Update("a", func(v int) (int, bool) { return v + 1, true })
	if v, ok, _ := c.Get("a"); !ok || v != 2 {
		t.Fatalf("a = %d, %v after Update, want 2", v, ok)
	}
	c.Put("b", 7, stale)
	if _, ok, _ := c.Get("b"); ok {
		t.Fatal("a read older than an Update was stored")
	}
	c.Update("z", func(v int) (int, bool) { t.Fatal("f ran for a missing key"); return v, true })
	if _, ok, _ := c.Get("z"); ok {
		t.Fatal("Update created a missing key")
	}
	c.Update("a", func(v int) (int, bool) { return v, false })
	if _, ok, _ := c.Get("a"); ok {
		t.Fatal("a is still there after Update removed it")
	}
}

// UpdateIf is a write to every matching entry: a read begun before it is
// not stored; f's keep false removes the entry.
func TestUpdateIf(t *testing.T) {
	c := New[int, int](10)
	for i := range 4 {
		_, _, gen := c.Get(i)
		c.Put(i, i, gen)
	}
	_, _, gen := c.Get(9)
	c.UpdateIf(func(k int) bool { return k >= 2 }, func(v int) (int, bool) { return v * 10, v == 2 })
	c.Put(9, 9, gen)
	for k, want := range map[int]int{0: 0, 1: 1, 2: 20, 3: -1, 9: -1} {
		v, ok, _ := c.Get(k)
		if (want < 0) == ok || (ok && v != want) {
			t.Errorf("key %d = %d present %v, want %d", k, v, ok, want)
		}
	}
}

// Replace is not a write: a read begun before it is still stored.
func TestReplaceKeepsGeneration(t *testing.T) {
	c := New[string, int](10)
	_, _, gen := c.Get("a")
	c.Put("a", 1, gen)
	_, _, gen = c.Get("b")
	c.Replace("a", func(v int) (int, bool) { return 2, v == 1 })
	c.Replace("a", func(v int) (int, bool) { return 3, v == 1 }) // no longer the entry it was made from
	c.Replace("x", func(int) (int, bool) { return 4, true })     // no entry: nothing stored
	c.Put("b", 5, gen)
	for k, want := range map[string]int{"a": 2, "b": 5, "x": 0} {
		if v, _, _ := c.Get(k); v != want {
			t.Errorf("%s = %d, want %d", k, v, want)
		}
	}
}
