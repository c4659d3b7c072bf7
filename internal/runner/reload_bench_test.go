package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/meshgate/meshgate/bench/manifests"
	"github.com/meshgate/meshgate/internal/dataplane"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/runner"
	"github.com/meshgate/meshgate/internal/source/file"
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
			run := benchRunner(startPlane(b))
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

// startPlane starts a data plane whose listeners take loopback ports.
func startPlane(b *testing.B) *dataplane.Plane {
	plane, err := dataplane.New(dataplane.Options{Listen: func(int) (net.Listener, error) {
		return net.Listen("tcp", "127.0.0.1:0")
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plane.Shutdown(context.Background()) })
	return plane
}

// benchRunner is a runner of the generated gateway that applies to sink.
func benchRunner(sink runner.Publisher) *runner.Runner {
	return runner.New(runner.Options{
		Gateway:   manifests.Gateway,
		Endpoints: map[string][]string{manifests.BackendHost: {"127.0.0.1:9"}},
		Sink:      sink,
		Logger:    slog.New(slog.DiscardHandler),
	})
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

// BenchmarkReloadFileScale measures one reload the way `meshgate serve -f DIR`
// does it, at 10 and 10,000 generated GatewayRoutes: from one manifest file
// renamed into the watched directory to the new table applied by a real
// data plane. It includes the watcher noticing the change and its settle
// time (5 ms), reading and decoding the files, compiling, validating,
// building the router and applying. Between reloads the benchmark waits,
// untimed, for the previous reload's garbage collection and for the
// watcher's quiet period, so each reload is one that comes after a quiet
// spell.
//
// held-MiB is the live heap after the reloads: what the watcher, the runner
// and the data plane keep between reloads.
func BenchmarkReloadFileScale(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			files := append(manifests.Generate(manifests.Options{Routes: n, Port: 8080}), manifests.ReloadFile(0))
			if err := manifests.WriteDir(dir, files...); err != nil {
				b.Fatal(err)
			}
			// The generated files are garbage once written.
			files = nil
			base := liveHeap()
			sink := &signalSink{Publisher: startPlane(b), applied: make(chan struct{}, 1)}
			run := benchRunner(sink)
			paths := []string{dir}
			set, err := file.Load(paths)
			if err != nil {
				b.Fatal(err)
			}
			if err := run.Update(set); err != nil {
				b.Fatal(err)
			}
			<-sink.applied
			ctx, cancel := context.WithCancel(context.Background())
			updated := make(chan error, 1)
			watching := make(chan struct{})
			go func() {
				defer close(watching)
				file.Watch(ctx, paths, func(set *resource.Set, err error) {
					if err == nil {
						err = run.Update(set)
					}
					updated <- err
				})
			}()
			b.Cleanup(func() {
				cancel()
				<-watching
			})
			// Watch starts by reading the files; let it finish before the
			// first change.
			time.Sleep(200 * time.Millisecond)
			b.ReportAllocs()
			b.ResetTimer()
			for gen := 1; gen <= b.N; gen++ {
				if err := manifests.WriteDir(dir, manifests.ReloadFile(gen)); err != nil {
					b.Fatal(err)
				}
				<-sink.applied
				b.StopTimer()
				if err := <-updated; err != nil {
					b.Fatal(err)
				}
				time.Sleep(80 * time.Millisecond)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(liveHeap()-base)/(1<<20), "held-MiB")
			runtime.KeepAlive(run)
		})
	}
}

// signalSink passes every config on and says when one is applied.
type signalSink struct {
	runner.Publisher
	applied chan struct{}
}

func (s *signalSink) Apply(cfg *ir.Config, gateway string) error {
	err := s.Publisher.Apply(cfg, gateway)
	s.applied <- struct{}{}
	return err
}
