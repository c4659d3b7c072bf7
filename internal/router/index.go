package router

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/gencache"
)

// indexMin is the group size from which a path index pays for itself.
const indexMin = 8

// pathIndex narrows a large group to the routes that can match a path.
//
// Every route gets a path key, a literal criterion it cannot match without:
// its exact path, gRPC method path, or the single path its regex accepts;
// else the longest of its prefix, gRPC service prefix and its regex's
// literal prefix, or, when longer, its regex's literal suffix or gRPC
// method suffix (regexLiteral). Keys go in tries, so one walk along the path
// (from each end) finds the routes of the key equal to it and of every key
// it starts or ends with, in time bounded by the path's length; routes
// without a key are always tried. Each key's routes form a bucket in group
// order, split further when many of them need an exact header, query
// parameter or method value (bucket).
//
// A route the index does not offer cannot match, and each bucket is tried
// only below the best position found so far, so the result is the first
// matching route in group order whatever order the buckets are visited in.
type pathIndex struct {
	always   bucket   // routes without a path key
	keys     trie     // literal prefixes and exact paths
	suffixes trie     // literal suffixes, reversed
	buckets  []bucket // payloads of keys
}

type keyKind uint8

const (
	keyNone keyKind = iota
	keyPrefix
	keyExact
	keySuffix
)

// pathKeys returns a route's exact path key, or else the literal its path
// must start with and the one it must end with ("" for none); lit
// describes its path regex, if any.
func pathKeys(m *matcher, lit regexLit) (exact, prefix, suffix string) {
	switch {
	case m.pathExact != "":
		return m.pathExact, "", ""
	case m.grpcPath != "":
		return m.grpcPath, "", ""
	case lit.complete:
		return lit.prefix, "", ""
	}
	for _, k := range []string{m.prefix, m.grpcPrefix, lit.prefix} {
		if len(k) > len(prefix) {
			prefix = k
		}
	}
	suffix = lit.suffix
	if len(m.grpcMethod) > len(suffix) {
		suffix = m.grpcMethod
	}
	return "", prefix, suffix
}

// regexLit is what a route regex says about the literal text of the paths
// it accepts: every one begins with prefix and ends with suffix, and, when
// complete, is prefix.
type regexLit struct {
	prefix, suffix string
	complete       bool
}

// regexLiterals holds the literals of the expressions of the latest two
// tables built. Expressions are parsed again for their literals alone; a
// reload builds a table of mostly the same ones, and many routes of a large
// table tend to repeat one.
var regexLiterals gencache.Cache[regexLit]

// cachedLiteral is regexLiteral(src), from regexLiterals when it is there.
func cachedLiteral(src string) regexLit {
	if l, ok := regexLiterals.Get(src); ok {
		return l
	}
	l := regexLiteral(src)
	regexLiterals.Put(src, l)
	return l
}

// regexLiteral reads the expression as ir.CompileRegexp anchors it, so it
// describes the whole path matched; when the anchors do not bind the whole
// expression (a source like "a)|(b") it claims nothing.
func regexLiteral(src string) regexLit {
	re, err := syntax.Parse(`^(?:`+src+`)$`, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) < 2 ||
		re.Sub[0].Op != syntax.OpBeginText || re.Sub[len(re.Sub)-1].Op != syntax.OpEndText {
		return regexLit{}
	}
	var l regexLit
	l.prefix, l.complete = literalOf(re, false)
	l.suffix, _ = literalOf(re, true)
	return l
}

