package ir

import (
	"strings"
	"testing"
)

func TestValidateResilience(t *testing.T) {
	neg := int64(-1)
	cases := map[string]struct {
		edit func(c *Config)
		want string // "" for valid
	}{
		"valid":                  {func(*Config) {}, ""},
		"negative gateway pool":  {func(c *Config) { c.Gateways[0].Listeners[0].Pool = &ConnectionPool{MaxRequests: -1} }, "negative connection pool limit"},
		"zero interval":          {func(c *Config) { c.Nodes["n"].Policies[80].HealthCheck.IntervalMillis = 0 }, "health check needs"},
		"zero threshold":         {func(c *Config) { c.Nodes["n"].Policies[80].HealthCheck.HealthyThreshold = 0 }, "health check needs"},
		"negative route timeout": {func(c *Config) { c.Routers["r"].Routes[0].Timeout = &Timeout{PerRequestMillis: &neg} }, "negative timeout"},
		"negative retries":       {func(c *Config) { c.Routers["r"].Routes[0].Retry.MaxRetries = -1 }, "negative retry"},
		"percent over 100":       {func(c *Config) { c.Nodes["n"].Policies[80].OutlierDetection.MaxEjectionPercent = 101 }, "outlier detection needs"},
		"no server errors":       {func(c *Config) { c.Nodes["n"].Policies[80].OutlierDetection.MaxServerErrors = 0 }, "outlier detection needs"},
		"nil policy is allowed":  {func(c *Config) { c.Nodes["n"].Policies[81] = nil }, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &Config{
				Gateways: []*Gateway{{Name: "g", Listeners: []*Listener{{Port: 8080, Protocol: "http"}}}},
				Routers:  map[string]*VirtualRouter{"r": {Name: "r", Routes: []*Route{{Name: "rt", Retry: DefaultRetryPolicy()}}}},
				Nodes: map[string]*VirtualNode{"n": {Name: "n", Policies: map[int]*NodeListenerPolicy{80: {
					HealthCheck:      &HealthCheck{Protocol: "http", IntervalMillis: 5000, TimeoutMillis: 2000, HealthyThreshold: 2, UnhealthyThreshold: 2},
					OutlierDetection: &OutlierDetection{MaxServerErrors: 5, IntervalMillis: 10000, BaseEjectionDurationMillis: 30000, MaxEjectionPercent: 10},
				}}}},
			}
			tc.edit(c)
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
