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

	"github.com/meshgate/meshgate/internal/certs/certstest"
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

// twoListenerYAML is VirtualGateway demo/gw with two listeners in
// protocol, 8080 in cleartext and 8443 with STRICT TLS (the certificate
// that gatewayCert writes into dir), and a GatewayRoute of kind (httpRoute,
// http2Route or grpcRoute) for each port, matching match and sending to
// VirtualService demo/target.
func twoListenerYAML(protocol, kind, match, target, dir string) string {
	return strings.NewReplacer("PROTOCOL", protocol, "KIND", kind, "MATCH", match, "TARGET", target, "DIR", dir).Replace(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: PROTOCOL}
    - portMapping: {port: 8443, protocol: PROTOCOL}
      tls:
        mode: STRICT
        certificate:
          file: {certificateChain: DIR/gw.pem, privateKey: DIR/gw.key}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: cleartext, namespace: demo}
spec:
  virtualGateway: {name: gw}
  KIND:
    match: {MATCH, port: 8080}
    action: {target: {virtualService: {virtualServiceRef: {name: TARGET}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: tls, namespace: demo}
spec:
  virtualGateway: {name: gw}
  KIND:
    match: {MATCH, port: 8443}
    action: {target: {virtualService: {virtualServiceRef: {name: TARGET}}}}
`)
}

// gatewayCert writes a certificate for sans, issued by a new CA, into dir
// as gw.pem and gw.key, and the CA as ca.pem.
func gatewayCert(t *testing.T, dir string, sans ...string) (*certstest.CA, *certstest.Leaf) {
	t.Helper()
	ca := certstest.NewCA(t, "ca")
	leaf := ca.Issue(t, "gw", sans...)
	certstest.WriteFile(t, filepath.Join(dir, "gw.pem"), leaf.CertPEM)
	certstest.WriteFile(t, filepath.Join(dir, "gw.key"), leaf.KeyPEM)
	certstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	return ca, leaf
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
