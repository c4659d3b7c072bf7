package router

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

type matchCase struct {
	routes []*ir.GatewayRoute // all on listener 8080, in precedence order
	req    *Request
	want   string // gateway route name; "" = no route (404)
}

func runMatchCases(t *testing.T, cases map[string]matchCase) {
	t.Helper()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tab := mustTable(t, mesh(listenerOf(8080, c.routes...)))
			d := tab.Decide(c.req)
			got := ""
			if d.GatewayRoute != nil {
				got = d.GatewayRoute.Name
			}
			if got != c.want {
				t.Fatalf("route = %q, want %q (status %d %s)", got, c.want, d.Status, d.Reason)
			}
			if c.want == "" && (d.Status != http.StatusNotFound || d.Reason != "no gateway route matched") {
				t.Fatalf("no match: status %d reason %q, want 404 \"no gateway route matched\"", d.Status, d.Reason)
			}
			// Explain must always agree with Decide.
			if ex := tab.Explain(c.req); !reflect.DeepEqual(ex.Decision, d) {
				t.Fatalf("Explain decision %+v != Decide %+v", ex.Decision, d)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	prefix := []*ir.GatewayRoute{gr("backend", ir.Match{Prefix: "/backend"})}
	root := []*ir.GatewayRoute{gr("root", ir.Match{Prefix: "/"})}
	exact := []*ir.GatewayRoute{gr("exact", ir.Match{PathExact: "/exact"})}
	regex := []*ir.GatewayRoute{gr("regex", ir.Match{PathRegex: mustRegexp(t, "/items/[0-9]+")})}
	runMatchCases(t, map[string]matchCase{
		"prefix/sub path":             {prefix, req("/backend/items"), "backend"},
		"prefix/itself":               {prefix, req("/backend"), "backend"},
		"prefix/plain string prefix":  {prefix, req("/backendx"), "backend"},
		"prefix/shorter":              {prefix, req("/back"), ""},
		"prefix/other":                {prefix, req("/other/backend"), ""},
		"prefix/case sensitive":       {prefix, req("/Backend"), ""},
		"prefix/after merge slashes":  {prefix, req("//backend///items"), "backend"},
		"prefix/dot segments":         {prefix, req("/x/../backend/./items"), "backend"},
		"prefix/encoded dot segments": {prefix, req("/x/%2E%2e/backend"), "backend"},
		"prefix/dotdot escapes":       {prefix, req("/backend/../admin"), ""},
		"prefix root/anything":        {root, req("/a/b/c"), "root"},
		"prefix root/root":            {root, req("/"), "root"},
		"prefix root/empty path":      {root, req(""), "root"},
		"exact/equal":                 {exact, req("/exact"), "exact"},
		"exact/query ignored":         {exact, req("/exact", withQuery("a=1")), "exact"},
		"exact/trailing slash":        {exact, req("/exact/"), ""},
		"exact/longer":                {exact, req("/exact/x"), ""},
		"exact/after normalising":     {exact, req("/a/../exact"), "exact"},
		"regex/match":                 {regex, req("/items/42"), "regex"},
		"regex/whole string":          {regex, req("/items/42/x"), ""},
		"regex/whole string prefix":   {regex, req("/v1/items/42"), ""},
		"regex/no match":              {regex, req("/items/abc"), ""},
		"regex/query ignored":         {regex, req("/items/7", withQuery("x=1")), "regex"},
	})
}

func TestMatchQuery(t *testing.T) {
	present := []*ir.GatewayRoute{gr("present", ir.Match{Prefix: "/", Query: []ir.QueryMatch{{Name: "debug"}}})}
	exact := []*ir.GatewayRoute{gr("exact", ir.Match{Prefix: "/", Query: []ir.QueryMatch{{Name: "version", Exact: str("v2")}}})}
	both := []*ir.GatewayRoute{gr("both", ir.Match{Prefix: "/", Query: []ir.QueryMatch{{Name: "a"}, {Name: "b", Exact: str("2")}}})}
	runMatchCases(t, map[string]matchCase{
		"present/with value":        {present, req("/", withQuery("debug=1")), "present"},
		"present/without value":     {present, req("/", withQuery("debug")), "present"},
		"present/empty value":       {present, req("/", withQuery("a=1&debug=")), "present"},
		"present/absent":            {present, req("/", withQuery("a=1")), ""},
		"present/no query":          {present, req("/"), ""},
		"present/longer name":       {present, req("/", withQuery("debugx=1")), ""},
		"present/encoded name":      {present, req("/", withQuery("de%62ug=1")), "present"},
		"exact/equal":               {exact, req("/", withQuery("version=v2")), "exact"},
		"exact/other value":         {exact, req("/", withQuery("version=v1")), ""},
		"exact/no value":            {exact, req("/", withQuery("version")), ""},
		"exact/first value counts":  {exact, req("/", withQuery("version=v2&version=v1")), "exact"},
		"exact/first value differs": {exact, req("/", withQuery("version=v1&version=v2")), ""},
		"exact/percent encoded":     {exact, req("/", withQuery("version=%76%32")), "exact"},
		"exact/absent":              {exact, req("/"), ""},
		"all must hold/both":        {both, req("/", withQuery("b=2&a")), "both"},
		"all must hold/one":         {both, req("/", withQuery("b=2")), ""},
	})
}

func TestMatchHeaders(t *testing.T) {
	h := func(name string, m ir.HeaderMatch) []*ir.GatewayRoute {
		return []*ir.GatewayRoute{gr(name, ir.Match{Prefix: "/", Headers: []ir.HeaderMatch{m}})}
	}
	present := h("present", ir.HeaderMatch{Name: "x-canary-user", Type: ir.HeaderPresent})
	absent := h("absent", ir.HeaderMatch{Name: "x-canary-user", Type: ir.HeaderPresent, Invert: true})
	exact := h("exact", ir.HeaderMatch{Name: "x-canary-user", Type: ir.HeaderExact, Value: "true"})
	notExact := h("not-exact", ir.HeaderMatch{Name: "x-canary-user", Type: ir.HeaderExact, Value: "true", Invert: true})
	prefix := h("prefix", ir.HeaderMatch{Name: "user-agent", Type: ir.HeaderPrefix, Value: "Mozilla/"})
	suffixM := h("suffix", ir.HeaderMatch{Name: "x-tenant", Type: ir.HeaderSuffix, Value: ".eu"})
	regex := h("regex", ir.HeaderMatch{Name: "x-version", Type: ir.HeaderRegex, Regex: mustRegexp(t, "v[0-9]+")})
	rng := h("range", ir.HeaderMatch{Name: "x-n", Type: ir.HeaderRange, Start: 1, End: 100})
	notRange := h("not-range", ir.HeaderMatch{Name: "x-n", Type: ir.HeaderRange, Start: 1, End: 100, Invert: true})
	authority := h("authority", ir.HeaderMatch{Name: ":authority", Type: ir.HeaderExact, Value: "Example.com:8080"})
	hostHeader := h("host", ir.HeaderMatch{Name: "host", Type: ir.HeaderSuffix, Value: ":8080"})
	two := []*ir.GatewayRoute{gr("two", ir.Match{Prefix: "/", Headers: []ir.HeaderMatch{
		{Name: "x-a", Type: ir.HeaderExact, Value: "1"}, {Name: "x-b", Type: ir.HeaderPresent},
	}})}
	hh := func(kv ...string) func(*Request) { return withHeader(hdr(kv...)) }
	runMatchCases(t, map[string]matchCase{
		"present/present":                   {present, req("/", hh("X-Canary-User", "")), "present"},
		"present/missing":                   {present, req("/"), ""},
		"present inverted/missing":          {absent, req("/"), "absent"},
		"present inverted/present":          {absent, req("/", hh("X-Canary-User", "x")), ""},
		"exact/equal":                       {exact, req("/", hh("X-Canary-User", "true")), "exact"},
		"exact/other":                       {exact, req("/", hh("X-Canary-User", "false")), ""},
		"exact/case sensitive value":        {exact, req("/", hh("X-Canary-User", "TRUE")), ""},
		"exact/missing":                     {exact, req("/"), ""},
		"exact/repeated header joined":      {h("joined", ir.HeaderMatch{Name: "x-a", Type: ir.HeaderExact, Value: "1,2"}), req("/", hh("X-A", "1", "X-A", "2")), "joined"},
		"exact/hand-built lower-case key":   {exact, req("/", withHeader(http.Header{"x-canary-user": {"true"}})), "exact"},
		"exact inverted/other":              {notExact, req("/", hh("X-Canary-User", "false")), "not-exact"},
		"exact inverted/equal":              {notExact, req("/", hh("X-Canary-User", "true")), ""},
		"exact inverted/missing":            {notExact, req("/"), ""},
		"prefix/match":                      {prefix, req("/", hh("User-Agent", "Mozilla/5.0")), "prefix"},
		"prefix/no match":                   {prefix, req("/", hh("User-Agent", "curl/8")), ""},
		"suffix/match":                      {suffixM, req("/", hh("X-Tenant", "acme.eu")), "suffix"},
		"suffix/no match":                   {suffixM, req("/", hh("X-Tenant", "acme.us")), ""},
		"regex/match":                       {regex, req("/", hh("X-Version", "v12")), "regex"},
		"regex/whole string":                {regex, req("/", hh("X-Version", "v12-beta")), ""},
		"range/start inclusive":             {rng, req("/", hh("X-N", "1")), "range"},
		"range/inside":                      {rng, req("/", hh("X-N", "99")), "range"},
		"range/end exclusive":               {rng, req("/", hh("X-N", "100")), ""},
		"range/below":                       {rng, req("/", hh("X-N", "0")), ""},
		"range/negative":                    {rng, req("/", hh("X-N", "-5")), ""},
		"range/not a number":                {rng, req("/", hh("X-N", "5a")), ""},
		"range/missing":                     {rng, req("/"), ""},
		"range inverted/outside":            {notRange, req("/", hh("X-N", "100")), "not-range"},
		"range inverted/inside":             {notRange, req("/", hh("X-N", "50")), ""},
		"range inverted/not a number":       {notRange, req("/", hh("X-N", "abc")), "not-range"},
		"range inverted/missing":            {notRange, req("/"), ""},
		":authority/as received":            {authority, req("/", withHost("Example.com:8080")), "authority"},
		"host header/suffix":                {hostHeader, req("/", withHost("example.com:8080")), "host"},
		"host header/no port":               {hostHeader, req("/", withHost("example.com")), ""},
		"all headers must hold/both":        {two, req("/", hh("X-A", "1", "X-B", "")), "two"},
		"all headers must hold/one missing": {two, req("/", hh("X-A", "1")), ""},
	})
}

func TestMatchMethodSchemePortHostname(t *testing.T) {
	method := []*ir.GatewayRoute{gr("post", ir.Match{Prefix: "/", Method: "POST"})}
	scheme := []*ir.GatewayRoute{gr("https", ir.Match{Prefix: "/", Scheme: "https"})}
	port := []*ir.GatewayRoute{gr("port", ir.Match{Prefix: "/", Port: 8080})}
	exact := []*ir.GatewayRoute{gr("exact", ir.Match{Prefix: "/", Hostname: host("api.example.com")})}
	suf := []*ir.GatewayRoute{gr("suffix", ir.Match{Prefix: "/", Hostname: suffix(".example.com")})}
	bare := []*ir.GatewayRoute{gr("bare", ir.Match{Prefix: "/", Hostname: suffix("example.com")})}
	v6 := []*ir.GatewayRoute{gr("v6", ir.Match{Prefix: "/", Hostname: host("[::1]")})}
	runMatchCases(t, map[string]matchCase{
		"method/equal":                      {method, req("/", withMethod("POST")), "post"},
		"method/other":                      {method, req("/", withMethod("GET")), ""},
		"scheme/equal":                      {scheme, req("/", withScheme("https")), "https"},
		"scheme/other":                      {scheme, req("/", withScheme("http")), ""},
		"port/equal":                        {port, req("/"), "port"},
		"hostname exact/equal":              {exact, req("/", withHost("api.example.com")), "exact"},
		"hostname exact/case and port":      {exact, req("/", withHost("API.Example.COM:8443")), "exact"},
		"hostname exact/other":              {exact, req("/", withHost("dev-api.example.com")), ""},
		"hostname exact/longer":             {exact, req("/", withHost("xapi.example.com")), ""},
		"hostname exact/trailing dot":       {exact, req("/", withHost("api.example.com.")), ""},
		"hostname suffix/subdomain":         {suf, req("/", withHost("a.example.com")), "suffix"},
		"hostname suffix/case and port":     {suf, req("/", withHost("A.B.EXAMPLE.com:80")), "suffix"},
		"hostname suffix/empty wildcard":    {suf, req("/", withHost(".example.com")), ""},
		"hostname suffix/apex":              {suf, req("/", withHost("example.com")), ""},
		"hostname suffix/other":             {suf, req("/", withHost("example.org")), ""},
		"hostname suffix/literal ends-with": {bare, req("/", withHost("badexample.com")), "bare"},
		"hostname exact/ipv6 with port":     {v6, req("/", withHost("[::1]:8080")), "v6"},
		"hostname exact/ipv6 without port":  {v6, req("/", withHost("[::1]")), "v6"},
	})
}

func TestMatchGRPC(t *testing.T) {
	svc := []*ir.GatewayRoute{gr("svc", ir.Match{ServiceName: "color.ColorService"})}
	method := []*ir.GatewayRoute{gr("method", ir.Match{ServiceName: "color.ColorService", MethodName: "GetColor"})}
	meta := []*ir.GatewayRoute{gr("meta", ir.Match{ServiceName: "color.ColorService", Headers: []ir.HeaderMatch{{Name: "color", Type: ir.HeaderExact, Value: "red"}}})}
	hh := func(kv ...string) func(*Request) { return withHeader(hdr(kv...)) }
	runMatchCases(t, map[string]matchCase{
		"service/any method":     {svc, req("/color.ColorService/GetColor", withMethod("POST")), "svc"},
		"service/other service":  {svc, req("/color.ColorServiceX/GetColor"), ""},
		"service/package prefix": {svc, req("/color.Color/GetColor"), ""},
		"method/equal":           {method, req("/color.ColorService/GetColor"), "method"},
		"method/other":           {method, req("/color.ColorService/SetColor"), ""},
		"method/longer":          {method, req("/color.ColorService/GetColors"), ""},
		"metadata/equal":         {meta, req("/color.ColorService/GetColor", hh("Color", "red")), "meta"},
		"metadata/other":         {meta, req("/color.ColorService/GetColor", hh("Color", "blue")), ""},
		"metadata/missing":       {meta, req("/color.ColorService/GetColor"), ""},
	})
}

func TestListenerPort(t *testing.T) {
	cfg := mesh(
		listenerOf(8080, gr("on-8080", ir.Match{Prefix: "/", Port: 8080})),
		listenerOf(9090, gr("on-9090", ir.Match{Prefix: "/", Port: 9090})),
	)
	tab := mustTable(t, cfg)
	for port, want := range map[int]string{8080: "on-8080", 9090: "on-9090"} {
		d := tab.Decide(req("/", withPort(port)))
		if d.GatewayRoute == nil || d.GatewayRoute.Name != want {
			t.Errorf("port %d: got %+v, want %s", port, d, want)
		}
	}
	d := tab.Decide(req("/", withPort(7070)))
	if d.Status != http.StatusNotFound || d.GatewayRoute != nil || d.Reason != "no listener on port 7070" {
		t.Errorf("port 7070: got %+v, want 404 no listener", d)
	}
	// A route whose Match.Port names another port never matches here.
	tab = mustTable(t, mesh(listenerOf(8080, gr("elsewhere", ir.Match{Prefix: "/", Port: 9090}))))
	if d := tab.Decide(req("/")); d.Status != http.StatusNotFound {
		t.Errorf("route for port 9090 matched on 8080: %+v", d)
	}
}

func TestHostGroupOrder(t *testing.T) {
	// The any-host route is first in precedence order and the suffix
	// routes before the exact one: groups still go exact → longest suffix
	// → shorter suffix → any host.
	routes := []*ir.GatewayRoute{
		gr("any", ir.Match{Prefix: "/"}),
		gr("suffix", ir.Match{Prefix: "/", Hostname: suffix(".example.com")}),
		gr("long-suffix", ir.Match{Prefix: "/", Hostname: suffix(".api.example.com")}),
		gr("exact-canary", ir.Match{Prefix: "/", Hostname: host("www.api.example.com"), Headers: []ir.HeaderMatch{{Name: "x-canary", Type: ir.HeaderPresent}}}),
		gr("exact", ir.Match{Prefix: "/v1", Hostname: host("www.api.example.com")}),
	}
	hh := func(kv ...string) func(*Request) { return withHeader(hdr(kv...)) }
	runMatchCases(t, map[string]matchCase{
		"exact host group first":                  {routes, req("/v1/x", withHost("www.api.example.com")), "exact"},
		"exact group keeps its order":             {routes, req("/v1/x", withHost("www.api.example.com"), hh("X-Canary", "1")), "exact-canary"},
		"exact group without match falls through": {routes, req("/v2", withHost("WWW.api.example.com:80")), "long-suffix"},
		"longest suffix before shorter":           {routes, req("/", withHost("x.api.example.com")), "long-suffix"},
		"shorter suffix":                          {routes, req("/", withHost("x.example.com")), "suffix"},
		"any host last":                           {routes, req("/", withHost("example.org")), "any"},
		"apex is not in the suffix group":         {routes, req("/", withHost("example.com")), "any"},
	})
	// Without an any-host route, a host in no group gets no route.
	noAny := routes[1:]
	runMatchCases(t, map[string]matchCase{
		"no any-host route": {noAny, req("/", withHost("example.org")), ""},
		"suffix group only": {noAny, req("/", withHost("a.example.com")), "suffix"},
		"fall through all":  {noAny[2:], req("/v2", withHost("www.api.example.com")), ""},
	})
}

func TestOrderWithinGroup(t *testing.T) {
	// Compile's order is authoritative, even when a later route is more specific.
	routes := []*ir.GatewayRoute{
		gr("canary", ir.Match{Prefix: "/backend", Headers: []ir.HeaderMatch{{Name: "x-canary-user", Type: ir.HeaderExact, Value: "true"}}}),
		gr("backend", ir.Match{Prefix: "/backend"}),
		gr("root", ir.Match{Prefix: "/"}),
		gr("never", ir.Match{Prefix: "/backend/items"}),
	}
	hh := func(kv ...string) func(*Request) { return withHeader(hdr(kv...)) }
	runMatchCases(t, map[string]matchCase{
		"first match/canary":         {routes, req("/backend/items", hh("X-Canary-User", "true")), "canary"},
		"second when first fails":    {routes, req("/backend/items", hh("X-Canary-User", "false")), "backend"},
		"root before later specific": {routes, req("/other"), "root"},
	})
}

// TestIndexedGroup checks the path index on a group large enough to use it:
// the first route in order wins whatever kind of criterion selected it.
func TestIndexedGroup(t *testing.T) {
	var routes []*ir.GatewayRoute
	for _, p := range []string{"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"} {
		routes = append(routes, gr("prefix"+p, ir.Match{Prefix: p + "/"}))
	}
	routes = append(routes,
		gr("regex-b", ir.Match{PathRegex: mustRegexp(t, "/b/.*")}),
		gr("exact-b", ir.Match{PathExact: "/b/exact"}),
		gr("header-only", ir.Match{Headers: []ir.HeaderMatch{{Name: "x-any", Type: ir.HeaderPresent}}}),
		gr("long-b", ir.Match{Prefix: "/b/long/"}),
		gr("grpc", ir.Match{ServiceName: "pkg.Svc", MethodName: "Get"}),
	)
	routes = append([]*ir.GatewayRoute{gr("first-exact", ir.Match{PathExact: "/c/x", Method: "PUT"})}, routes...)
	tab := mustTable(t, mesh(listenerOf(8080, routes...)))
	if tab.listeners[0].any.idx == nil {
		t.Fatal("group not indexed; test does not exercise the index")
	}
	cases := map[*Request]string{
		req("/b/long/x"):                         "prefix/b",
		req("/c/x", withMethod("PUT")):           "first-exact",
		req("/c/x"):                              "prefix/c",
		req("/z/x"):                              "",
		req("/z", withHeader(hdr("X-Any", "1"))): "header-only",
		req("/pkg.Svc/Get"):                      "grpc",
		req("/pkg.Svc/Get", withHeader(hdr("X-Any", "1"))): "header-only",
		req("/h/"): "prefix/h",
		req("/h"):  "",
	}
	for r, want := range cases {
		d := tab.Decide(r)
		got := ""
		if d.GatewayRoute != nil {
			got = d.GatewayRoute.Name
		}
		if got != want {
			t.Errorf("%s %s: got %q, want %q", r.Method, r.Path, got, want)
		}
		if ex := tab.Explain(r); !reflect.DeepEqual(ex.Decision, d) {
			t.Errorf("%s: Explain disagrees: %+v vs %+v", r.Path, ex.Decision, d)
		}
	}
}

func TestRewrite(t *testing.T) {
	cases := map[string]struct {
		route              *ir.GatewayRoute
		req                *Request
		wantHost, wantPath string
	}{
		"default prefix/sub path":          {rewrite(gr("r", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/"}), req("/backend/items"), "example.com", "/items"},
		"default prefix/itself":            {rewrite(gr("r", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/"}), req("/backend"), "example.com", "/"},
		"default prefix/trailing slash":    {rewrite(gr("r", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/"}), req("/backend/"), "example.com", "/"},
		"default prefix/extra slashes":     {rewrite(gr("r", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/"}), req("/backend//items//x"), "example.com", "/items/x"},
		"default prefix/chapter page":      {rewrite(gr("r", ir.Match{Prefix: "/chapter"}), ir.Rewrite{Prefix: "/"}), req("/chapter/page"), "example.com", "/page"},
		"default prefix/chapter 1":         {rewrite(gr("r", ir.Match{Prefix: "/chapter"}), ir.Rewrite{Prefix: "/"}), req("/chapter/1"), "example.com", "/1"},
		"default prefix/chapter1":          {rewrite(gr("r", ir.Match{Prefix: "/chapter"}), ir.Rewrite{Prefix: "/"}), req("/chapter1"), "example.com", "/1"},
		"default prefix/root":              {rewrite(gr("r", ir.Match{Prefix: "/"}), ir.Rewrite{Prefix: "/"}), req("/a/b"), "example.com", "/a/b"},
		"prefix value/maroon to red":       {rewrite(gr("r", ir.Match{Prefix: "/maroon/"}), ir.Rewrite{Prefix: "/red/"}), req("/maroon/tell", withQuery("fishes=nemo")), "example.com", "/red/tell"},
		"prefix value/itself":              {rewrite(gr("r", ir.Match{Prefix: "/maroon/"}), ir.Rewrite{Prefix: "/red/"}), req("/maroon/"), "example.com", "/red/"},
		"prefix value/without slash":       {rewrite(gr("r", ir.Match{Prefix: "/v1"}), ir.Rewrite{Prefix: "v2/"}), req("/v1/x"), "example.com", "/v2/x"},
		"prefix disabled/kept":             {gr("r", ir.Match{Prefix: "/red/"}), req("/red/tell"), "example.com", "/red/tell"},
		"path exact/replaced":              {rewrite(gr("r", ir.Match{PathExact: "/old"}), ir.Rewrite{Path: "/new"}), req("/old"), "example.com", "/new"},
		"path regex/kept by default":       {gr("r", ir.Match{PathRegex: mustRegexp(t, "/i/[0-9]+")}), req("/i/7"), "example.com", "/i/7"},
		"path/replaced for prefix":         {rewrite(gr("r", ir.Match{Prefix: "/"}), ir.Rewrite{Path: "/fixed"}), req("/a/b"), "example.com", "/fixed"},
		"hostname/rewritten":               {rewrite(gr("r", ir.Match{Prefix: "/"}), ir.Rewrite{Hostname: "a.demo.svc.cluster.local"}), req("/x", withHost("Example.com:8080")), "a.demo.svc.cluster.local", "/x"},
		"hostname/kept as received":        {gr("r", ir.Match{Prefix: "/"}), req("/x", withHost("Example.com:8080")), "Example.com:8080", "/x"},
		"hostname and prefix":              {rewrite(gr("r", ir.Match{Prefix: "/backend"}), ir.Rewrite{Hostname: "b.internal", Prefix: "/"}), req("/backend/items"), "b.internal", "/items"},
		"normalised path forwarded":        {gr("r", ir.Match{Prefix: "/"}), req("/a/./b/../c//d/"), "example.com", "/a/c/d/"},
		"normalised encoded dots":          {gr("r", ir.Match{Prefix: "/"}), req("/a/%2e%2E/secret"), "example.com", "/secret"},
		"dotdot never above root":          {gr("r", ir.Match{Prefix: "/"}), req("/../../etc"), "example.com", "/etc"},
		"percent encoding kept":            {rewrite(gr("r", ir.Match{Prefix: "/files"}), ir.Rewrite{Prefix: "/"}), req("/files/a%2Fb%20c"), "example.com", "/a%2Fb%20c"},
		"normalised before prefix rewrite": {rewrite(gr("r", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/"}), req("/x/../backend/./items"), "example.com", "/items"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tab := mustTable(t, mesh(listenerOf(8080, c.route)))
			d := tab.Decide(c.req)
			if d.Status != 0 {
				t.Fatalf("status %d %s", d.Status, d.Reason)
			}
			if d.Host != c.wantHost || d.Path != c.wantPath {
				t.Fatalf("got host %q path %q, want %q %q", d.Host, d.Path, c.wantHost, c.wantPath)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	type want struct {
		status  int
		reason  string
		service string
		router  string
		route   string
		targets []ir.WeightedTarget
	}
	cases := map[string]struct {
		route *ir.GatewayRoute
		req   *Request
		want  want
	}{
		"node provider": {gr("r", ir.Match{Prefix: "/"}), req("/"),
			want{service: "demo/a", targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1}}}},
		"node provider with target port": {func() *ir.GatewayRoute { r := gr("r", ir.Match{Prefix: "/"}); r.Target.Port = 8080; return r }(), req("/"),
			want{service: "demo/a", targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1, Port: 8080}}}},
		"router/first route in order": {to(gr("r", ir.Match{Prefix: "/"}), "demo/r"), req("/api/x"),
			want{service: "demo/r", router: "demo/r-vr", route: "api", targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}}},
		"router/sees rewritten path": {rewrite(to(gr("r", ir.Match{Prefix: "/backend"}), "demo/r"), ir.Rewrite{Prefix: "/"}), req("/backend/api/x"),
			want{service: "demo/r", router: "demo/r-vr", route: "api", targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}}},
		"router/does not see original path": {rewrite(to(gr("r", ir.Match{Prefix: "/api"}), "demo/r"), ir.Rewrite{Prefix: "/"}), req("/api/x"),
			want{service: "demo/r", router: "demo/r-vr", route: "default", targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1, Port: 8080}}}},
		"router/sees rewritten host": {rewrite(to(gr("r", ir.Match{Prefix: "/"}), "demo/r"), ir.Rewrite{Hostname: "c.internal"}), req("/x"),
			want{service: "demo/r", router: "demo/r-vr", route: "host-c", targets: []ir.WeightedTarget{{Node: "demo/c-vn", Weight: 1}}}},
		"router/weighted targets without zero": {to(gr("r", ir.Match{Prefix: "/"}), "demo/r"), req("/split"),
			want{service: "demo/r", router: "demo/r-vr", route: "split", targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 90}, {Node: "demo/b-vn", Weight: 10}}}},
		"router/no route matched": {to(gr("r", ir.Match{Prefix: "/"}), "demo/r"), req("/x", withMethod("POST")),
			want{status: 503, reason: "no route of virtual router demo/r-vr matched", service: "demo/r", router: "demo/r-vr"}},
		"router/route port from target port": {func() *ir.GatewayRoute {
			r := to(gr("r", ir.Match{Prefix: "/"}), "demo/ports")
			r.Target.Port = 8080
			return r
		}(), req("/"),
			want{service: "demo/ports", router: "demo/ports-vr", route: "on-8080", targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1}}}},
		"router/route port 9090": {func() *ir.GatewayRoute {
			r := to(gr("r", ir.Match{Prefix: "/"}), "demo/ports")
			r.Target.Port = 9090
			return r
		}(), req("/"),
			want{service: "demo/ports", router: "demo/ports-vr", route: "on-9090", targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}}},
		"missing service": {to(gr("r", ir.Match{Prefix: "/"}), "demo/ghost"), req("/"),
			want{status: 503, reason: "virtual service demo/ghost not found"}},
		"missing node": {to(gr("r", ir.Match{Prefix: "/"}), "demo/ghost-node"), req("/"),
			want{status: 503, reason: "virtual node demo/ghost-vn not found", service: "demo/ghost-node"}},
		"missing router": {to(gr("r", ir.Match{Prefix: "/"}), "demo/ghost-router"), req("/"),
			want{status: 503, reason: "virtual router demo/ghost-vr not found", service: "demo/ghost-router"}},
		"no provider": {to(gr("r", ir.Match{Prefix: "/"}), "demo/no-provider"), req("/"),
			want{status: 503, reason: "virtual service demo/no-provider has no provider", service: "demo/no-provider"}},
		"only zero weights": {to(gr("r", ir.Match{Prefix: "/"}), "demo/zero"), req("/"),
			want{status: 503, reason: "route nothing of virtual router demo/zero-vr has no target with weight > 0", service: "demo/zero", router: "demo/zero-vr", route: "nothing"}},
		"every target node missing": {to(gr("r", ir.Match{Prefix: "/"}), "demo/ghost-targets"), req("/"),
			want{status: 503, reason: "virtual nodes demo/ghost1-vn, demo/ghost2-vn not found", service: "demo/ghost-targets", router: "demo/ghost-targets-vr", route: "ghosts",
				targets: []ir.WeightedTarget{{Node: "demo/ghost1-vn", Weight: 1}, {Node: "demo/ghost2-vn", Weight: 1}}}},
		"one target node missing keeps its share": {to(gr("r", ir.Match{Prefix: "/"}), "demo/half-ghost"), req("/"),
			want{service: "demo/half-ghost", router: "demo/half-ghost-vr", route: "half",
				targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1}, {Node: "demo/ghost-vn", Weight: 1}}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tab := mustTable(t, mesh(listenerOf(8080, c.route)))
			d := tab.Decide(c.req)
			var got want
			got.status, got.reason, got.targets = d.Status, d.Reason, d.Targets
			if d.Service != nil {
				got.service = d.Service.Name
			}
			if d.Router != nil {
				got.router = d.Router.Name
			}
			if d.Route != nil {
				got.route = d.Route.Name
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			if d.GatewayRoute != c.route {
				t.Fatalf("gateway route %v, want %v", d.GatewayRoute, c.route)
			}
			if ex := tab.Explain(c.req); !reflect.DeepEqual(ex.Decision, d) {
				t.Fatalf("Explain disagrees: %+v", ex.Decision)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(mesh(), "demo/other"); err == nil || !strings.Contains(err.Error(), "demo/other") {
		t.Errorf("unknown gateway: err = %v", err)
	}
	if _, err := New(nil, testGateway); err == nil {
		t.Error("nil config: no error")
	}
	l := listenerOf(8080, gr("r", ir.Match{Prefix: "/"}))
	l.AnyHost = []int{3}
	if _, err := New(mesh(l), testGateway); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("bad index: err = %v", err)
	}
}

func TestExplain(t *testing.T) {
	routes := []*ir.GatewayRoute{
		gr("api", ir.Match{Prefix: "/", Hostname: host("api.example.com"), Headers: []ir.HeaderMatch{{Name: "x-canary-user", Type: ir.HeaderExact, Value: "true"}}}),
		to(gr("backend", ir.Match{Prefix: "/backend"}), "demo/r"),
	}
	routes[1].Priority = 5
	routes[1].Rewrite.Prefix = "/"
	tab := mustTable(t, mesh(listenerOf(8080, routes...)))
	ex := tab.Explain(req("/backend//api/1", withHost("API.example.com:8080")))
	if ex.Host != "api.example.com" || ex.Path != "/backend/api/1" {
		t.Errorf("host %q path %q", ex.Host, ex.Path)
	}
	if len(ex.Steps) != 3 {
		t.Fatalf("steps = %+v, want api, backend, route api", ex.Steps)
	}
	s := ex.Steps[0]
	if s.Name != "api" || s.Matched || s.Group != "hostname api.example.com" {
		t.Errorf("step 0 = %+v", s)
	}
	wantChecks := []Check{
		{Criterion: "hostname api.example.com", Value: "api.example.com", Matched: true},
		{Criterion: "prefix /", Value: "/backend/api/1", Matched: true},
		{Criterion: `header x-canary-user exact "true"`, Value: "absent", Matched: false},
	}
	if !reflect.DeepEqual(s.Checks, wantChecks) {
		t.Errorf("checks = %+v\nwant %+v", s.Checks, wantChecks)
	}
	if s := ex.Steps[1]; s.Name != "backend" || !s.Matched || s.Group != "any hostname" || s.Priority != 5 {
		t.Errorf("step 1 = %+v", s)
	}
	if s := ex.Steps[2]; s.Kind != "route" || s.Name != "api" || !s.Matched || s.Group != "virtual router demo/r-vr" || s.Checks[0].Value != "/api/1" {
		t.Errorf("step 2 = %+v", s)
	}
	if len(ex.Notes) != 1 || ex.Notes[0] != "hostname api.example.com: no route matched" {
		t.Errorf("notes = %q", ex.Notes)
	}
	b, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"criterion":"header x-canary-user exact \"true\""`, `"value":"absent"`, `"decision":{"gatewayRoute":{"name":"backend"`, `"path":"/api/1"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	// No listener: an explanation with no steps.
	ex = tab.Explain(req("/", withPort(1)))
	if ex.Decision.Status != http.StatusNotFound || len(ex.Steps) != 0 {
		t.Errorf("no listener: %+v", ex)
	}
}

// TestSeedTable routes the guide's gateway, read from JSON as a sink would.
func TestSeedTable(t *testing.T) {
	tab := seedTable(t)
	cases := []struct {
		req                     *Request
		route, node, path, host string
	}{
		{req("/backend/items", withHost("gw.example.com")), "demo/backend-app-v1-default-gatewayroute", "demo/backend-app-vn", "/items", "backend-app.demo.svc.cluster.local"},
		{req("/backend/items", withHeader(hdr("X-Canary-User", "true"))), "demo/backend-app-v2-canary-gatewayroute", "demo/backend-app-v2-vn", "/items", "backend-app-v2.demo.svc.cluster.local"},
		{req("/orders", withHost("api.example.com")), "demo/api-example-gatewayroute", "demo/production-api-vn", "/orders", "production-api.demo.svc.cluster.local"},
		{req("/orders", withHost("dev-api.example.com:8080")), "demo/dev-api-example-gatewayroute", "demo/development-api-vn", "/orders", "development-api.demo.svc.cluster.local"},
		{req("/items/17", withHost("shop.example.org")), "demo/items-regex", "demo/backend-app-vn", "/items/17", "shop.example.org"},
	}
	for _, c := range cases {
		d := tab.Decide(c.req)
		if d.Status != 0 || d.GatewayRoute.Name != c.route || d.Targets[0].Node != c.node || d.Path != c.path || d.Host != c.host {
			t.Errorf("%s %s: got status %d %s route %v targets %v path %q host %q", c.req.Host, c.req.Path, d.Status, d.Reason, d.GatewayRoute, d.Targets, d.Path, d.Host)
		}
	}
	if d := tab.Decide(req("/nothing", withHost("gw.example.com"))); d.Status != http.StatusNotFound {
		t.Errorf("unmatched: %+v", d)
	}
}

func seedTable(t testing.TB) *Table {
	t.Helper()
	b, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg ir.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tab, err := New(&cfg, "demo/appmesh-gateway-vg")
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
