package gencache

import "testing"

func TestCache(t *testing.T) {
	var c Cache[int]
	steps := []struct {
		op   string // "put", "get", "rotate"
		key  string
		val  int
		want bool
	}{
		{op: "get", key: "a", want: false},
		{op: "put", key: "a", val: 1},
		{op: "get", key: "a", val: 1, want: true},
		{op: "rotate"},
		{op: "get", key: "a", val: 1, want: true}, // from the generation before, kept again
		{op: "put", key: "b", val: 2},
		{op: "rotate"},
		{op: "rotate"},
		{op: "get", key: "a", want: false}, // asked for by neither of the latest two
		{op: "get", key: "b", want: false},
	}
	for i, s := range steps {
		switch s.op {
		case "put":
			c.Put(s.key, s.val)
		case "rotate":
			c.Rotate()
		case "get":
			v, ok := c.Get(s.key)
			if ok != s.want || (ok && v != s.val) {
				t.Fatalf("step %d: Get(%q) = %d, %v; want %d, %v", i, s.key, v, ok, s.val, s.want)
			}
		}
	}
}
