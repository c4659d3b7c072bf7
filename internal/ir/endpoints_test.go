package ir

import (
	"reflect"
	"strings"
	"testing"
)

func TestEndpointsAt(t *testing.T) {
	for name, tc := range map[string]struct {
		eps  []string
		port int
		want []string
	}{
		"bare IPv4 takes the port":            {[]string{"10.0.0.7", "10.0.0.8"}, 9090, []string{"10.0.0.7:9090", "10.0.0.8:9090"}},
		"bare IPv6 is bracketed":              {[]string{"fd00::7"}, 8080, []string{"[fd00::7]:8080"}},
		"IP:PORT is kept":                     {[]string{"10.0.0.7:7000", "[fd00::7]:7001"}, 8080, []string{"10.0.0.7:7000", "[fd00::7]:7001"}},
		"mixed":                               {[]string{"10.0.0.7", "10.0.0.9:7000"}, 8080, []string{"10.0.0.7:8080", "10.0.0.9:7000"}},
		"duplicates after filling drop":       {[]string{"10.0.0.7", "10.0.0.7:8080"}, 8080, []string{"10.0.0.7:8080"}},
		"no port: bare IPs are dropped":       {[]string{"10.0.0.7", "10.0.0.9:7000"}, 0, []string{"10.0.0.9:7000"}},
		"no port, only bare IPs":              {[]string{"10.0.0.7"}, 0, []string{}},
		"IPv6 address that looks like a port": {[]string{"fd00::7:80"}, 8080, []string{"[fd00::7:80]:8080"}},
	} {
		t.Run(name, func(t *testing.T) {
			n := &VirtualNode{Endpoints: tc.eps}
			if got := n.EndpointsAt(tc.port); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("EndpointsAt(%d) of %v = %v, want %v", tc.port, tc.eps, got, tc.want)
			}
		})
	}
}

// TestEndpointsAtKeepsFixedSlice checks that a node whose endpoints all
// have ports gets its own slice back: the data plane keys endpoint state
// on the slice, and nothing must be copied for such nodes.
func TestEndpointsAtKeepsFixedSlice(t *testing.T) {
	n := &VirtualNode{Endpoints: []string{"10.0.0.7:7000", "10.0.0.8:7000"}}
	if got := n.EndpointsAt(8080); &got[0] != &n.Endpoints[0] {
		t.Fatal("EndpointsAt copied endpoints that all have ports")
	}
}

func TestValidateEndpoints(t *testing.T) {
	for ep, ok := range map[string]bool{
		"10.0.0.7":        true,
		"fd00::7":         true,
		"10.0.0.7:8080":   true,
		"[fd00::7]:8080":  true,
		"10.0.0.7:0":      false,
		"10.0.0.7:99999":  false,
		"api.example.com": false,
		"api:8080":        false,
		"[fd00::7]":       false,
		"":                false,
	} {
		cfg := &Config{Nodes: map[string]*VirtualNode{"ns/n": {Name: "ns/n", Endpoints: []string{ep}}}}
		err := cfg.Validate()
		if ok && err != nil {
			t.Errorf("%q: %v", ep, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "neither IP nor IP:PORT")) {
			t.Errorf("%q: Validate() = %v, want it rejected", ep, err)
		}
	}
}
