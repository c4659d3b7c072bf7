package kube

import (
	"reflect"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
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
	want := []string{"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:8080"}
	if got := readyAddresses(slices, "8080"); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
