// Package gencache keeps values computed from a config's strings (compiled
// regular expressions, their literals) for the next config, which mostly
// repeats them: a reload builds its config again from scratch, and at
// 10,000 routes computing them again costs it milliseconds.
//
// A Cache holds two generations: the values asked for since the latest
// Rotate, and those of the generation before, which a Get moves into the
// current one. A value no config asked for in the latest two generations is
// forgotten, so the cache holds what the configs in use need and no more.
package gencache

import "sync"

// Cache maps strings to values of type V across the latest two
// generations. It is safe for concurrent use. Values are shared by every
// caller that gets them: they must not change once put.
type Cache[V any] struct {
	mu        sync.Mutex
	cur, prev map[string]V
}

// Rotate starts a new generation: what the one before the latest asked for
// is forgotten.
func (c *Cache[V]) Rotate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev, c.cur = c.cur, nil
}

// Get returns the value of key from the latest two generations.
func (c *Cache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[key]; ok {
		return v, true
	}
	v, ok := c.prev[key]
	if ok {
		c.putLocked(key, v)
	}
	return v, ok
}

// Put records the value of key in the current generation.
func (c *Cache[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, v)
}

func (c *Cache[V]) putLocked(key string, v V) {
	if c.cur == nil {
		c.cur = map[string]V{}
	}
	c.cur[key] = v
}