// literalOf returns a string every string re matches begins with (with
// fromEnd, ends with), and whether re matches no other string.
func literalOf(re *syntax.Regexp, fromEnd bool) (string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return "", true
	case syntax.OpLiteral:
		runes := re.Rune
		for i, r := range runes {
			if fromEnd {
				r = runes[len(runes)-1-i]
			}
			// U+FFFD also matches any invalid byte, and a rune with other
			// cases matches them too under (?i).
			if r == utf8.RuneError || re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				if fromEnd {
					return string(runes[len(runes)-i:]), false
				}
				return string(runes[:i]), false
			}
		}
		return string(runes), true
	case syntax.OpCapture:
		return literalOf(re.Sub[0], fromEnd)
	case syntax.OpConcat:
		lit := ""
		for i := range re.Sub {
			sub := re.Sub[i]
			if fromEnd {
				sub = re.Sub[len(re.Sub)-1-i]
			}
			l, complete := literalOf(sub, fromEnd)
			if fromEnd {
				lit = l + lit
			} else {
				lit += l
			}
			if !complete {
				return lit, false
			}
		}
		return lit, true
	case syntax.OpPlus:
		lit, _ := literalOf(re.Sub[0], fromEnd)
		return lit, false
	case syntax.OpRepeat:
		if re.Min < 1 {
			return "", false
		}
		lit, complete := literalOf(re.Sub[0], fromEnd)
		return lit, complete && re.Max == 1
	case syntax.OpAlternate:
		lit, complete := literalOf(re.Sub[0], fromEnd)
		for _, sub := range re.Sub[1:] {
			l, c := literalOf(sub, fromEnd)
			if !c || l != lit {
				complete = false
			}
			n := 0
			if fromEnd {
				for n < len(l) && n < len(lit) && l[len(l)-1-n] == lit[len(lit)-1-n] {
					n++
				}
				lit = lit[len(lit)-n:]
			} else {
				for n < len(l) && n < len(lit) && l[n] == lit[n] {
					n++
				}
				lit = lit[:n]
			}
		}
		return lit, complete
	}
	return "", false
}

func buildIndex(routes []*gatewayRoute) *pathIndex {
	if len(routes) < indexMin {
		return nil
	}
	// A route with both a prefix and a suffix is filed under the one fewer
	// routes share, which leaves fewer routes to try for a path that has it.
	type keyID struct {
		s    string
		kind keyKind
	}
	type keyInfo struct {
		keyID
		shared int32 // routes that have the key
		list   int32 // the list of the routes filed under it; 0 for none yet
	}
	var keys []keyInfo
	index := make(map[keyID]int32, len(routes))
	key := func(s string, kind keyKind) int32 {
		if s == "" {
			return -1
		}
		id := keyID{s, kind}
		k, ok := index[id]
		if !ok {
			k = int32(len(keys))
			index[id] = k
			keys = append(keys, keyInfo{keyID: id})
		}
		keys[k].shared++
		return k
	}
	type choice struct{ exact, prefix, suffix int32 }
	choices := make([]choice, len(routes))
	for i, r := range routes {
		var lit regexLit
		if re := r.m.pathRegex; re != nil {
			lit = cachedLiteral(re.Source)
		}
		exact, prefix, suffix := pathKeys(&r.m, lit)
		choices[i] = choice{key(exact, keyExact), key(prefix, keyPrefix), key(suffix, keySuffix)}
	}
	// Routes are put in one list per key; the lists are counted first, then
	// laid out in one array. List 0 is the routes without a key.
	lists := []int32{-1} // list → key
	count := []int32{0}
	listOf := make([]int32, len(routes))
	for i, c := range choices {
		k := c.exact
		switch {
		case k >= 0:
		case c.suffix < 0:
			k = c.prefix
		case c.prefix < 0:
			k = c.suffix
		default:
			p, s := &keys[c.prefix], &keys[c.suffix]
			k = c.prefix
			if s.shared < p.shared || s.shared == p.shared && len(s.s) > len(p.s) {
				k = c.suffix
			}
		}
		if k >= 0 && keys[k].list == 0 {
			keys[k].list = int32(len(lists))
			lists = append(lists, k)
			count = append(count, 0)
		}
		if k >= 0 {
			listOf[i] = keys[k].list
		}
		count[listOf[i]]++
	}
	start := make([]int32, len(count)+1)
	for j, n := range count {
		start[j+1] = start[j] + n
	}
	arena := make([]int32, len(routes))
	next := slices.Clone(start[:len(count)])
	for i, id := range listOf {
		arena[next[id]] = int32(i)
		next[id]++
	}
	list := func(id int) []int32 { return arena[start[id]:start[id+1]:start[id+1]] }
	x := &pathIndex{always: newBucket(routes, list(0), 0), buckets: make([]bucket, 0, len(lists)-1)}
	var pathKeys, suffixKeys []trieKey
	for id := 1; id < len(lists); id++ {
		k := &keys[lists[id]]
		b := int32(len(x.buckets))
		x.buckets = append(x.buckets, newBucket(routes, list(id), 0))
		switch k.kind {
		case keySuffix:
			suffixKeys = append(suffixKeys, trieKey{s: reverse(k.s), val: b, exact: -1})
		case keyExact:
			pathKeys = append(pathKeys, trieKey{s: k.s, val: -1, exact: b})
		default:
			pathKeys = append(pathKeys, trieKey{s: k.s, val: b, exact: -1})
		}
	}
	x.keys = buildTrie(pathKeys)
	x.suffixes = buildTrie(suffixKeys)
	return x
}

