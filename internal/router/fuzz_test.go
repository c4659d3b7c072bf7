package router

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

// realisticConfig is a gateway with routes of every kind, hostname groups of
// each sort, and an any-host group large enough to be indexed, plus n filler
// prefix routes spread over the groups.
func realisticConfig(t testing.TB, n int) *ir.Config {
	t.Helper()
	routes := []*ir.GatewayRoute{
		gr("items-regex", ir.Match{PathRegex: mustRegexp(t, "/items/[0-9]+")}),
		gr("exact-health", ir.Match{PathExact: "/healthz", Method: "GET"}),
		rewrite(gr("canary", ir.Match{Prefix: "/backend", Headers: []ir.HeaderMatch{{Name: "x-canary-user", Type: ir.HeaderExact, Value: "true"}}}), ir.Rewrite{Prefix: "/", Hostname: "b.demo.svc.cluster.local"}),
		rewrite(to(gr("backend", ir.Match{Prefix: "/backend"}), "demo/r"), ir.Rewrite{Prefix: "/"}),
		rewrite(gr("maroon", ir.Match{Prefix: "/maroon/"}), ir.Rewrite{Prefix: "/red/"}),
		rewrite(gr("old", ir.Match{PathExact: "/old"}), ir.Rewrite{Path: "/new"}),
		gr("grpc", ir.Match{ServiceName: "color.ColorService", Headers: []ir.HeaderMatch{{Name: "color", Type: ir.HeaderRegex, Regex: mustRegexp(t, "red|blue")}}}),
		gr("grpc-method", ir.Match{ServiceName: "color.ColorService", MethodName: "GetColor"}),
		gr("range", ir.Match{Prefix: "/v", Headers: []ir.HeaderMatch{{Name: "x-n", Type: ir.HeaderRange, Start: 10, End: 20, Invert: true}}}),
		gr("query", ir.Match{Prefix: "/q", Query: []ir.QueryMatch{{Name: "a"}, {Name: "b", Exact: str("x y")}}}),
		gr("not-mobile", ir.Match{Prefix: "/app", Headers: []ir.HeaderMatch{{Name: "x-mobile", Type: ir.HeaderPresent, Invert: true}}}),
		gr("post", ir.Match{Prefix: "/submit", Method: "POST", Scheme: "https"}),
		rewrite(gr("api", ir.Match{Prefix: "/", Hostname: host("api.example.com")}), ir.Rewrite{Prefix: "/", Hostname: "a.demo.svc.cluster.local"}),
		gr("api-v2", ir.Match{Prefix: "/v2", Hostname: host("api.example.com"), Headers: []ir.HeaderMatch{{Name: "x-v", Type: ir.HeaderSuffix, Value: "2"}}}),
		to(gr("wild", ir.Match{Prefix: "/", Hostname: suffix(".example.com")}), "demo/b"),
		to(gr("wild-deep", ir.Match{Prefix: "/deep", Hostname: suffix(".deep.example.com")}), "demo/ghost-node"),
		to(gr("ghost", ir.Match{Prefix: "/ghost"}), "demo/ghost"),
		to(gr("split", ir.Match{Prefix: "/split"}), "demo/r"),
		to(gr("half", ir.Match{Prefix: "/half"}), "demo/half-ghost"),
	}
	hosts := []string{"", "", "api.example.com", "shop.example.org"}
	for i := 0; i < n; i++ {
		m := ir.Match{Prefix: fmt.Sprintf("/svc%d/", i)}
		switch i % 7 {
		case 3:
			m.Headers = []ir.HeaderMatch{{Name: "x-tenant", Type: ir.HeaderExact, Value: fmt.Sprint(i)}}
		case 5:
			m = ir.Match{PathExact: fmt.Sprintf("/exact/%d", i)}
		}
		if h := hosts[i%len(hosts)]; h != "" {
			m.Hostname = host(h)
		}
		routes = append(routes, gr(fmt.Sprintf("filler-%d", i), m))
	}
	routes = append(routes, to(gr("catch-all", ir.Match{Prefix: "/"}), "demo/b"))
	return mesh(listenerOf(8080, routes...), listenerOf(9090, gr("other-port", ir.Match{Prefix: "/"})))
}

func FuzzDecide(f *testing.F) {
	tab := mustTable(f, realisticConfig(f, 40))
	seeds := []struct{ host, path, query, hname, hvalue, method string }{
		{"api.example.com", "/v2/x", "", "x-v", "v2", "GET"},
		{"x.deep.example.com:8080", "/deep//x/../y", "", "", "", "GET"},
		{"example.org", "/backend/items", "a=1", "x-canary-user", "true", "GET"},
		{"EXAMPLE.org", "/maroon/tell", "fishes=nemo", "", "", "GET"},
		{"h", "/color.ColorService/GetColor", "", "color", "red", "POST"},
		{"h", "/v1", "", "x-n", "15", "GET"},
		{"h", "/q", "a&b=x+y", "", "", "GET"},
		{"[::1]:80", "/%2e%2e/%2E./x", "", "x-mobile", "", "PUT"},
		{"shop.example.org", "/svc7/x", "", "x-tenant", "7", "GET"},
		{"", "", "", "", "", ""},
		{"h", "/old", "", "", "", "GET"},
		{"h", "/split/a", "", "", "", "GET"},
		{"h", "/exact/12", "", "", "", "GET"},
	}
	for _, s := range seeds {
		f.Add(s.host, s.path, s.query, s.hname, s.hvalue, s.method, 8080)
	}
	f.Add("h", "/", "", "", "", "GET", 9090)
	f.Fuzz(func(t *testing.T, hostname, path, query, hname, hvalue, method string, port int) {
		h := http.Header{}
		if hname != "" {
			h[http.CanonicalHeaderKey(hname)] = []string{hvalue}
		}
		r := &Request{Port: port, Method: method, Host: hostname, Path: path, RawQuery: query, Scheme: "http", Header: h}
		d := tab.Decide(r)
		switch {
		case d.GatewayRoute == nil:
			if d.Status != http.StatusNotFound {
				t.Fatalf("no route but status %d", d.Status)
			}
		case !strings.HasPrefix(d.Path, "/"):
			t.Fatalf("rewritten path %q does not start with /", d.Path)
		case d.Status == 0 && len(d.Targets) == 0:
			t.Fatalf("proxy decision without targets: %+v", d)
		case d.Status != 0 && d.Reason == "":
			t.Fatalf("status %d without reason", d.Status)
		}
		// The indexed lookup and the exhaustive one must agree.
		if ex := tab.Explain(r); !reflect.DeepEqual(ex.Decision, d) {
			t.Fatalf("Decide %+v\nExplain %+v", d, ex.Decision)
		}
		n := normalizePath(path)
		if !strings.HasPrefix(n, "/") || normalizePath(n) != n || strings.Contains(n, "//") {
			t.Fatalf("normalizePath(%q) = %q, not normal", path, n)
		}
	})
}
