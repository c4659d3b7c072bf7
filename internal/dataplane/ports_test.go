package dataplane

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/prometheus/client_golang/prometheus"
)

// portsYAML is a gateway whose routes reach the two listeners of node
// demo/api-vn (ports A and B, both http) through its router, and node
// demo/legacy-vn, which shares api-vn's DNS hostname and listens on B only.
func portsYAML(a, b int) string {
	return fmt.Sprintf(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: api, namespace: demo}
spec:
  virtualGateway: {name: gw}
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: api}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: api, namespace: demo}
spec: {provider: {virtualRouter: {virtualRouterRef: {name: api-vr}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: api-vr, namespace: demo}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
    - name: first
      priority: 1
      httpRoute:
        match: {prefix: /first}
        action: {weightedTargets: [{virtualNodeRef: {name: api-vn}, weight: 1, port: %[1]d}]}
    - name: second
      priority: 2
      httpRoute:
        match: {prefix: /second}
        action: {weightedTargets: [{virtualNodeRef: {name: api-vn}, weight: 1, port: %[2]d}]}
    - name: legacy
      priority: 3
      httpRoute:
        match: {prefix: /legacy}
        action: {weightedTargets: [{virtualNodeRef: {name: legacy-vn}, weight: 1}]}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api-vn, namespace: demo}
spec:
  listeners:
    - portMapping: {port: %[1]d, protocol: http}
    - portMapping: {port: %[2]d, protocol: http}
  serviceDiscovery: {dns: {hostname: api.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: legacy-vn, namespace: demo}
spec:
  listeners: [{portMapping: {port: %[2]d, protocol: http}}]
  serviceDiscovery: {dns: {hostname: api.demo.svc.cluster.local}}
`, a, b)
}

// TestBareIPEndpointsPerListenerPort sends requests through a gateway
// listener to a node whose one endpoint is a bare IP, as the Kubernetes
// source gives pods: each route reaches the backend at the port of the
// node listener it targets, and a second node at the same hostname reaches
// the one at its own port.
func TestBareIPEndpointsPerListenerPort(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	g := startGateway(t, compiled(t, portsYAML(a.port, b.port), map[string]string{"api.demo.svc.cluster.local": "127.0.0.1"}))
	for path, want := range map[string]string{"/first": "a", "/second": "b", "/legacy": "b"} {
		for range 3 {
			if got := g.get(path).Backend; got != want {
				t.Errorf("GET %s reached %s, want %s", path, got, want)
			}
		}
	}
}

// TestBareIPEndpointsMixed checks a list of one bare IP and one fixed
// IP:PORT: the bare IP is called at the listener's port, the fixed one at
// its own port whatever the listener.
func TestBareIPEndpointsMixed(t *testing.T) {
	a, b, fixed := startEcho(t, "a"), startEcho(t, "b"), startEcho(t, "fixed")
	g := startGateway(t, compiled(t, portsYAML(a.port, b.port), map[string]string{"api.demo.svc.cluster.local": "127.0.0.1," + fixed.addr}))
	for path, want := range map[string]string{"/first": "a", "/second": "b"} {
		seen := map[string]int{}
		for range 10 {
			seen[g.get(path).Backend]++
		}
		if seen[want] == 0 || seen["fixed"] == 0 || len(seen) != 2 {
			t.Errorf("GET %s reached %v, want %s and fixed", path, seen, want)
		}
	}
}

// TestBareIPEndpointsHealthChecks checks that each listener's health
// checks probe the bare IP at that listener's port as soon as the config
// is applied, before any request.
func TestBareIPEndpointsHealthChecks(t *testing.T) {
	a, b := startHealthy(t, "a"), startHealthy(t, "b")
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "api", ir.Match{Prefix: "/"}))})
	n := &ir.VirtualNode{
		Listeners: []ir.PortProto{{Port: a.port, Protocol: "http"}, {Port: b.port, Protocol: "http"}},
		Endpoints: []string{"127.0.0.1"},
		Policies:  map[int]*ir.NodeListenerPolicy{a.port: {HealthCheck: httpCheck("http")}, b.port: {HealthCheck: httpCheck("http")}},
	}
	addNode(cfg, "api", n)
	g := startGateway(t, cfg)
	for _, be := range []*healthy{a, b} {
		eventually(t, "the endpoint at "+be.addr+" is checked and healthy", func() bool {
			return g.healthGauge("demo/api-vn", be.addr) == 1
		})
	}
	if g.series("meshgate_upstream_endpoint_healthy", "virtual_node", "demo/api-vn", "endpoint", "127.0.0.1") {
		t.Error("the bare IP was checked without a port")
	}
}

// TestTargetPortNotAListener checks a target port that is no listener of
// the node: a bare IP endpoint is called at the target's port.
func TestTargetPortNotAListener(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	cfg := routed(&ir.Route{Targets: []ir.WeightedTarget{{Node: "demo/api-vn", Weight: 1, Port: b.port}}})
	addNode(cfg, "api", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: a.port, Protocol: "http"}}, Endpoints: []string{"127.0.0.1"}})
	g := startGateway(t, cfg)
	for range 3 {
		if got := g.get("/").Backend; got != "b" {
			t.Fatalf("reached %s, want b (the target port %d)", got, b.port)
		}
	}
}

// TestUpstreamAddrsPerPort is the address list each cluster is given at
// apply, for bare, fixed and mixed endpoints.
func TestUpstreamAddrsPerPort(t *testing.T) {
	for name, tc := range map[string]struct {
		eps  []string
		want map[int][]string
	}{
		"bare":  {[]string{"10.0.0.7", "fd00::7"}, map[int][]string{80: {"10.0.0.7:80", "[fd00::7]:80"}, 9090: {"10.0.0.7:9090", "[fd00::7]:9090"}}},
		"fixed": {[]string{"10.0.0.7:7000"}, map[int][]string{80: {"10.0.0.7:7000"}, 9090: {"10.0.0.7:7000"}}},
		"mixed": {[]string{"10.0.0.7", "10.0.0.8:7000"}, map[int][]string{80: {"10.0.0.7:80", "10.0.0.8:7000"}, 9090: {"10.0.0.7:9090", "10.0.0.8:7000"}}},
		"none":  {nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := newMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			u := newUpstreams(systemResolve, m)
			t.Cleanup(u.close)
			n := &ir.VirtualNode{Name: "demo/n", Listeners: []ir.PortProto{{Port: 80, Protocol: "http"}, {Port: 9090, Protocol: "grpc"}}, Endpoints: tc.eps}
			un := u.nodes(map[string]*ir.VirtualNode{n.Name: n}, nil)[n.Name]
			if len(un.addrs) != len(tc.want) {
				t.Fatalf("addrs %v, want %v", un.addrs, tc.want)
			}
			for port, want := range tc.want {
				if got := un.addrs[port]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("port %d: %v, want %v", port, got, want)
				}
			}
		})
	}
}

// TestTargetBareIPNoAllocation checks that finding the endpoints of a node
// with bare IP endpoints costs a request no allocation: the addresses of
// each listener port are built when the config is applied.
func TestTargetBareIPNoAllocation(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	u := newUpstreams(systemResolve, m)
	t.Cleanup(u.close)
	n := &ir.VirtualNode{Name: "demo/n", Listeners: []ir.PortProto{{Port: 80, Protocol: "http"}, {Port: 9090, Protocol: "grpc"}}, Endpoints: []string{"10.0.0.7", "10.0.0.8"}}
	un := u.nodes(map[string]*ir.VirtualNode{n.Name: n}, nil)[n.Name]
	ctx, now := context.Background(), time.Now()
	for _, port := range []int{80, 9090} {
		_, eps, reason := u.target(ctx, un, port, now)
		if reason != "" || len(eps) != 2 || eps[0].addr != "10.0.0.7:"+strconv.Itoa(port) {
			t.Fatalf("port %d: %v %q", port, eps, reason)
		}
		if allocs := testing.AllocsPerRun(100, func() { u.target(ctx, un, port, now) }); allocs != 0 {
			t.Errorf("port %d: %v allocations per request", port, allocs)
		}
	}
}