// first returns the position of the first route of the group that matches, or -1.
func (x *pathIndex) first(routes []*gatewayRoute, v *view) int {
	none := int32(len(routes))
	best := none
	deepest, exact := x.keys.prefixes(v.path)
	// Exact paths and longer prefixes tend to rank first, so visiting them
	// first lets the shorter lists stop early.
	if exact >= 0 {
		best = x.buckets[x.keys.nodes[exact].exact].first(routes, v, best)
	}
	for n := deepest; n >= 0; n = x.keys.nodes[n].up {
		best = x.buckets[x.keys.nodes[n].val].first(routes, v, best)
	}
	for n := x.suffixes.suffixes(v.path, false, false); n >= 0; n = x.suffixes.nodes[n].up {
		best = x.buckets[x.suffixes.nodes[n].val].first(routes, v, best)
	}
	best = x.always.first(routes, v, best)
	if best == none {
		return -1
	}
	return int(best)
}

// bucket is a candidate list in group order. When it is long and many of
// its routes require an exact value of one request attribute (method, a
// header, a query parameter), those routes are split off by that value, so a
// request only tries the ones wanting the value it has.
type bucket struct {
	pos   []int32 // without split: the routes, tried in order
	split *split
}

type split struct {
	lo   int32 // the lowest position in the split
	d    discriminator
	by   map[string]*bucket
	rest bucket // the routes that do not require a value of d
}

// splitMin is the list length from which splitting is considered, and
// splitDepth bounds how many attributes a list is split by in turn.
const (
	splitMin   = 8
	splitDepth = 4
)

// first returns the lowest position below best of a route in b that
// matches, or best.
func (b *bucket) first(routes []*gatewayRoute, v *view, best int32) int32 {
	if s := b.split; s != nil {
		if s.lo >= best {
			return best // not worth reading the attribute
		}
		if val, ok := s.d.value(v); ok {
			if sub := s.by[val]; sub != nil {
				best = sub.first(routes, v, best)
			}
		}
		return s.rest.first(routes, v, best)
	}
	for _, pos := range b.pos {
		if pos >= best {
			break
		}
		if routes[pos].m.matches(v) {
			return pos
		}
	}
	return best
}

type discKind uint8

const (
	discMethod discKind = iota
	discHeader
	discQuery
)

// discriminator is a request attribute some routes need an exact value of.
type discriminator struct {
	kind discKind
	id   string        // identifies the attribute while building
	h    headerMatcher // discHeader: how to read the header
	name string        // discQuery: the parameter
}

func (d *discriminator) value(v *view) (string, bool) {
	switch d.kind {
	case discMethod:
		return v.method, true
	case discHeader:
		return d.h.lookup(v)
	}
	return queryValue(v.rawQuery, d.name)
}

