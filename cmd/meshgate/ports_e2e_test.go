package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// portsManifests is a gateway on gwPort whose routes reach the two
// listeners of node ns/api (ports a and b) by path, through its router.
func portsManifests(gwPort, a, b int) string {
	return fmt.Sprintf(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: ns}
spec:
  namespaceSelector: {}
  listeners: [{portMapping: {port: %d, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: api, namespace: ns}
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: api}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: api, namespace: ns}
spec: {provider: {virtualRouter: {virtualRouterRef: {name: api}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: api, namespace: ns}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
    - name: first
      priority: 1
      httpRoute:
        match: {prefix: /first}
        action: {weightedTargets: [{virtualNodeRef: {name: api}, weight: 1, port: %d}]}
    - name: second
      priority: 2
      httpRoute:
        match: {prefix: /second}
        action: {weightedTargets: [{virtualNodeRef: {name: api}, weight: 1, port: %d}]}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api, namespace: ns}
spec:
  listeners:
    - portMapping: {port: %d, protocol: http}
    - portMapping: {port: %d, protocol: http}
  serviceDiscovery: {dns: {hostname: api.ns.svc.cluster.local}}
`, gwPort, a, b, a, b)
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeResolveBareIP runs `serve --resolve HOST=IP`: a VirtualNode with
// two listeners on two loopback backends is reached at the port of the
// listener each route targets; `route` explains the same.
func TestServeResolveBareIP(t *testing.T) {
	a, b := startEcho(t, "first"), startEcho(t, "second")
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mesh.yaml"), portsManifests(port, portOf(t, a), portOf(t, b)))
	g := startServe(t, port, "-f", dir, "--resolve", "api.ns.svc.cluster.local=127.0.0.1")
	for _, want := range []string{"first", "second"} {
		for range 3 {
			code, r, body := g.get(t, "", "/"+want)
			if code != 200 || r.Backend != want {
				t.Fatalf("GET /%s: %d from %q, want %s: %s", want, code, r.Backend, want, body)
			}
		}
	}

	out, errOut, code := runCLI(t, "route", "-f", dir, "--resolve", "api.ns.svc.cluster.local=127.0.0.1", fmt.Sprintf("http://example.com:%d/second", port))
	if code != 0 {
		t.Fatalf("route: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "endpoints "+b) || strings.Contains(out, a) {
		t.Errorf("route does not name %s alone:\n%s", b, out)
	}
}

func TestParseResolve(t *testing.T) {
	got, err := parseResolve([]string{"API.example=10.0.0.7,fd00::7,10.0.0.8:8080,[fd00::8]:9090", "b.example=10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"api.example": {"10.0.0.7", "fd00::7", "10.0.0.8:8080", "[fd00::8]:9090"}, "b.example": {"10.0.0.9"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"a.example", "a.example=", "=10.0.0.7", "a.example=db.local:80", "a.example=10.0.0.7:", "a.example=10.0.0.7:0", "a.example=10.0.0.7,", "a.example=[fd00::7]"} {
		if _, err := parseResolve([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
