package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"testing"

	"github.com/meshgate/meshgate/bench/manifests"
	"github.com/meshgate/meshgate/internal/dataplane"
	"github.com/meshgate/meshgate/internal/runner"
)

// BenchmarkReloadScale measures one reload of a gateway serving 10, 1,000
// and 10,000 generated GatewayRoutes, from the manifest bytes to the new
// table swapped into a real data plane: decoding, compiling, validating,
// building the router and applying. The file watcher's settle time (and
// reading the files) comes on top of this in `meshgate serve`.
//
// held-MiB is the live heap after a reload, above what the benchmark itself
// holds (the manifest bytes): what the runner and the data plane keep
// between reloads.
func BenchmarkReloadScale(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			files := manifests.Generate(manifests.Options{Routes: n, Port: 8080})
			base := liveHeap()
			plane, err := dataplane.New(dataplane.Options{Listen: func(int) (net.Listener, error) {
				return net.Listen("tcp", "127.0.0.1:0")
			}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { plane.Shutdown(context.Background()) })
			run := runner.New(runner.Options{
				Gateway:   manifests.Gateway,
				Endpoints: map[string][]string{manifests.BackendHost: {"127.0.0.1:9"}},
				Sink:      plane,
				Logger:    slog.New(slog.DiscardHandler),
			})
			if err := run.Update(manifests.Set(append(files, manifests.ReloadFile(0)))); err != nil {
				b.Fatal(err)
			}
			gen := 0
			b.ReportAllocs()
			for b.Loop() {
				gen++
				if err := run.Update(manifests.Set(append(files, manifests.ReloadFile(gen)))); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(liveHeap()-base)/(1<<20), "held-MiB")
			runtime.KeepAlive(run)
			runtime.KeepAlive(files)
		})
	}
}

// liveHeap is the heap in use after the garbage of earlier work is gone.
func liveHeap() int64 {
	var ms runtime.MemStats
	// Two cycles: objects that survived the first only because they were
	// allocated during it are freed by the second.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
