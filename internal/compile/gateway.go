package compile

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
)

var gatewayProtocols = []string{"http", "http2", "grpc"}

// validateGateways checks every VirtualGateway on its own (reference §1.2,
// §4, §6.3) and compiles its listeners and access log.
func (c *compiler) validateGateways() {
	each(c, v1beta2.KindVirtualGateway, func(st *state, vg *v1beta2.VirtualGateway) {
		spec := &vg.Spec
		c.awsNameLength(st, spec.AWSName)
		c.selector(st, "spec.namespaceSelector", spec.NamespaceSelector)
		c.selector(st, "spec.gatewayRouteSelector", spec.GatewayRouteSelector)
		c.selector(st, "spec.podSelector", spec.PodSelector)
		if len(spec.Listeners) == 0 {
			// The CRD allows none, but the App Mesh API requires one.
			c.invalid(st, "spec.listeners", "no listeners; a VirtualGateway needs at least one (http, http2 or grpc)")
		}
		pms := make([]v1beta2.PortMapping, len(spec.Listeners))
		for i, l := range spec.Listeners {
			pms[i] = l.PortMapping
		}
		g := &ir.Gateway{Name: st.name(), Listeners: []*ir.Listener{}}
		for _, pp := range c.listenerPorts(st, "spec.listeners", pms, gatewayProtocols...) {
			g.Listeners = append(g.Listeners, &ir.Listener{Port: pp.Port, Protocol: pp.Protocol, Routes: []*ir.GatewayRoute{}})
		}
		for i, l := range spec.Listeners {
			f := fmt.Sprintf("spec.listeners[%d]", i)
			c.healthCheck(st, f+".healthCheck", l.HealthCheck, l.PortMapping.Port, gatewayProtocols...)
			if p := l.ConnectionPool; p != nil {
				c.connectionPool(st, f+".connectionPool", string(l.PortMapping.Protocol),
					"Only one type of Virtual Gateway Connection Pool is allowed", nil, p.HTTP, p.HTTP2, p.GRPC, gatewayProtocols...)
			}
			c.listenerTLS(st, f+".tls", l.TLS)
			gatewayListenerResilience(g, &l)
			c.gatewayListenerTLS(st, f+".tls", g, &l)
		}
		g.AccessLog = c.logging(st, "spec.logging", spec.Logging)
		if spec.BackendDefaults != nil {
			c.clientPolicy(st, "spec.backendDefaults.clientPolicy", spec.BackendDefaults.ClientPolicy)
		}
		g.ClientTLS = c.gatewayClientTLS(st, "spec.backendDefaults.clientPolicy", spec.BackendDefaults)
		st.data = g
	})
}

// awsNameLength checks an awsName the user wrote (App Mesh ResourceName).
func (c *compiler) awsNameLength(st *state, name *string) {
	if name != nil && *name != "" {
		c.length(st, "spec.awsName", *name, 1, 255)
	}
}

// buildGateways puts every valid VirtualGateway of a usable mesh in the IR,
// sorted by name; gateway routes are attached by buildGatewayRoutes.
func (c *compiler) buildGateways() {
	each(c, v1beta2.KindVirtualGateway, func(st *state, _ *v1beta2.VirtualGateway) {
		if !st.ok() {
			return
		}
		g := st.data.(*ir.Gateway)
		g.Mesh = st.mesh
		st.served = true
		c.cfg.Gateways = append(c.cfg.Gateways, g)
	})
	slices.SortFunc(c.cfg.Gateways, func(a, b *ir.Gateway) int { return cmp.Compare(a.Name, b.Name) })
}

// finishGateways orders every listener's routes by precedence, builds its
// host tables, and notes routes that can never match and gateways without
// routes.
func (c *compiler) finishGateways(owners map[*ir.GatewayRoute]*state) {
	for _, k := range c.keys(v1beta2.KindVirtualGateway) {
		st := c.objs[k]
		if !st.served {
			continue
		}
		g := st.data.(*ir.Gateway)
		routes := 0
		for _, l := range g.Listeners {
			// Names are unique, so order is total and a stable sort would
			// give the same order, slower.
			slices.SortFunc(l.Routes, func(a, b *ir.GatewayRoute) int {
				return order(RouteRank{a.Priority, &a.Match, a.Name}, RouteRank{b.Priority, &b.Match, b.Name})
			})
			l.IndexHosts()
			first := map[string]*ir.GatewayRoute{}
			for _, r := range l.Routes {
				k := matchKey("", &r.Match)
				if earlier, ok := first[k]; ok {
					owners[r].note(fmt.Sprintf("never matched on port %d: gatewayRoute %s has the same match and comes first", l.Port, earlier.Name))
					continue
				}
				first[k] = r
			}
			routes += len(l.Routes)
		}
		if routes == 0 {
			st.note("no gateway routes are attached; every request gets 404")
		}
	}
}
