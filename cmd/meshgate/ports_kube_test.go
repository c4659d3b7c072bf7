//go:build !standalone

package main

import (
	"fmt"
	"net"
	"testing"

	"github.com/meshgate/meshgate/internal/kubetest"
)

// TestKubernetesNodeListenerPorts runs `serve --kubernetes` against a real
// API server with a VirtualNode of two listeners (8080 and 9090) whose
// Service maps only 8080: a pod (a test host in a network namespace, named
// by an EndpointSlice) serves a different backend on each port, and each
// route reaches the one at the port of the listener it targets.
func TestKubernetesNodeListenerPorts(t *testing.T) {
	env := kubetest.Shared(t)
	kubeconfig := writeKubeconfig(t, env.Config)
	ns := kubetest.NewNetns(t, 1)
	ip := ns.IPs()[0]
	serveEcho(t, ns.Listen(t, net.JoinHostPort(ip, "8080")), "http-8080")
	serveEcho(t, ns.Listen(t, net.JoinHostPort(ip, "9090")), "admin-9090")
	port := freePort(t)
	g := startKubeGateway(t, "127.0.0.1", port, "--kubeconfig", kubeconfig, "--gateway", "kports/gw")

	k := newCluster(t, env.Client)
	k.apply(fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: kports}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: kports-mesh}
spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kports}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: kports}
spec:
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kports}}
  listeners: [{portMapping: {port: %d, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: api, namespace: kports}
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: api}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: api, namespace: kports}
spec: {provider: {virtualRouter: {virtualRouterRef: {name: api}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: api, namespace: kports}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
  - name: main
    priority: 1
    httpRoute:
      match: {prefix: /main}
      action: {weightedTargets: [{virtualNodeRef: {name: api}, weight: 1, port: 8080}]}
  - name: admin
    priority: 2
    httpRoute:
      match: {prefix: /admin}
      action: {weightedTargets: [{virtualNodeRef: {name: api}, weight: 1, port: 9090}]}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api, namespace: kports}
spec:
  listeners:
  - portMapping: {port: 8080, protocol: http}
  - portMapping: {port: 9090, protocol: http}
  serviceDiscovery: {dns: {hostname: api.kports.svc.cluster.local}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: kports}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-abc, namespace: kports, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
ports: [{port: 8080, protocol: TCP}]
endpoints:
- {addresses: [%s], conditions: {ready: true}}
`, port, ip))
	kubetest.Eventually(t, kubeWait, "the gateway to be ready", g.ready)
	for path, want := range map[string]string{"/main": "http-8080", "/admin": "admin-9090"} {
		kubetest.Eventually(t, kubeWait, "GET "+path+" to reach "+want, func() bool {
			b, _ := backendOf(g.url + path)
			return b == want
		})
		for range 5 {
			if b, msg := backendOf(g.url + path); b != want {
				t.Fatalf("GET %s reached %q %s, want %s", path, b, msg, want)
			}
		}
	}
}
