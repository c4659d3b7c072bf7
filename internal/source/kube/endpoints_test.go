package kube

import (
	"reflect"
	"testing"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/resource"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceOf(t *testing.T) {
	for host, want := range map[string]string{
		"backend.demo.svc.cluster.local":  "demo/backend",
		"backend.demo.svc.cluster.local.": "demo/backend",
		"backend.demo.svc":                "demo/backend",
		"backend.demo":                    "demo/backend",
		"backend.demo.svc.other.domain":   "",
		"api.example.com":                 "",
		"backend":                         "",
		".demo":                           "",
	} {
		if got := serviceOf(host, "cluster.local"); got != want {
			t.Errorf("serviceOf(%q) = %q, want %q", host, got, want)
		}
	}
	if got := serviceOf("backend.demo.svc.corp.example", "corp.example"); got != "demo/backend" {
		t.Errorf("custom cluster domain: %q", got)
	}
}

func TestReadyAddresses(t *testing.T) {
	yes, no := true, false
	slices := []*discoveryv1.EndpointSlice{
		{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.2"}},
			{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}},
			{Addresses: []string{"10.0.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: &no}},
		}},
		// The same pod in a second slice while it moves between them.
		{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}}},
		{AddressType: discoveryv1.AddressTypeIPv6, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}}},
		{AddressType: discoveryv1.AddressTypeFQDN, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"db.example.com"}}}},
	}
	want := []string{"10.0.0.1", "10.0.0.2", "fd00::1"}
	if got := readyAddresses(slices); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestDiscoverPerListenerPort checks that discovered pods are called at the
// port of whichever node listener is in use: a node with two listeners
// reaches its pods at both ports, and a second node at the same hostname at
// its own, whatever port the Service maps.
func TestDiscoverPerListenerPort(t *testing.T) {
	set := resource.NewSet()
	set.AddFile("nodes.yaml", []byte(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: http}
    - portMapping: {port: 9090, protocol: grpc}
  serviceDiscovery: {dns: {hostname: api.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api-legacy, namespace: demo}
spec:
  listeners: [{portMapping: {port: 7070, protocol: http}}]
  serviceDiscovery: {dns: {hostname: api.demo}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: external, namespace: demo}
spec:
  listeners: [{portMapping: {port: 443, protocol: http}}]
  serviceDiscovery: {dns: {hostname: api.example.com}}
`))
	svcs := []corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "demo"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}}
	eps := []discoveryv1.EndpointSlice{{
		ObjectMeta:  metav1.ObjectMeta{Name: "api-x", Namespace: "demo", Labels: map[string]string{discoveryv1.LabelServiceName: "api"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.2"}}, {Addresses: []string{"10.0.0.1"}}},
	}}
	got := discover(set, svcs, eps, "cluster.local")
	want := map[string][]string{"api.demo.svc.cluster.local": {"10.0.0.1", "10.0.0.2"}, "api.demo": {"10.0.0.1", "10.0.0.2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("discover = %v, want %v", got, want)
	}

	set.Endpoints = got
	cfg, problems := compile.Compile(set)
	for _, p := range problems {
		t.Logf("compile: %s", p)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node string
		port int
		want []string
	}{
		{"demo/api", 8080, []string{"10.0.0.1:8080", "10.0.0.2:8080"}},
		{"demo/api", 9090, []string{"10.0.0.1:9090", "10.0.0.2:9090"}},
		{"demo/api-legacy", 7070, []string{"10.0.0.1:7070", "10.0.0.2:7070"}},
	} {
		n := cfg.Nodes[c.node]
		if n == nil {
			t.Fatalf("node %s not compiled", c.node)
		}
		if got := n.EndpointsAt(c.port); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s at %d: %v, want %v", c.node, c.port, got, c.want)
		}
	}
	if n := cfg.Nodes["demo/external"]; n == nil || len(n.Endpoints) != 0 {
		t.Errorf("a hostname outside the cluster got endpoints: %+v", n)
	}
}