// discriminators lists the attributes m needs an exact value of, with the
// value. Each is necessary for m to match: the method; a header compared
// exactly and not inverted (absent never matches); a query parameter with an
// exact value (its first value is compared). ":path" is left out because
// reading it can allocate.
func discriminators(m *matcher, yield func(d discriminator, val string)) {
	if m.method != "" {
		yield(discriminator{kind: discMethod, id: "method"}, m.method)
	}
	for i := range m.headers {
		h := &m.headers[i]
		if h.kind != headerExact || h.invert || h.pseudo == pseudoPath {
			continue
		}
		id := "header " + h.key
		if h.pseudo != notPseudo {
			id = "pseudo " + string(rune('0'+h.pseudo))
		}
		yield(discriminator{kind: discHeader, id: id, h: headerMatcher{name: h.name, key: h.key, pseudo: h.pseudo}}, h.value)
	}
	for i := range m.query {
		if q := &m.query[i]; q.exact != nil {
			yield(discriminator{kind: discQuery, id: "query " + q.name, name: q.name}, *q.exact)
		}
	}
}

// newBucket makes the candidate list of pos (ascending), split while that
// leaves clearly fewer routes to try in the worst case.
func newBucket(routes []*gatewayRoute, pos []int32, depth int) bucket {
	if len(pos) < splitMin || depth >= splitDepth {
		return bucket{pos: pos}
	}
	type tally struct {
		d       discriminator
		covered int
		values  map[string]int
	}
	tallies := map[string]*tally{}
	seen := map[string]bool{}
	for _, p := range pos {
		clear(seen)
		discriminators(&routes[p].m, func(d discriminator, val string) {
			if seen[d.id] {
				return // a second value for the attribute: the first is the key
			}
			seen[d.id] = true
			t := tallies[d.id]
			if t == nil {
				t = &tally{d: d, values: map[string]int{}}
				tallies[d.id] = t
			}
			t.covered++
			t.values[val]++
		})
	}
	var best *tally
	bestCost := len(pos)
	for _, t := range tallies {
		largest := 0
		for _, n := range t.values {
			largest = max(largest, n)
		}
		cost := len(pos) - t.covered + largest
		if cost < bestCost || (cost == bestCost && best != nil && t.d.id < best.d.id) {
			best, bestCost = t, cost
		}
	}
	// A split costs a lookup per request; take it only when it saves a
	// quarter of the list and more than a few matches.
	if best == nil || len(pos)-bestCost < max(len(pos)/4, splitMin/2) {
		return bucket{pos: pos}
	}
	by := map[string][]int32{}
	var rest []int32
	for _, p := range pos {
		val, ok := "", false
		discriminators(&routes[p].m, func(d discriminator, v string) {
			if !ok && d.id == best.d.id {
				val, ok = v, true
			}
		})
		if ok {
			by[val] = append(by[val], p)
		} else {
			rest = append(rest, p)
		}
	}
	s := &split{lo: pos[0], d: best.d, by: make(map[string]*bucket, len(by)), rest: newBucket(routes, rest, depth+1)}
	for val, list := range by {
		b := newBucket(routes, list, depth+1)
		s.by[val] = &b
	}
	return bucket{split: s}
}

// trie maps byte strings to payloads. One walk along a string finds every
// key that is a prefix of it (or, for a trie of reversed keys walked from
// the end, a suffix), in time bounded by the string's length, not by the
// number of keys.
type trie struct {
	nodes []trieNode // nodes[0] is the root when there is any key
}

type trieNode struct {
	label string // the bytes from the parent to this node
	next  string // the first byte of each child's label, in child order
	kids  int32  // index of the first child; a node's children are contiguous
	val   int32  // payload of the key ending here, or -1
	exact int32  // second payload of the key ending here (path trie), or -1
	up    int32  // nearest proper ancestor with val >= 0, or -1
}

type trieKey struct {
	s          string
	val, exact int32
}

