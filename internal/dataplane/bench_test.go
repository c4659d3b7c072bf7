package dataplane

import (
	"io"
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

// BenchmarkProxy measures one proxied GET over real loopback sockets,
// client → gateway → backend, with keep-alive on both hops.
func BenchmarkProxy(b *testing.B) {
	bk := startBackend(b, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	}))
	g := startGateway(b, meshConfig([]*ir.Listener{listenerOf(8080,
		withRewrite(route("r", "b", ir.Match{Prefix: "/api"}), ir.Rewrite{Prefix: "/", Hostname: "b.demo.svc.cluster.local"}))}, bk))
	url := g.url(8080, "/api/items?page=2")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := g.client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
