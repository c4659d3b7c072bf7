package ir

import (
	"strings"
	"testing"
)

func TestBackendTLS(t *testing.T) {
	defaults := &ClientTLS{Enforce: true, Validation: TLSValidation{TrustFile: "/ca.pem"}}
	own := &ClientTLS{Enforce: true, Validation: TLSValidation{TrustSDSSecret: "ca"}}
	n := &VirtualNode{Name: "ns/n", ClientTLS: defaults, Backends: []Backend{{Service: "ns/a"}, {Service: "ns/b", ClientTLS: own}}}
	for name, tc := range map[string]struct {
		svc  string
		want *ClientTLS
	}{
		"backend without a policy gets the defaults": {"ns/a", defaults},
		"backend policy replaces the defaults":       {"ns/b", own},
		"undeclared service gets the defaults":       {"ns/c", defaults},
	} {
		t.Run(name, func(t *testing.T) {
			if got := n.BackendTLS(n.Backend(tc.svc)); got != tc.want {
				t.Fatalf("BackendTLS(%s) = %+v, want %+v", tc.svc, got, tc.want)
			}
		})
	}
	if n.Backend("ns/c") != nil {
		t.Fatal("Backend of an undeclared service is not nil")
	}
}

func TestValidateBackends(t *testing.T) {
	for name, tc := range map[string]struct {
		backends []Backend
		want     string
	}{
		"distinct":   {[]Backend{{Service: "ns/a"}, {Service: "ns/b"}}, ""},
		"empty name": {[]Backend{{Service: ""}}, "empty or listed twice"},
		"twice":      {[]Backend{{Service: "ns/a"}, {Service: "ns/a"}}, "empty or listed twice"},
	} {
		t.Run(name, func(t *testing.T) {
			c := &Config{Nodes: map[string]*VirtualNode{"ns/n": {Name: "ns/n", Backends: tc.backends}}}
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
