package manifests_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/bench/manifests"
	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/router"
	"github.com/meshgate/meshgate/internal/source/file"
)

// TestGeneratedSetsCompile checks that compile accepts the generated sets
// without a single problem and that each shape's request is served by the
// route it was generated for, so the benchmarks measure what they claim.
func TestGeneratedSetsCompile(t *testing.T) {
	for _, n := range []int{1, 10, 200} {
		files := append(manifests.Generate(manifests.Options{Routes: n, Port: 8080}), manifests.ReloadFile(3))
		cfg, problems := compile.Compile(manifests.Set(files))
		for _, p := range problems {
			t.Errorf("routes=%d: %s", n, p)
		}
		gw := cfg.Gateway(manifests.Gateway)
		if gw == nil || len(gw.Listeners) != 1 {
			t.Fatalf("routes=%d: gateway %s with one listener not compiled: %+v", n, manifests.Gateway, gw)
		}
		if got, want := len(gw.Listeners[0].Routes), n+2; got != want {
			t.Errorf("routes=%d: %d gateway routes compiled, want %d", n, got, want)
		}
		tab, err := router.New(cfg, manifests.Gateway)
		if err != nil {
			t.Fatal(err)
		}
		reqs := []manifests.Request{manifests.WorstCase(),
			{Name: "hot", Method: "GET", Host: "gw.example.org", Path: manifests.HotPath},
			{Name: "reload-probe", Method: "GET", Host: "gw.example.org", Path: manifests.ProbePath(3)},
			{Name: manifests.CatchAll, Method: "GET", Host: "gw.example.org", Path: manifests.ProbePath(2)},
		}
		for s := manifests.ShapePrefix; s < manifests.ShapeCatchAll; s++ {
			if i := manifests.Deepest(n, s); i >= 0 {
				reqs = append(reqs, manifests.RequestFor(i))
			}
		}
		for _, r := range reqs {
			d := tab.Decide(routerRequest(r))
			if d.GatewayRoute == nil || d.GatewayRoute.Name != manifests.Namespace+"/"+r.Name {
				t.Errorf("routes=%d: %s %s%s routed to %+v, want %s", n, r.Host, r.Method, r.Path, d.GatewayRoute, r.Name)
			}
			if d.Status != 0 {
				t.Errorf("routes=%d: %s%s: status %d (%s)", n, r.Host, r.Path, d.Status, d.Reason)
			}
		}
	}
}

// TestTLSListener: with Options.TLS, the one listener terminates TLS with
// the certificate files given, and the routes stay as they are.
func TestTLSListener(t *testing.T) {
	files := manifests.Generate(manifests.Options{Routes: 10, Port: 8443, TLS: &manifests.TLS{CertificateChain: "/c/cert.pem", PrivateKey: "/c/key.pem"}})
	cfg, problems := compile.Compile(manifests.Set(files))
	for _, p := range problems {
		t.Error(p)
	}
	gw := cfg.Gateway(manifests.Gateway)
	if gw == nil || len(gw.Listeners) != 1 {
		t.Fatalf("gateway with one listener not compiled: %+v", gw)
	}
	l := gw.Listeners[0]
	if !l.TLS.Terminates() || l.TLS.Mode != "STRICT" ||
		l.TLS.Certificate.CertificateChain != "/c/cert.pem" || l.TLS.Certificate.PrivateKey != "/c/key.pem" {
		t.Errorf("listener TLS %+v", l.TLS)
	}
	if got := len(l.Routes); got != 10 {
		t.Errorf("%d routes, want 10", got)
	}
}

// TestAccessLog: with Options.AccessLog, the gateway logs to that file in
// the default format.
func TestAccessLog(t *testing.T) {
	files := manifests.Generate(manifests.Options{Routes: 10, Port: 8080, AccessLog: "/logs/access.log"})
	cfg, problems := compile.Compile(manifests.Set(files))
	for _, p := range problems {
		t.Error(p)
	}
	gw := cfg.Gateway(manifests.Gateway)
	if gw == nil || gw.AccessLog == nil || gw.AccessLog.Path != "/logs/access.log" || gw.AccessLog.Text != "" || len(gw.AccessLog.JSON) != 0 {
		t.Fatalf("gateway access log %+v", gw)
	}
}

// TestWriteDirLoads checks that a written set reads back through the file
// source unchanged and that no temporary file is left behind.
func TestWriteDirLoads(t *testing.T) {
	dir := t.TempDir()
	files := manifests.Generate(manifests.Options{Routes: 1500, Port: 8080})
	if err := manifests.WriteDir(dir, append(files, manifests.ReloadFile(0))...); err != nil {
		t.Fatal(err)
	}
	if err := manifests.WriteDir(dir, manifests.ReloadFile(1)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	set, err := file.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	cfg, problems := compile.Compile(set)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if got := len(cfg.Gateway(manifests.Gateway).Listeners[0].Routes); got != 1502 {
		t.Errorf("%d routes loaded from %s, want 1502", got, filepath.Base(dir))
	}
}

func routerRequest(r manifests.Request) *router.Request {
	path, query, _ := strings.Cut(r.Path, "?")
	h := http.Header{}
	for k, v := range r.Header {
		h.Set(k, v)
	}
	return &router.Request{Port: 8080, Method: r.Method, Host: r.Host, Path: path, RawQuery: query, Scheme: "http", Header: h}
}
