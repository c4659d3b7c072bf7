package ir

import (
	"errors"
	"fmt"
	"strings"
)

// Validate checks that the config is internally consistent: route indexes are
// in range, ports and weights are sane, a service has at most one provider. A
// sink never publishes a config that fails it. References to services, routers
// and nodes that are absent are allowed: compile keeps a route whose target is
// missing so that requests it matches get a 503 that says why, instead of
// falling through to a less specific route.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, g := range c.Gateways {
		for _, l := range g.Listeners {
			if l.Port < 1 || l.Port > 65535 {
				bad("gateway %s: listener port %d out of range", g.Name, l.Port)
			}
			check := func(idx []int) {
				for _, i := range idx {
					if i < 0 || i >= len(l.Routes) {
						bad("gateway %s port %d: route index %d out of range", g.Name, l.Port, i)
					}
				}
			}
			for _, idx := range l.Hosts {
				check(idx)
			}
			for _, s := range l.Suffixes {
				check(s.Routes)
			}
			check(l.AnyHost)
		}
	}
	for name, s := range c.Services {
		switch {
		case s.Node != "" && s.Router != "":
			bad("virtual service %s: both node and router provider", name)
		}
	}
	for name, r := range c.Routers {
		for _, rt := range r.Routes {
			total := 0
			for _, t := range rt.Targets {
				if t.Weight < 0 {
					bad("virtual router %s route %s: negative weight", name, rt.Name)
				}
				total += t.Weight
			}
			if total != rt.TotalWeight {
				bad("virtual router %s route %s: total weight %d, targets sum to %d", name, rt.Name, rt.TotalWeight, total)
			}
		}
	}
	for name, n := range c.Nodes {
		seen := map[string]bool{}
		for _, b := range n.Backends {
			if b.Service == "" || seen[b.Service] {
				bad("virtual node %s: backend %q is empty or listed twice", name, b.Service)
			}
			seen[b.Service] = true
		}
	}
	c.validateEndpoints(bad)
	c.validateResilience(bad)
	c.validateTLS(bad)
	return errors.Join(errs...)
}

// Gateway returns the gateway named "namespace/name", or nil.
func (c *Config) Gateway(name string) *Gateway {
	for _, g := range c.Gateways {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// SelectGateway returns the gateway named "namespace/name", or, when name is
// empty, the only gateway; the error says what to choose from.
func (c *Config) SelectGateway(name string) (*Gateway, error) {
	if name != "" {
		if g := c.Gateway(name); g != nil {
			return g, nil
		}
		return nil, fmt.Errorf("VirtualGateway %s is not in the manifests or is invalid", name)
	}
	switch len(c.Gateways) {
	case 0:
		return nil, errors.New("no valid VirtualGateway in the manifests")
	case 1:
		return c.Gateways[0], nil
	}
	var names []string
	for _, g := range c.Gateways {
		names = append(names, g.Name)
	}
	return nil, fmt.Errorf("the manifests hold %d VirtualGateways (%s); choose one with --gateway NAMESPACE/NAME", len(names), strings.Join(names, ", "))
}
