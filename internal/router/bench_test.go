package router

import (
	"fmt"
	"net/http"
	"testing"
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
