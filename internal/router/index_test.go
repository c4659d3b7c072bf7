package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
)

// The vocabularies are small so that random routes collide: many routes
// share a path key, a hostname or a header, and requests hit them.
var (
	genHosts    = []string{"a.example.com", "b.example.com", "example.com", "x.y.example.org"}
	genSuffixes = []string{".example.com", "example.com", ".a.example.com", "le.com", "m", ".com", ".example.org", "e.org"}
	genPrefixes = []string{"/", "/a", "/a/", "/ab", "/a/b", "/a/b/", "/b", "/b/", "/api/v1/", "/re1/", "/é/", "/%2e"}
	genExact    = []string{"/", "/a", "/a/b", "/b", "/ab", "/api/v1/items", "/pkg.Svc/Get", "/re1/42/items", "/a/"}
	// Regexes with and without a literal prefix, alternations that share or
	// do not share one, anchors, case folding, literal-only expressions
	// (which can match a single path) and runes the index must not key on.
	genRegexes = []string{
		"/a/[0-9]+", "^/(a|b)", "^/(a|b)/.*", "/(a|b)/.*", "(/a|/b).*", "/a|/b", ".*", "/a.*",
		"/a/b", "^/a/b$", "(?i)/A.*", "/[ab]/.*", "/re1/[0-9]+/items", `/\Qa.b\E.*`, "/a*",
		"(/a)?/b.*", `\x{FFFD}.*`, "/é.*", "/api/v1/.*", "[^/]*/a.*", "/a/b|/a/c", "^/a", "/a$",
		"(?:/a)(?:/b)?", `/a\b.*`, "(?s)/a.b", "/ab?", "(?m)^/a$", "/a/b/.+", "|/a",
		"/ab|/c", "(/ab|/cd)/e", "/a(b|cd)e", "/a)|(/a", "/a)|(/b",
		`.*\.png`, ".*/b", "[ab]+/c", ".*(/a|b/a)", "(?i).*/B", "(a|b)*/1", ".*(x|/)",
		".*a/b", "[^x]*/a/b", ".*b", ".+/items",
	}
	genHeaderNames = []string{"x-tenant", "x-tenant", "x-v", "host", ":authority", ":method", ":path", ":scheme"}
	genValues      = []string{"1", "2", "3", "a", "ab", "GET", "a.example.com", "http", "/a"}
	genQueryNames  = []string{"v", "v", "a", "b"}
	genQueryValues = []string{"1", "2", "x y", ""}
	genMethods     = []string{"GET", "POST", "PUT"}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// randomRoute is a gateway route with random criteria; a route the compiler
// would reject (say a header and nothing else) is still a fair input to
// the router, which must route any IR the same way a scan does.
func randomRoute(t testing.TB, rng *rand.Rand, i int) *ir.GatewayRoute {
	var m ir.Match
	switch rng.IntN(8) {
	case 0, 1, 2:
		m.Prefix = pick(rng, genPrefixes)
	case 3:
		m.PathExact = pick(rng, genExact)
	case 4, 5:
		m.PathRegex = mustRegexp(t, pick(rng, genRegexes))
	case 6:
		m.ServiceName = pick(rng, []string{"", "pkg.Svc", "a"})
		m.MethodName = pick(rng, []string{"", "Get", "b"})
	}
	switch rng.IntN(4) {
	case 0:
		m.Hostname = host(pick(rng, genHosts))
	case 1:
		m.Hostname = suffix(pick(rng, genSuffixes))
	}
	if rng.IntN(4) == 0 {
		m.Method = pick(rng, genMethods)
	}
	if rng.IntN(10) == 0 {
		m.Scheme = pick(rng, []string{"http", "HTTPS"})
	}
	if rng.IntN(10) == 0 {
		m.Port = pick(rng, []int{8080, 9090})
	}
	for n := rng.IntN(4) - 1; n > 0; n-- {
		h := ir.HeaderMatch{Name: pick(rng, genHeaderNames), Invert: rng.IntN(6) == 0}
		switch rng.IntN(9) {
		case 0, 1, 2, 3:
			h.Type, h.Value = ir.HeaderExact, pick(rng, genValues)
		case 4:
			h.Type = ir.HeaderPresent
		case 5:
			h.Type, h.Value = ir.HeaderPrefix, pick(rng, genValues)
		case 6:
			h.Type, h.Value = ir.HeaderSuffix, pick(rng, genValues)
		case 7:
			h.Type, h.Regex = ir.HeaderRegex, mustRegexp(t, pick(rng, []string{"[0-9]+", "a.*", "1|2"}))
		default:
			h.Type, h.Start, h.End = ir.HeaderRange, 1, 3
		}
		m.Headers = append(m.Headers, h)
	}
	// A run of header-only and query-only variants of one path makes the
	// long candidate lists the index splits by value.
	if rng.IntN(3) == 0 {
		m.Headers = append(m.Headers, ir.HeaderMatch{Name: "x-tenant", Type: ir.HeaderExact, Value: fmt.Sprint(rng.IntN(6))})
	}
	for n := rng.IntN(5) - 2; n > 0; n-- {
		q := ir.QueryMatch{Name: pick(rng, genQueryNames)}
		if rng.IntN(3) > 0 {
			q.Exact = str(pick(rng, genQueryValues))
		}
		m.Query = append(m.Query, q)
	}
	r := gr(fmt.Sprintf("r%03d", i), m)
	r.Priority = pick(rng, []int{0, 1, 2, 1001, 1001, 1001})
	return r
}

// randomRoutes is a route list of random size (many lists are large
// enough to be indexed), ordered by compile's precedence rule, or, for a
// third of them, in random order: the router must keep whatever order the
// IR has.
func randomRoutes(t testing.TB, rng *rand.Rand) []*ir.GatewayRoute {
	n := 1 + rng.IntN(12)
	if rng.IntN(4) > 0 {
		n = 20 + rng.IntN(300)
	}
	routes := make([]*ir.GatewayRoute, n)
	for i := range routes {
		routes[i] = randomRoute(t, rng, i)
	}
	if rng.IntN(3) == 0 {
		rng.Shuffle(len(routes), func(i, j int) { routes[i], routes[j] = routes[j], routes[i] })
	} else {
		slices.SortStableFunc(routes, func(a, b *ir.GatewayRoute) int {
			ra, rb := compile.RouteRank{Priority: a.Priority, Match: &a.Match, Name: a.Name}, compile.RouteRank{Priority: b.Priority, Match: &b.Match, Name: b.Name}
			switch {
			case compile.Precedes(ra, rb):
				return -1
			case compile.Precedes(rb, ra):
				return 1
			}
			return 0
		})
	}
	return routes
}

// randomRequest aims at the table often: its path is a route's key with a
// random tail, its headers and query come from the routes' vocabularies.
func randomRequest(rng *rand.Rand, routes []*ir.GatewayRoute) *Request {
	r := &Request{Port: 8080, Method: pick(rng, genMethods), Scheme: pick(rng, []string{"http", "https", "HTTP"}), Header: http.Header{}}
	if rng.IntN(20) == 0 {
		r.Port = 9090
	}
	r.Host = pick(rng, []string{
		"a.example.com", "A.Example.COM:8080", "b.example.com", "example.com", "xexample.com", "z.a.example.com",
		"Z.A.EXAMPLE.COM", "x.y.example.org", "e.org", "org", "m", "", "[::1]:80", "foo.com", "a.example.com.",
		"LE.COM", "ale.com", "Ä.example.com",
	})
	base := pick(rng, genPrefixes)
	switch rng.IntN(4) {
	case 0:
		base = pick(rng, genExact)
	case 1:
		if m := pick(rng, routes).Match; m.Prefix != "" {
			base = m.Prefix
		} else if m.PathExact != "" {
			base = m.PathExact
		}
	}
	r.Path = base + pick(rng, []string{"", "", "/", "x", "/42", "42/items", "/42/items", "b", "/b", "/c", ".b", "//a/../b", "/A"})
	if rng.IntN(30) == 0 {
		r.Path = string([]byte{'/', 0xff, 'a'})
	}
	r.RawQuery = pick(rng, []string{"", "", "v=1", "v=2", "v=2&v=1", "a&b=x+y", "v=%31", "b=2", "v=", "a=1&v=3"})
	for n := rng.IntN(4); n > 0; n-- {
		name := pick(rng, []string{"x-tenant", "x-tenant", "x-v", "host"})
		val := pick(rng, genValues)
		if rng.IntN(2) == 0 {
			val = fmt.Sprint(rng.IntN(6))
		}
		if rng.IntN(5) == 0 {
			r.Header[name] = append(r.Header[name], val) // as a hand-built Header may have it
		} else {
			r.Header.Add(name, val)
		}
	}
	return r
}

// scanListener is the routing rule written as plainly as possible: the
// routes naming the host, then those of each suffix the host ends with,
// longest suffix first, then those without a hostname, each in the
// listener's order; the first whose matcher accepts the request wins.
type scanListener struct {
	routes []*ir.GatewayRoute
	ms     []matcher
}

func newScanListener(routes []*ir.GatewayRoute) *scanListener {
	s := &scanListener{routes: routes}
	for _, r := range routes {
		s.ms = append(s.ms, compileMatch(&r.Match))
	}
	return s
}

func (s *scanListener) find(r *Request) *ir.GatewayRoute {
	if r.Port != 8080 {
		return nil
	}
	v := &view{port: r.Port, method: r.Method, host: stripPort(r.Host), rawHost: r.Host,
		path: normalizePath(r.Path), rawQuery: r.RawQuery, scheme: r.Scheme, header: r.Header}
	// Hostnames compare ASCII case-insensitively, as DNS names do.
	host := []byte(v.host)
	for i, c := range host {
		host[i] = lowerASCII(c)
	}
	first := func(in func(h *ir.HostnameMatch) bool) *ir.GatewayRoute {
		for i, gr := range s.routes {
			if in(gr.Match.Hostname) && s.ms[i].matches(v) {
				return gr
			}
		}
		return nil
	}
	if gr := first(func(h *ir.HostnameMatch) bool { return h != nil && h.Exact != "" && h.Exact == string(host) }); gr != nil {
		return gr
	}
	var suffixes []string
	for _, gr := range s.routes {
		if h := gr.Match.Hostname; h != nil && h.Exact == "" && h.Suffix != "" && !slices.Contains(suffixes, h.Suffix) {
			suffixes = append(suffixes, h.Suffix)
		}
	}
	slices.SortFunc(suffixes, func(a, b string) int { return len(b) - len(a) })
	for _, sfx := range suffixes {
		if len(host) <= len(sfx) || !strings.HasSuffix(string(host), sfx) {
			continue
		}
		if gr := first(func(h *ir.HostnameMatch) bool { return h != nil && h.Exact == "" && h.Suffix == sfx }); gr != nil {
			return gr
		}
	}
	return first(func(h *ir.HostnameMatch) bool { return h == nil || (h.Exact == "" && h.Suffix == "") })
}

// indexUse counts what of the index a table exercises, so that the
// property test can insist it tested the index and not only scans.
type indexUse struct{ indexed, regexKeys, pathSuffixKeys, splits, suffixTries int }

func (u *indexUse) add(tab *Table) {
	for _, l := range tab.listeners {
		if len(l.suffixKeys.nodes) > 0 {
			u.suffixTries++
		}
		groups := []*group{l.any}
		for _, g := range l.exact {
			groups = append(groups, g)
		}
		for _, s := range l.suffix {
			groups = append(groups, s.g)
		}
		for _, g := range groups {
			if g == nil || g.idx == nil {
				continue
			}
			u.indexed++
			for _, r := range g.routes {
				if r.m.pathRegex != nil {
					if exact, prefix, suffix := pathKeys(&r.m, regexLiteral(r.m.pathRegex.Source)); exact+prefix+suffix != "" {
						u.regexKeys++
					}
				}
			}
			for _, nd := range g.idx.suffixes.nodes {
				if nd.val >= 0 {
					u.pathSuffixKeys += bucketSize(&g.idx.buckets[nd.val])
				}
			}
			var walk func(b *bucket)
			walk = func(b *bucket) {
				if b.split == nil {
					return
				}
				u.splits++
				walk(&b.split.rest)
				for _, sub := range b.split.by {
					walk(sub)
				}
			}
			walk(&g.idx.always)
			for i := range g.idx.buckets {
				walk(&g.idx.buckets[i])
			}
		}
	}
}

// TestIndexAgreesWithScan checks the indexed Decide against scanListener on
// random tables and requests, with a fixed seed.
func TestIndexAgreesWithScan(t *testing.T) {
	tables, requests := 300, 200
	if testing.Short() {
		tables = 60
	}
	rng := rand.New(rand.NewPCG(5, 10000))
	var use indexUse
	matched := 0
	for ti := 0; ti < tables; ti++ {
		routes := randomRoutes(t, rng)
		tab := mustTable(t, mesh(listenerOf(8080, routes...)))
		use.add(tab)
		scan := newScanListener(routes)
		for ri := 0; ri < requests; ri++ {
			r := randomRequest(rng, routes)
			want := scan.find(r)
			d := tab.Decide(r)
			if d.GatewayRoute != want {
				t.Fatalf("table %d, request %d: %s %q %q ?%q %v: Decide chose %s, the ordered scan %s\nroutes:\n%s",
					ti, ri, r.Method, r.Host, r.Path, r.RawQuery, r.Header, nameOf(d.GatewayRoute), nameOf(want), describeRoutes(routes))
			}
			if want != nil {
				matched++
			}
			if ri%10 == 0 {
				if ex := tab.Explain(r); !reflect.DeepEqual(ex.Decision, d) {
					t.Fatalf("table %d, request %d: Explain %+v, Decide %+v", ti, ri, ex.Decision, d)
				}
			}
		}
	}
	t.Logf("%d decisions, %d matched a route; %d indexed groups, %d regex routes with a key, %d routes keyed by a path suffix, %d splits, %d hostname suffix tries",
		tables*requests, matched, use.indexed, use.regexKeys, use.pathSuffixKeys, use.splits, use.suffixTries)
	if use.indexed == 0 || use.regexKeys == 0 || use.pathSuffixKeys == 0 || use.splits == 0 || use.suffixTries == 0 || matched < tables*requests/10 {
		t.Fatalf("the random tables do not exercise the index: %+v, %d matched", use, matched)
	}
}

func bucketSize(b *bucket) int {
	if b.split == nil {
		return len(b.pos)
	}
	n := bucketSize(&b.split.rest)
	for _, sub := range b.split.by {
		n += bucketSize(sub)
	}
	return n
}

func nameOf(gr *ir.GatewayRoute) string {
	if gr == nil {
		return "no route"
	}
	return gr.Name
}

func describeRoutes(routes []*ir.GatewayRoute) string {
	var b strings.Builder
	for _, r := range routes {
		m := r.Match
		fmt.Fprintf(&b, "  %s prio=%d", r.Name, r.Priority)
		if h := m.Hostname; h != nil {
			fmt.Fprintf(&b, " host=%q suffix=%q", h.Exact, h.Suffix)
		}
		if m.PathRegex != nil {
			fmt.Fprintf(&b, " regex=%q", m.PathRegex.Source)
		}
		fmt.Fprintf(&b, " prefix=%q exact=%q svc=%q method=%q http=%q scheme=%q port=%d", m.Prefix, m.PathExact, m.ServiceName, m.MethodName, m.Method, m.Scheme, m.Port)
		for _, h := range m.Headers {
			fmt.Fprintf(&b, " h[%s %s %q inv=%v]", h.Name, h.Type, h.Value, h.Invert)
		}
		for _, q := range m.Query {
			if q.Exact != nil {
				fmt.Fprintf(&b, " q[%s=%q]", q.Name, *q.Exact)
			} else {
				fmt.Fprintf(&b, " q[%s]", q.Name)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// FuzzDecideIndexed is TestIndexAgreesWithScan with the request, and the
// seed of the random table, chosen by the fuzzer.
func FuzzDecideIndexed(f *testing.F) {
	f.Add(uint64(1), "a.example.com", "/a/b", "v=1", "x-tenant", "1", "GET")
	f.Add(uint64(2), "Z.A.example.com:80", "/re1/42/items", "", "host", "a.example.com", "POST")
	f.Add(uint64(3), "ale.com", "//a/../b/c", "a&b=x+y", ":method", "GET", "PUT")
	f.Fuzz(func(t *testing.T, seed uint64, hostname, path, query, hname, hvalue, method string) {
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		routes := randomRoutes(t, rng)
		tab := mustTable(t, mesh(listenerOf(8080, routes...)))
		h := http.Header{}
		if hname != "" {
			h[http.CanonicalHeaderKey(hname)] = []string{hvalue}
		}
		r := &Request{Port: 8080, Method: method, Host: hostname, Path: path, RawQuery: query, Scheme: "http", Header: h}
		if got, want := tab.Decide(r).GatewayRoute, newScanListener(routes).find(r); got != want {
			t.Fatalf("Decide chose %s, the ordered scan %s\nroutes:\n%s", nameOf(got), nameOf(want), describeRoutes(routes))
		}
	})
}

// TestRegexLiteral pins the literals of regexes, and checks on every short
// path over a small alphabet that every path the anchored regex accepts
// begins and ends with them (and, when complete, is the prefix).
func TestRegexLiteral(t *testing.T) {
	cases := []struct {
		src  string
		want regexLit
	}{
		{"/a/[0-9]+", regexLit{prefix: "/a/"}},
		{"/re1/[0-9]+/items", regexLit{prefix: "/re1/", suffix: "/items"}},
		{"^/(a|b)", regexLit{prefix: "/"}},
		{"/a/b|/a/c", regexLit{prefix: "/a/"}},
		{"/a/b|/c/b", regexLit{prefix: "/", suffix: "/b"}},
		{"(?i)/A.*", regexLit{prefix: "/"}},
		{"(?i).*x/1", regexLit{suffix: "/1"}},
		{".*", regexLit{}},
		{`.*\.png`, regexLit{suffix: ".png"}},
		{"|/a", regexLit{}},
		{"/a/b", regexLit{prefix: "/a/b", suffix: "/a/b", complete: true}},
		{"^/a/b$", regexLit{prefix: "/a/b", suffix: "/a/b", complete: true}},
		{"/a$", regexLit{prefix: "/a", suffix: "/a", complete: true}},
		{"^/a", regexLit{prefix: "/a", suffix: "/a", complete: true}},
		{"(/a)/b", regexLit{prefix: "/a/b", suffix: "/a/b", complete: true}},
		{"/a|/a", regexLit{prefix: "/a", suffix: "/a", complete: true}},
		{"/a{2}", regexLit{prefix: "/a", suffix: "a"}},
		{"/a{1}", regexLit{prefix: "/a", suffix: "/a", complete: true}},
		{"/a+b", regexLit{prefix: "/a", suffix: "ab"}},
		{"/(a|ab)", regexLit{prefix: "/a"}},
		{`\x{FFFD}.*`, regexLit{}},
		{`.*/\x{FFFD}`, regexLit{}},
		{"/é.*é", regexLit{prefix: "/é", suffix: "é"}},
		{"a)|(b", regexLit{}}, // the anchors do not bind the alternation
		{"/a)|(/a", regexLit{}},
	}
	for _, c := range cases {
		if got := regexLiteral(c.src); got != c.want {
			t.Errorf("regexLiteral(%q) = %+v; want %+v", c.src, got, c.want)
		}
	}
	var paths []string
	var grow func(p string)
	grow = func(p string) {
		paths = append(paths, p)
		if len(p) < 5 {
			for _, c := range []string{"/", "a", "b", "c", "1", "\xff"} {
				grow(p + c)
			}
		}
	}
	grow("")
	srcs := slices.Clone(genRegexes)
	for _, c := range cases {
		srcs = append(srcs, c.src)
	}
	for _, src := range srcs {
		re, err := ir.CompileRegexp(src)
		if err != nil {
			continue
		}
		l := regexLiteral(src)
		for _, p := range append(paths, l.prefix, l.prefix+"a", l.suffix, "a"+l.suffix, "/é", "/éa") {
			if re.MatchString(p) && (!strings.HasPrefix(p, l.prefix) || !strings.HasSuffix(p, l.suffix) || l.complete && p != l.prefix) {
				t.Errorf("%q matches %q but its literals are %+v", src, p, l)
			}
		}
	}
}

// TestSuffixGroupsSharingSuffix covers a config whose suffix groups differ
// only in case: they cannot share a key, so the groups are scanned in order.
func TestSuffixGroupsSharingSuffix(t *testing.T) {
	l := &ir.Listener{Port: 8080, Protocol: "http", Routes: []*ir.GatewayRoute{
		gr("upper", ir.Match{Prefix: "/u", Hostname: suffix(".Example.com")}),
		gr("lower", ir.Match{Prefix: "/", Hostname: suffix(".example.com")}),
		gr("any", ir.Match{Prefix: "/"}),
	}}
	l.IndexHosts()
	tab := mustTable(t, mesh(l))
	if len(tab.listeners[0].suffixKeys.nodes) != 0 {
		t.Fatal("suffix trie built for duplicate suffixes")
	}
	for path, want := range map[string]string{"/u": "upper", "/x": "lower"} {
		if d := tab.Decide(req(path, withHost("a.example.com"))); nameOf(d.GatewayRoute) != want {
			t.Errorf("%s: %s, want %s", path, nameOf(d.GatewayRoute), want)
		}
	}
}
