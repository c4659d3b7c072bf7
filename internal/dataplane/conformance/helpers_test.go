package conformance

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/dataplane"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

// goCmd runs the go command in dir and fails the test with its output.
func goCmd(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// compiled compiles manifests with fixed endpoints for DNS hostnames.
func compiled(t *testing.T, manifests string, endpoints map[string]string) *ir.Config {
	t.Helper()
	set := resource.NewSet()
	set.AddFile("test.yaml", []byte(manifests))
	for host, addr := range endpoints {
		set.Endpoints[host] = []string{addr}
	}
	cfg, problems := compile.Compile(set)
	for _, p := range problems {
		t.Errorf("manifest problem: %s", p)
	}
	if t.Failed() {
		t.FailNow()
	}
	return cfg
}

// startGateway serves gateway demo/gw of cfg on OS-chosen ports and
// returns the address of each gateway port.
func startGateway(t *testing.T, cfg *ir.Config, opts dataplane.Options) map[int]net.Addr {
	t.Helper()
	opts.Listen = func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	p, err := dataplane.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	if err := p.Apply(cfg, "demo/gw"); err != nil {
		t.Fatal(err)
	}
	return p.Addrs()
}

// serviceYAML is VirtualService demo/NAME, provided by VirtualNode
// demo/NAME-vn, which calls NAME.demo.svc.cluster.local at port in protocol.
func serviceYAML(name, protocol string, port int) string {
	return strings.NewReplacer("NAME", name, "PROTOCOL", protocol, "PORT", strconv.Itoa(port)).Replace(`---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: NAME-vn, namespace: demo}
spec:
  listeners: [{portMapping: {port: PORT, protocol: PROTOCOL}}]
  serviceDiscovery: {dns: {hostname: NAME.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: NAME, namespace: demo}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: NAME-vn}}}
`)
}

// port is the TCP port of an address.
func port(a net.Addr) int { return a.(*net.TCPAddr).Port }

// binDir is a directory for built checkers.
func binDir(t *testing.T) string {
	d, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
