package compile

import (
	"encoding/json"

	"github.com/meshgate/meshgate/internal/ir"
)

// RouteRank is what decides a route's place in its list: its effective
// priority (0..1000, 1001 when unset), its match and its name.
type RouteRank struct {
	Priority int
	Match    *ir.Match
	Name     string
}

// Precedes reports whether route a is tried before route b. GatewayRoutes on
// one listener and the routes of one VirtualRouter are ordered the same way,
// and the first route that matches a request wins:
//
//  1. lower priority first (0 is tried first; an unset priority counts as
//     1001, after every route that has one);
//  2. then routes with an exact path, then a regex path, then a prefix, then
//     routes with no path criterion at all;
//  3. among prefixes, the longer prefix first;
//  4. then the route with more other criteria first, counting the hostname,
//     each header (or gRPC metadata entry), each query parameter, the method,
//     the scheme, the gRPC service name and the gRPC method name;
//  5. then by name ("namespace/name" for GatewayRoutes, the route name for
//     VirtualRouter routes), ascending.
//
// Priorities are App Mesh's own rule; steps 2-5 make ties deterministic and
// put the more specific route first, as App Mesh did before priorities
// existed ("longest prefix wins").
func Precedes(a, b RouteRank) bool {
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	pa, pb := pathRank(a.Match), pathRank(b.Match)
	if pa != pb {
		return pa < pb
	}
	if pa == rankPrefix && len(a.Match.Prefix) != len(b.Match.Prefix) {
		return len(a.Match.Prefix) > len(b.Match.Prefix)
	}
	ca, cb := criteria(a.Match), criteria(b.Match)
	if ca != cb {
		return ca > cb
	}
	return a.Name < b.Name
}

// order is Precedes as a comparison for sorting.
func order(a, b RouteRank) int {
	switch {
	case Precedes(a, b):
		return -1
	case Precedes(b, a):
		return 1
	}
	return 0
}

const (
	rankExact = iota
	rankRegex
	rankPrefix
	rankNone
)

func pathRank(m *ir.Match) int {
	switch {
	case m.PathExact != "":
		return rankExact
	case m.PathRegex != nil:
		return rankRegex
	case m.Prefix != "":
		return rankPrefix
	}
	return rankNone
}

// criteria counts the criteria of a match other than its path.
func criteria(m *ir.Match) int {
	n := len(m.Headers) + len(m.Query)
	for _, s := range []string{m.Method, m.Scheme, m.ServiceName, m.MethodName} {
		if s != "" {
			n++
		}
	}
	if m.Hostname != nil {
		n++
	}
	return n
}

// matchKey is equal for two matches that accept exactly the same requests as
// written (then the later route is never used). Keying a map by it finds
// such shadowed routes in one pass instead of comparing every pair.
func matchKey(kind string, m *ir.Match) string {
	j, _ := json.Marshal(m)
	return kind + "\x00" + string(j)
}