// buildTrie builds a compressed trie of keys.
func buildTrie(keys []trieKey) trie {
	var t trie
	if len(keys) == 0 {
		return t
	}
	// Sorting positions rather than the keys themselves moves no pointers.
	order := make([]int32, len(keys))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(keys[a].s, keys[b].s) })
	// A string can be a key twice, with a payload of each kind: one node.
	sorted := make([]trieKey, 0, len(keys))
	for _, k := range order {
		if n := len(sorted); n > 0 && sorted[n-1].s == keys[k].s {
			last := &sorted[n-1]
			last.val, last.exact = max(last.val, keys[k].val), max(last.exact, keys[k].exact)
			continue
		}
		sorted = append(sorted, keys[k])
	}
	t.nodes = make([]trieNode, 1, 2*len(keys))
	t.fill(0, sorted, 0, -1)
	return t
}

// fill makes node n of keys, which are sorted and share their first depth bytes.
func (t *trie) fill(n int32, keys []trieKey, depth int, up int32) {
	first, last := keys[0].s, keys[len(keys)-1].s
	lcp := depth
	for lcp < len(first) && lcp < len(last) && first[lcp] == last[lcp] {
		lcp++
	}
	nd := trieNode{label: first[depth:lcp], val: -1, exact: -1, up: up}
	if len(first) == lcp {
		nd.val, nd.exact = keys[0].val, keys[0].exact
		keys = keys[1:]
	}
	childUp := up
	if nd.val >= 0 {
		childUp = n
	}
	var next []byte
	for i := 0; i < len(keys); i++ {
		if i == 0 || keys[i].s[lcp] != keys[i-1].s[lcp] {
			next = append(next, keys[i].s[lcp])
		}
	}
	nd.next = string(next)
	nd.kids = int32(len(t.nodes))
	t.nodes = append(t.nodes, make([]trieNode, len(next))...)
	t.nodes[n] = nd
	for k, i := 0, 0; i < len(keys); k++ {
		j := i + 1
		for j < len(keys) && keys[j].s[lcp] == keys[i].s[lcp] {
			j++
		}
		t.fill(nd.kids+int32(k), keys[i:j], lcp, childUp)
		i = j
	}
}

// prefixes walks s: deepest is the node of the longest key that is a prefix
// of s and has a payload (its up links lead to the shorter ones), exact the
// node of the key equal to s if it has an exact payload; -1 for none.
func (t *trie) prefixes(s string) (deepest, exact int32) {
	deepest, exact = -1, -1
	if len(t.nodes) == 0 {
		return
	}
	n, i := int32(0), 0
	for {
		nd := &t.nodes[n]
		if len(s)-i < len(nd.label) || s[i:i+len(nd.label)] != nd.label {
			return
		}
		i += len(nd.label)
		if nd.val >= 0 {
			deepest = n
		}
		if i == len(s) {
			if nd.exact >= 0 {
				exact = n
			}
			return
		}
		k := strings.IndexByte(nd.next, s[i])
		if k < 0 {
			return
		}
		n = nd.kids + int32(k)
	}
}

// suffixes walks s from its end in a trie of reversed keys and returns the
// node of the longest key s ends with, or -1; up links lead to the shorter
// ones. With fold, ASCII letters of s compare as lower case (the keys are);
// with proper, a key must be shorter than s.
func (t *trie) suffixes(s string, fold, proper bool) int32 {
	deepest := int32(-1)
	if len(t.nodes) == 0 {
		return deepest
	}
	n, i := int32(0), 0 // i bytes of s, from its end, consumed
	for {
		nd := &t.nodes[n]
		if len(s)-i < len(nd.label) {
			return deepest
		}
		for j := 0; j < len(nd.label); j++ {
			c := s[len(s)-1-i-j]
			if fold {
				c = lowerASCII(c)
			}
			if c != nd.label[j] {
				return deepest
			}
		}
		i += len(nd.label)
		if nd.val >= 0 && (i < len(s) || !proper) {
			deepest = n
		}
		if i == len(s) {
			return deepest
		}
		c := s[len(s)-1-i]
		if fold {
			c = lowerASCII(c)
		}
		k := strings.IndexByte(nd.next, c)
		if k < 0 {
			return deepest
		}
		n = nd.kids + int32(k)
	}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func reverse(s string) string {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}
