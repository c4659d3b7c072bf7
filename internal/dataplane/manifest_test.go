package dataplane

import (
	"strconv"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

// compiled compiles App Mesh manifests the way serve does, with fixed
// endpoints for DNS hostnames (as --resolve gives them), and fails the test
// on any problem. The manifests' gateway must be demo/gw.
func compiled(t testing.TB, manifests string, endpoints map[string]string) *ir.Config {
	t.Helper()
	set := resource.NewSet()
	set.AddFile("test.yaml", []byte(manifests))
	for host, addrs := range endpoints {
		set.Endpoints[host] = strings.Split(addrs, ",")
	}
	cfg, problems := compile.Compile(set)
	for _, p := range problems {
		t.Errorf("manifest problem: %s", p)
	}
	if t.Failed() {
		t.FailNow()
	}
	if cfg.Gateway(testGateway) == nil {
		t.Fatalf("gateway %s not compiled", testGateway)
	}
	return cfg
}

// nodeYAML is a VirtualNode demo/NAME-vn with one listener, found at
// NAME.demo.svc.cluster.local, and a VirtualService demo/NAME that it provides.
func nodeYAML(name, protocol string, port int) string {
	return strings.NewReplacer("NAME", name, "PROTO", protocol, "PORT", strconv.Itoa(port)).Replace(`
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: NAME-vn, namespace: demo}
spec:
  listeners:
    - portMapping: {port: PORT, protocol: PROTO}
  serviceDiscovery:
    dns: {hostname: NAME.demo.svc.cluster.local}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: NAME, namespace: demo}
spec:
  awsName: NAME.demo.svc.cluster.local
  provider:
    virtualNode:
      virtualNodeRef: {name: NAME-vn}
`)
}

// hostOf is the DNS hostname nodeYAML gives node NAME.
func hostOf(name string) string { return name + ".demo.svc.cluster.local" }
