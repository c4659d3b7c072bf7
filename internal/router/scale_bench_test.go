package router_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/bench/manifests"
	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/router"
)

var scaleConfigs sync.Map // route count → *ir.Config

// scaleConfig compiles the generated manifest set of n GatewayRoutes once
// per process, so benchmarks of the same size share it.
func scaleConfig(b *testing.B, n int) *ir.Config {
	b.Helper()
	if v, ok := scaleConfigs.Load(n); ok {
		return v.(*ir.Config)
	}
	cfg, problems := compile.Compile(manifests.Set(manifests.Generate(manifests.Options{Routes: n, Port: 8080})))
	if len(problems) > 0 {
		b.Fatalf("generated set of %d routes does not compile cleanly: %v", n, problems[0])
	}
	scaleConfigs.Store(n, cfg)
	return cfg
}

// BenchmarkDecideScale measures one routing decision against tables of 10,
// 1,000 and 10,000 generated GatewayRoutes, for a request of every route
// shape aimed at the deepest route of that shape, and for the worst case: a
// request only the last candidate (the catch-all) serves, after every
// hostname suffix and every route that cannot be excluded by its path was
// tried.
func BenchmarkDecideScale(b *testing.B) {
	shapes := []struct {
		name  string
		shape manifests.Shape
	}{
		{"prefix", manifests.ShapePrefix},
		{"host-exact", manifests.ShapeHostExact},
		{"host-prefix", manifests.ShapeHostPrefix},
		{"host-suffix", manifests.ShapeHostSuffix},
		{"header", manifests.ShapeHeader},
		{"exact-path", manifests.ShapeExactPath},
		{"query", manifests.ShapeQuery},
		{"regex", manifests.ShapeRegex},
	}
	for _, n := range []int{10, 1000, 10000} {
		cases := []manifests.Request{}
		names := []string{}
		for _, s := range shapes {
			if i := manifests.Deepest(n, s.shape); i >= 0 {
				cases = append(cases, manifests.RequestFor(i))
				names = append(names, s.name)
			}
		}
		cases = append(cases, manifests.WorstCase())
		names = append(names, "worst")
		for k, c := range cases {
			b.Run(fmt.Sprintf("routes=%d/%s", n, names[k]), func(b *testing.B) {
				tab, err := router.New(scaleConfig(b, n), manifests.Gateway)
				if err != nil {
					b.Fatal(err)
				}
				r := toRouterRequest(c)
				if d := tab.Decide(r); d.GatewayRoute == nil || d.GatewayRoute.Name != manifests.Namespace+"/"+c.Name {
					b.Fatalf("%s%s routed to %+v, want %s", c.Host, c.Path, d.GatewayRoute, c.Name)
				}
				b.ReportAllocs()
				for b.Loop() {
					tab.Decide(r)
				}
			})
		}
	}
}

// BenchmarkNewScale measures building the routing table a reload swaps in.
func BenchmarkNewScale(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			cfg := scaleConfig(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := router.New(cfg, manifests.Gateway); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(tableHeap(b, cfg))/(1<<20), "table-MiB")
		})
	}
}

// tableHeap is the heap one table keeps alive beyond the config it was
// built from, in bytes.
func tableHeap(b *testing.B, cfg *ir.Config) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, err := router.New(cfg, manifests.Gateway)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tab)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// toRouterRequest is the request as the data plane hands it to Decide: the
// header map as net/http parsed it, with the usual headers of a client.
func toRouterRequest(r manifests.Request) *router.Request {
	path, query, _ := strings.Cut(r.Path, "?")
	h := http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}}
	for k, v := range r.Header {
		h.Set(k, v)
	}
	return &router.Request{Port: 8080, Method: r.Method, Host: r.Host, Path: path, RawQuery: query, Scheme: "http", Header: h}
}

// TestDecideScaleAllocations keeps Decide allocation-free for the request
// of every benchmark shape, rewrite included, on a table large enough to be
// indexed in every way the generated set allows.
func TestDecideScaleAllocations(t *testing.T) {
	const n = 1000
	cfg, problems := compile.Compile(manifests.Set(manifests.Generate(manifests.Options{Routes: n, Port: 8080})))
	if len(problems) > 0 {
		t.Fatalf("generated set does not compile cleanly: %v", problems[0])
	}
	tab, err := router.New(cfg, manifests.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	reqs := []manifests.Request{manifests.WorstCase()}
	for s := manifests.ShapePrefix; s < manifests.ShapeCatchAll; s++ {
		reqs = append(reqs, manifests.RequestFor(manifests.Deepest(n, s)))
	}
	for _, c := range reqs {
		r := toRouterRequest(c)
		if d := tab.Decide(r); d.GatewayRoute == nil || d.GatewayRoute.Name != manifests.Namespace+"/"+c.Name {
			t.Fatalf("%s%s routed to %+v, want %s", c.Host, c.Path, d.GatewayRoute, c.Name)
		}
		if a := testing.AllocsPerRun(100, func() { tab.Decide(r) }); a != 0 {
			t.Errorf("%s%s: %v allocations per Decide, want 0", c.Host, c.Path, a)
		}
	}
}
