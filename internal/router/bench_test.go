package router

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tab := mustTable(b, realisticConfig(b, n))
			// A route in the middle of the table, in the any-host group,
			// behind a rewrite-free prefix match.
			mid := n / 2
			for mid%7 == 3 || mid%7 == 5 || mid%4 != 0 {
				mid++
			}
			r := &Request{Port: 8080, Method: http.MethodGet, Host: "gw.example.net:8080",
				Path: fmt.Sprintf("/svc%d/items/42", mid), RawQuery: "page=2", Scheme: "http",
				Header: http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}}}
			want := fmt.Sprintf("filler-%d", mid)
			if n < 10000 && mid >= n {
				r.Path, want = "/backend/items", "backend"
			}
			if d := tab.Decide(r); d.GatewayRoute == nil || d.GatewayRoute.Name != want {
				b.Fatalf("benchmark request routed to %+v, want %s", d.GatewayRoute, want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				tab.Decide(r)
			}
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		normalizePath("/a/b/c/items/42")
	}
}

// BenchmarkDecideSharedPath measures routes that share one path prefix and
// differ only by a header, a query parameter, a regex's literal suffix, or
// by a regex with no literal at either end, which no index can narrow: the
// request is for the last of n such routes.
func BenchmarkDecideSharedPath(b *testing.B) {
	shapes := []struct {
		name  string
		route func(i int) ir.Match
		req   func(r *Request, i int)
	}{
		{"header", func(i int) ir.Match {
			return ir.Match{Prefix: "/api/", Headers: []ir.HeaderMatch{{Name: "x-tenant", Type: ir.HeaderExact, Value: fmt.Sprint(i)}}}
		}, func(r *Request, i int) { r.Header.Set("X-Tenant", fmt.Sprint(i)) }},
		{"query", func(i int) ir.Match {
			return ir.Match{Prefix: "/api/", Query: []ir.QueryMatch{{Name: "tenant", Exact: str(fmt.Sprint(i))}}}
		}, func(r *Request, i int) { r.RawQuery = fmt.Sprintf("page=2&tenant=%d", i) }},
		{"regex-suffix", func(i int) ir.Match {
			return ir.Match{PathRegex: mustRegexp(b, fmt.Sprintf(`/api/.*/t%d`, i))}
		}, func(r *Request, i int) { r.Path = fmt.Sprintf("/api/x/t%d", i) }},
		{"regex-unindexable", func(i int) ir.Match {
			return ir.Match{PathRegex: mustRegexp(b, fmt.Sprintf(`.*/t%d/.*`, i))}
		}, func(r *Request, i int) { r.Path = fmt.Sprintf("/api/t%d/x", i) }},
	}
	for _, s := range shapes {
		for _, n := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/routes=%d", s.name, n), func(b *testing.B) {
				routes := make([]*ir.GatewayRoute, n)
				for i := range routes {
					routes[i] = gr(fmt.Sprintf("r%d", i), s.route(i))
				}
				tab := mustTable(b, mesh(listenerOf(8080, routes...)))
				r := req("/api/items")
				s.req(r, n-1)
				if d := tab.Decide(r); d.GatewayRoute == nil || d.GatewayRoute.Name != fmt.Sprintf("r%d", n-1) {
					b.Fatalf("routed to %+v", d.GatewayRoute)
				}
				b.ReportAllocs()
				for b.Loop() {
					tab.Decide(r)
				}
			})
		}
	}
}
