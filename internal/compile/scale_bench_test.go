package compile_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/meshgate/meshgate/bench/manifests"
	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
)

// BenchmarkCompileScale measures compiling the generated manifest sets of
// 10, 1,000 and 10,000 GatewayRoutes, decoding excluded, and reports the heap
// the resulting IR keeps alive (IR-MiB): what a served config holds.
func BenchmarkCompileScale(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			set := manifests.Set(manifests.Generate(manifests.Options{Routes: n, Port: 8080}))
			if len(set.Problems) > 0 {
				b.Fatalf("generated set does not decode: %v", set.Problems[0])
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, problems := compile.Compile(set); len(problems) > 0 {
					b.Fatal(problems[0])
				}
			}
			b.StopTimer()
			b.ReportMetric(retainedMiB(func() any { cfg, _ := compile.Compile(set); return cfg }), "IR-MiB")
		})
	}
}

// BenchmarkDecodeScale measures decoding the same sets from YAML, the other
// half of the work a reload does before the new table is built.
func BenchmarkDecodeScale(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			files := manifests.Generate(manifests.Options{Routes: n, Port: 8080})
			size := 0
			for _, f := range files {
				size += len(f.Data)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				manifests.Set(files)
			}
		})
	}
}

// retainedMiB is the live heap that the value built by f keeps reachable.
func retainedMiB(f func() any) float64 {
	var before, after runtime.MemStats
	// Two cycles each time: objects that survived the last cycle only
	// because they were allocated during it are freed by the next one.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if cfg, ok := v.(*ir.Config); !ok || cfg == nil {
		panic("retainedMiB: no config built")
	}
	// f holds the input set; it must stay alive too, or its release would
	// be counted against the IR.
	runtime.KeepAlive(v)
	runtime.KeepAlive(f)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
}
