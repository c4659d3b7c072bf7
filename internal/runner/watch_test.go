package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/source/file"
)

// liveSink keeps the latest published config for a test that reads it while
// the watcher publishes.
type liveSink struct {
	mu  sync.Mutex
	cfg *ir.Config
}

func (s *liveSink) Apply(cfg *ir.Config, gateway string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	return nil
}

func (s *liveSink) latest() *ir.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// servedPrefixes maps each GatewayRoute served on port 8080 to its prefix,
// and each GatewayRoute to its status reason ("" when active and fine).
func servedPrefixes(cfg *ir.Config) (prefixes, reasons map[string]string) {
	prefixes, reasons = map[string]string{}, map[string]string{}
	for _, r := range cfg.Gateways[0].Listeners[0].Routes {
		prefixes[r.Name] = r.Match.Prefix
	}
	for _, st := range cfg.Statuses {
		if st.Kind == "GatewayRoute" {
			reasons[st.Namespace+"/"+st.Name] = st.Reason
		}
	}
	return prefixes, reasons
}

func namedRoute(name, prefix string) string {
	return fmt.Sprintf(`apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: %s, namespace: ns}
spec:
  httpRoute:
    match: {prefix: %s}
    action: {target: {virtualService: {virtualServiceRef: {name: s}}}}
`, name, prefix)
}

// TestWatchedFilesKeepLastGood runs the serve loop on files on disk: the
// file watcher feeding the runner. A file that does not decode completely,
// cut short by a syntax error or caught half-written, deletes nothing: what
// is missing from it keeps its last good version until the file decodes.
func TestWatchedFilesKeepLastGood(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, filepath.Join(dir, "base.yaml"), base)
	writeFile(t, routes, namedRoute("r1", "/a1")+"---\n"+namedRoute("r2", "/b1"))

	out := &liveSink{}
	r := New(Options{Sink: out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	set, err := file.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update(set); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		file.Watch(ctx, []string{dir}, func(set *resource.Set, err error) {
			if err == nil {
				r.Update(set)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	full := namedRoute("r1", "/a3") + "---\n" + namedRoute("r2", "/b3")
	steps := []struct {
		name, content string
		prefixes      map[string]string
		stale         []string
	}{
		{
			"a syntax error ends the file: r2 after it keeps /b1",
			namedRoute("r1", "/a2") + "---\nkind: [\n---\n" + namedRoute("r2", "/b2"),
			map[string]string{"ns/r1": "/a2", "ns/r2": "/b1"}, []string{"ns/r2"},
		},
		{
			"a half-written file: r2, cut short, keeps /b1",
			full[:strings.LastIndex(full, "match:")+len("match: {pre")],
			map[string]string{"ns/r1": "/a3", "ns/r2": "/b1"}, []string{"ns/r2"},
		},
		{
			"the whole file",
			full,
			map[string]string{"ns/r1": "/a3", "ns/r2": "/b3"}, nil,
		},
		{
			"r2 deleted from a file that decodes",
			namedRoute("r1", "/a4"),
			map[string]string{"ns/r1": "/a4"}, nil,
		},
	}
	for i, st := range steps {
		// A trailing comment makes each attempt new bytes: a watcher that
		// was not yet watching when the first was written sees the next.
		deadline := time.Now().Add(10 * time.Second)
		for try := 0; ; try++ {
			writeFile(t, routes, fmt.Sprintf("%s\n# step %d try %d\n", st.content, i, try))
			seen := func() bool {
				cfg := out.latest()
				prefixes, reasons := servedPrefixes(cfg)
				if fmt.Sprint(prefixes) != fmt.Sprint(st.prefixes) {
					return false
				}
				for name, reason := range reasons {
					want := ""
					for _, s := range st.stale {
						if s == name {
							want = ReasonLastGoodKept
						}
					}
					if reason != want {
						return false
					}
				}
				return true
			}
			ok := false
			for end := time.Now().Add(time.Second); time.Now().Before(end) && !ok; time.Sleep(5 * time.Millisecond) {
				ok = seen()
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				prefixes, reasons := servedPrefixes(out.latest())
				t.Fatalf("%s: serving %v with statuses %v, want %v with %v stale", st.name, prefixes, reasons, st.prefixes, st.stale)
			}
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
