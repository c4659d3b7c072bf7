package router

import "sort"

// indexMin is the group size from which a path index pays for itself.
const indexMin = 8

// pathIndex narrows a large group to the routes whose literal path criterion
// (prefix, exact path, gRPC service or method) can hold for a given path. Each
// such criterion is necessary for its route to match, so a route not offered
// by the index cannot match; the first full match in group order still wins.
type pathIndex struct {
	always []int32            // routes without a literal path criterion
	prefix map[string][]int32 // literal prefix → routes, ascending
	lens   []int              // distinct prefix lengths, ascending
	exact  map[string][]int32 // exact path → routes, ascending
}

func buildIndex(routes []*gatewayRoute) *pathIndex {
	if len(routes) < indexMin {
		return nil
	}
	x := &pathIndex{prefix: map[string][]int32{}, exact: map[string][]int32{}}
	seen := map[int]bool{}
	for i, r := range routes {
		pos := int32(i)
		m := &r.m
		switch {
		case m.pathExact != "":
			x.exact[m.pathExact] = append(x.exact[m.pathExact], pos)
		case m.grpcPath != "":
			x.exact[m.grpcPath] = append(x.exact[m.grpcPath], pos)
		case m.prefix != "" || m.grpcPrefix != "":
			// Both are necessary; the longer one is the sharper key.
			key := m.prefix
			if len(m.grpcPrefix) > len(key) {
				key = m.grpcPrefix
			}
			x.prefix[key] = append(x.prefix[key], pos)
			if !seen[len(key)] {
				seen[len(key)] = true
				x.lens = append(x.lens, len(key))
			}
		default:
			x.always = append(x.always, pos)
		}
	}
	sort.Ints(x.lens)
	return x
}

// first returns the position of the first route of the group that matches, or -1.
func (x *pathIndex) first(routes []*gatewayRoute, v *view) int {
	best := int32(len(routes))
	scan := func(list []int32) {
		for _, pos := range list {
			if pos >= best {
				return
			}
			if routes[pos].m.matches(v) {
				best = pos
				return
			}
		}
	}
	scan(x.always)
	path := v.path
	for _, n := range x.lens {
		if n > len(path) {
			break
		}
		if list, ok := x.prefix[path[:n]]; ok {
			scan(list)
		}
	}
	if list, ok := x.exact[path]; ok {
		scan(list)
	}
	if best == int32(len(routes)) {
		return -1
	}
	return int(best)
}
