package compile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

var routerProtocols = []string{"grpc", "http", "http2", "tcp"}

// vrInfo is what validation compiled of a VirtualRouter.
type vrInfo struct {
	listeners []ir.PortProto
	// routes are the embedded spec.routes.
	routes []*routeInfo
}

// routeInfo is one compiled route: an entry of spec.routes or a standalone
// Route object.
type routeInfo struct {
	route *ir.Route
	// field is the path of the route: "spec.routes[1]" or "spec".
	field string
	// typeField is the path of the route body: field + ".httpRoute" etc.
	typeField string
	// port is match.port (0 when unset).
	port    int
	targets []targetInfo
}

type targetInfo struct {
	ref    ref
	field  string
	weight int
	port   int
}

// validateRouters checks every VirtualRouter and its embedded routes on
// their own (reference §1.5, §3, §6.3). Unlike the controller it also checks
// each route's type, weights, headers and policies, and binds each route to
// a router listener.
func (c *compiler) validateRouters() {
	each(c, v1beta2.KindVirtualRouter, func(st *state, vr *v1beta2.VirtualRouter) {
		spec := &vr.Spec
		c.awsNameLength(st, spec.AWSName)
		if len(spec.Listeners) == 0 {
			c.invalid(st, "spec.listeners", "no listeners; a VirtualRouter needs at least one (the port its clients call)")
		}
		pms := make([]v1beta2.PortMapping, len(spec.Listeners))
		for i, l := range spec.Listeners {
			pms[i] = l.PortMapping
		}
		info := &vrInfo{listeners: c.listenerPorts(st, "spec.listeners", pms, routerProtocols...)}
		st.data = info
		seen := map[string]bool{}
		for i, r := range spec.Routes {
			f := fmt.Sprintf("spec.routes[%d]", i)
			if c.length(st, f+".name", r.Name, 1, 255) && seen[r.Name] {
				c.invalid(st, f+".name", fmt.Sprintf("VirtualRouter-%s has duplicate route entries for %s", vr.Name, r.Name))
			}
			seen[r.Name] = true
			ri := c.routeSpec(st, f, r.Name, r.Priority, r.GRPCRoute, r.HTTPRoute, r.HTTP2Route, r.TCPRoute)
			if ri != nil {
				c.bindRouterListener(st, st.name(), info.listeners, ri)
				info.routes = append(info.routes, ri)
			}
		}
	})
}

// validateRoutes checks every standalone Route object (the guide's form of
// one spec.routes entry) on its own.
func (c *compiler) validateRoutes() {
	each(c, v1beta2.KindRoute, func(st *state, r *v1beta2.StandaloneRoute) {
		spec := &r.Spec
		if spec.VirtualRouter == nil {
			c.invalid(st, "spec.virtualRouter", "virtualRouter is missing; give the name of the VirtualRouter this route belongs to")
		} else {
			c.required(st, "spec.virtualRouter.name", spec.VirtualRouter.Name, "the name of the VirtualRouter this route belongs to")
		}
		if ri := c.routeSpec(st, "spec", r.Name, spec.Priority, spec.GRPCRoute, spec.HTTPRoute, spec.HTTP2Route, spec.TCPRoute); ri != nil {
			st.data = ri
		}
	})
}

// routerKey is the VirtualRouter a standalone Route names.
func routerKey(st *state) resource.Key {
	r := st.obj.Value.(*v1beta2.StandaloneRoute).Spec.VirtualRouter
	ns := st.obj.Key.Namespace
	if r.Namespace != nil && *r.Namespace != "" {
		ns = *r.Namespace
	}
	return resource.Key{Kind: v1beta2.KindVirtualRouter, Namespace: ns, Name: r.Name}
}

// routeSpec checks and compiles one route: exactly one route type, its
// priority, match, targets, retry policy and timeout.
func (c *compiler) routeSpec(st *state, f, name string, priority *int64, grpc *v1beta2.GRPCRoute, http, http2 *v1beta2.HTTPRoute, tcp *v1beta2.TCPRoute) *routeInfo {
	ri := &routeInfo{route: &ir.Route{Name: name, Priority: 1001}, field: f}
	if priority != nil && c.intRange(st, f+".priority", *priority, 0, 1000) {
		ri.route.Priority = int(*priority)
	}
	types := present("grpcRoute", grpc, "httpRoute", http, "http2Route", http2, "tcpRoute", tcp)
	switch len(types) {
	case 1:
	case 0:
		c.invalid(st, f, "route has no grpcRoute, httpRoute, http2Route or tcpRoute; give exactly one")
		return nil
	default:
		c.invalid(st, f, fmt.Sprintf("route sets %s; give exactly one of grpcRoute, httpRoute, http2Route, tcpRoute", strings.Join(types, " and ")))
		return nil
	}
	ri.typeField = f + "." + types[0]
	switch {
	case http != nil:
		c.httpRoute(st, ri, "http", http)
	case http2 != nil:
		c.httpRoute(st, ri, "http2", http2)
	case grpc != nil:
		c.grpcRoute(st, ri, grpc)
	case tcp != nil:
		ri.route.Kind = "tcp"
		if tcp.Match != nil {
			ri.port = c.matchPort(st, ri.typeField+".match.port", tcp.Match.Port)
		}
		c.weightedTargets(st, ri, tcp.Action.WeightedTargets)
		if tcp.Timeout != nil {
			c.duration(st, ri.typeField+".timeout.idle", tcp.Timeout.Idle)
		}
		ri.route.Timeout = tcpRouteTimeout(tcp.Timeout)
	}
	return ri
}

func (c *compiler) httpRoute(st *state, ri *routeInfo, kind string, r *v1beta2.HTTPRoute) {
	ri.route.Kind = kind
	f := ri.typeField
	m, mf := &r.Match, f+".match"
	out := &ri.route.Match
	switch {
	case m.Prefix != nil && m.Path != nil:
		c.invalid(st, mf, "Both Prefix and Path cannot be specified, only 1 allowed")
	case m.Prefix == nil && m.Path == nil:
		c.invalid(st, mf, "Either Prefix or Path must be specified")
	case m.Prefix != nil:
		c.prefix(st, mf+".prefix", *m.Prefix, out)
	default:
		c.path(st, mf+".path", m.Path, out)
	}
	out.Headers = c.headers(st, mf+".headers", httpHeaders(m.Headers), "header")
	out.Query = c.query(st, mf+".queryParameters", m.QueryParameters)
	c.method(st, mf+".method", m.Method, out)
	if m.Scheme != nil && c.enum(st, mf+".scheme", *m.Scheme, "http", "https") {
		out.Scheme = *m.Scheme
	}
	ri.port = c.matchPort(st, mf+".port", m.Port)
	c.weightedTargets(st, ri, r.Action.WeightedTargets)
	if p := r.RetryPolicy; p != nil {
		c.retryPolicy(st, f+".retryPolicy", nil, p.HTTPRetryEvents, p.TCPRetryEvents, p.MaxRetries, &p.PerRetryTimeout)
	}
	if t := r.Timeout; t != nil {
		c.duration(st, f+".timeout.perRequest", t.PerRequest)
		c.duration(st, f+".timeout.idle", t.Idle)
	}
	c.httpRouteResilience(st, ri, r)
}

func (c *compiler) grpcRoute(st *state, ri *routeInfo, r *v1beta2.GRPCRoute) {
	ri.route.Kind = "grpc"
	f := ri.typeField
	m, mf := &r.Match, f+".match"
	out := &ri.route.Match
	if m.ServiceName != nil && c.required(st, mf+".serviceName", *m.ServiceName, "the gRPC service name, e.g. color.ColorService") {
		out.ServiceName = *m.ServiceName
	}
	if m.MethodName != nil {
		if m.ServiceName == nil {
			c.invalid(st, mf+".methodName", "methodName needs serviceName; give the service the method belongs to")
		}
		if c.length(st, mf+".methodName", *m.MethodName, 1, 50) {
			out.MethodName = *m.MethodName
		}
	}
	out.Headers = c.headers(st, mf+".metadata", grpcMetadata(m.Metadata), "metadata")
	ri.port = c.matchPort(st, mf+".port", m.Port)
	c.weightedTargets(st, ri, r.Action.WeightedTargets)
	if p := r.RetryPolicy; p != nil {
		c.retryPolicy(st, f+".retryPolicy", p.GRPCRetryEvents, p.HTTPRetryEvents, p.TCPRetryEvents, p.MaxRetries, &p.PerRetryTimeout)
	}
	if t := r.Timeout; t != nil {
		c.duration(st, f+".timeout.perRequest", t.PerRequest)
		c.duration(st, f+".timeout.idle", t.Idle)
	}
	c.grpcRouteResilience(st, ri, r)
}

// retryPolicy checks a retry policy (reference §1.5, §3); grpcEvents is nil
// for HTTP routes.
func (c *compiler) retryPolicy(st *state, f string, grpcEvents, httpEvents, tcpEvents []string, maxRetries int64, perRetry *v1beta2.Duration) {
	if grpcEvents != nil {
		c.items(st, f+".grpcRetryEvents", len(grpcEvents), 1, 5)
		for i, e := range grpcEvents {
			c.enum(st, fmt.Sprintf("%s.grpcRetryEvents[%d]", f, i), e, "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
		}
	}
	c.items(st, f+".httpRetryEvents", len(httpEvents), 1, 25)
	for i, e := range httpEvents {
		c.enum(st, fmt.Sprintf("%s.httpRetryEvents[%d]", f, i), e, "server-error", "gateway-error", "client-error", "stream-error")
	}
	c.items(st, f+".tcpRetryEvents", len(tcpEvents), 1, 1)
	for i, e := range tcpEvents {
		c.enum(st, fmt.Sprintf("%s.tcpRetryEvents[%d]", f, i), e, "connection-error")
	}
	if len(grpcEvents)+len(httpEvents)+len(tcpEvents) == 0 {
		c.invalid(st, f, "retryPolicy has no retry events; give httpRetryEvents, tcpRetryEvents or (gRPC) grpcRetryEvents")
	}
	c.atLeast(st, f+".maxRetries", maxRetries, 0)
	c.duration(st, f+".perRetryTimeout", perRetry)
}

// weightedTargets checks a route's targets: 1..10, weight 0..100, a node by
// reference or ARN, an optional port.
func (c *compiler) weightedTargets(st *state, ri *routeInfo, ts []v1beta2.WeightedTarget) {
	f := ri.typeField + ".action.weightedTargets"
	if len(ts) == 0 {
		c.invalid(st, f, "weightedTargets is missing; give 1..10 virtual nodes with weights")
		return
	}
	c.items(st, f, len(ts), 1, 10)
	for i, t := range ts {
		tf := fmt.Sprintf("%s[%d]", f, i)
		var ns *string
		name := ""
		if t.VirtualNodeRef != nil {
			ns, name = t.VirtualNodeRef.Namespace, t.VirtualNodeRef.Name
		}
		r, ok := c.parseRef(st, v1beta2.KindVirtualNode, tf, tf+".virtualNodeRef", t.VirtualNodeRef != nil, ns, name, tf+".virtualNodeARN", t.VirtualNodeARN)
		c.intRange(st, tf+".weight", t.Weight, 0, 100)
		port := c.matchPort(st, tf+".port", t.Port)
		if ok {
			ri.targets = append(ri.targets, targetInfo{ref: r, field: tf, weight: int(t.Weight), port: port})
		}
	}
}

// bindRouterListener picks the router listener a route serves: the one of
// match.port, or the router's only listener; its protocol must be the
// route's. The route's Match.Port is set to that listener's port.
func (c *compiler) bindRouterListener(st *state, router string, listeners []ir.PortProto, ri *routeInfo) bool {
	kind := ri.route.Kind
	typ := leaf(ri.typeField)
	if !slices.ContainsFunc(listeners, func(l ir.PortProto) bool { return l.Protocol == kind }) {
		c.invalid(st, ri.typeField, fmt.Sprintf("virtualRouter %s has no %s listener (its listeners: %s); %s needs one", router, kind, describePorts(listeners), typ))
		return false
	}
	pf := ri.typeField + ".match.port"
	if ri.port != 0 {
		i := slices.IndexFunc(listeners, func(l ir.PortProto) bool { return l.Port == ri.port })
		switch {
		case i < 0:
			c.invalid(st, pf, fmt.Sprintf("port %d is not a listener of virtualRouter %s; its listeners: %s", ri.port, router, describePorts(listeners)))
			return false
		case listeners[i].Protocol != kind:
			c.invalid(st, pf, fmt.Sprintf("listener %d of virtualRouter %s is %s, but %s needs protocol %s", ri.port, router, listeners[i].Protocol, typ, kind))
			return false
		}
		ri.route.Match.Port = ri.port
		return true
	}
	if len(listeners) > 1 {
		c.invalid(st, pf, fmt.Sprintf("virtualRouter %s has %d listeners (%s); give match.port to choose one", router, len(listeners), describePorts(listeners)))
		return false
	}
	ri.route.Match.Port = listeners[0].Port
	return true
}

// bindTargets resolves a route's weighted targets for its owner (the router
// for embedded routes, the Route object otherwise). A missing or inactive
// node keeps the target (its share of requests gets 503); a node in another
// mesh, or a port the node does not listen on, rejects the owner.
func (c *compiler) bindTargets(owner *state, ri *routeInfo) {
	ri.route.Targets = []ir.WeightedTarget{}
	ri.route.TotalWeight = 0
	for _, t := range ri.targets {
		wt := ir.WeightedTarget{Node: t.ref.String(), Weight: t.weight, Port: t.port}
		n, res := c.resolve(owner, t.ref)
		if n != nil {
			wt.Node = n.name()
		}
		switch res {
		case refOK:
			if port, ok := c.nodePort(owner, ri, t, n); ok {
				wt.Port = port
			}
		case refCrossMesh, refAmbiguous:
			reason, msg := c.refProblem(owner, t.ref, n, res)
			c.reject(owner, reason, t.ref.field, msg)
		default:
			reason, msg := c.refProblem(owner, t.ref, n, res)
			c.fail(owner, reason, t.ref.field, msg)
		}
		ri.route.Targets = append(ri.route.Targets, wt)
		ri.route.TotalWeight += t.weight
	}
}

// nodePort checks a target's port against the node's listeners (it must be
// one of them, of the route's protocol; required when there are several)
// and fills it in when the node has one listener.
func (c *compiler) nodePort(owner *state, ri *routeInfo, t targetInfo, n *state) (int, bool) {
	node := c.cfg.Nodes[n.name()]
	kind := ri.route.Kind
	var l *ir.PortProto
	switch {
	case len(node.Listeners) == 0:
		c.invalid(owner, t.field, fmt.Sprintf("virtualNode %s has no listeners; a route target needs one", node.Name))
		return 0, false
	case t.port != 0:
		i := slices.IndexFunc(node.Listeners, func(l ir.PortProto) bool { return l.Port == t.port })
		if i < 0 {
			c.invalid(owner, t.field+".port", fmt.Sprintf("port %d is not a listener of virtualNode %s; its listeners: %s", t.port, node.Name, describePorts(node.Listeners)))
			return 0, false
		}
		l = &node.Listeners[i]
	case len(node.Listeners) > 1:
		c.invalid(owner, t.field+".port", fmt.Sprintf("virtualNode %s has %d listeners (%s); give port to choose one", node.Name, len(node.Listeners), describePorts(node.Listeners)))
		return 0, false
	default:
		l = &node.Listeners[0]
	}
	if l.Protocol != kind {
		c.invalid(owner, t.field, fmt.Sprintf("listener %d of virtualNode %s is %s, but routes of kind %s send to protocol %s only", l.Port, node.Name, l.Protocol, kind, kind))
		return 0, false
	}
	return l.Port, true
}

// buildRouters puts every valid VirtualRouter in the IR with its embedded
// routes and the standalone Route objects that name it, in precedence order.
func (c *compiler) buildRouters() {
	attached := map[resource.Key][]*state{}
	each(c, v1beta2.KindRoute, func(st *state, _ *v1beta2.StandaloneRoute) {
		if st.ok() {
			k := routerKey(st)
			attached[k] = append(attached[k], st)
		}
	})
	each(c, v1beta2.KindVirtualRouter, func(st *state, vr *v1beta2.VirtualRouter) {
		if !st.ok() {
			return
		}
		info := st.data.(*vrInfo)
		router := &ir.VirtualRouter{Name: st.name(), Listeners: info.listeners, Routes: []*ir.Route{}}
		owners := map[*ir.Route]*state{}
		names := map[string]bool{}
		for _, ri := range info.routes {
			c.bindTargets(st, ri)
			router.Routes = append(router.Routes, ri.route)
			owners[ri.route] = st
			names[ri.route.Name] = true
		}
		if !st.ok() {
			// A route of the router refers across meshes or to a port its
			// node does not have: the router is rejected whole.
			return
		}
		for _, rs := range attached[st.obj.Key] {
			ri, _ := rs.data.(*routeInfo)
			switch {
			case rs.meshOK && !c.sameMesh(rs.mesh, st.mesh):
				c.reject(rs, reasonMeshMismatch, "spec.virtualRouter.name", fmt.Sprintf("virtualRouter %s didn't belong to mesh %s", st.name(), rs.mesh))
				continue
			case names[ri.route.Name]:
				c.invalid(rs, "metadata.name", fmt.Sprintf("VirtualRouter-%s has duplicate route entries for %s", vr.Name, ri.route.Name))
				continue
			}
			if !c.bindRouterListener(rs, st.name(), info.listeners, ri) {
				continue
			}
			c.bindTargets(rs, ri)
			if !rs.ok() {
				continue
			}
			names[ri.route.Name] = true
			router.Routes = append(router.Routes, ri.route)
			owners[ri.route] = rs
			rs.served = true
		}
		c.finishRouter(st, router, owners)
		st.served = true
		c.cfg.Routers[router.Name] = router
	})
	// Standalone routes whose router is missing or was rejected.
	each(c, v1beta2.KindRoute, func(st *state, _ *v1beta2.StandaloneRoute) {
		if !st.ok() || st.served {
			return
		}
		k := routerKey(st)
		if vr, ok := c.objs[k]; !ok {
			c.reject(st, "VirtualRouterNotFound", "spec.virtualRouter.name", fmt.Sprintf("virtualRouter %s not found", irName(k)))
		} else if !vr.served {
			c.reject(st, "VirtualRouterInactive", "spec.virtualRouter.name", fmt.Sprintf("virtualRouter %s is not active; see its status", vr.name()))
		}
	})
}

const tcpNote = "TCP routes are not served at a gateway: a VirtualGateway has only http, http2 and grpc listeners"

// finishRouter orders a router's routes and notes, on the object that
// wrote each route, what a user should know: routes that can never match,
// routes whose weights sum to 0, TCP routes.
func (c *compiler) finishRouter(st *state, router *ir.VirtualRouter, owners map[*ir.Route]*state) {
	slices.SortStableFunc(router.Routes, func(a, b *ir.Route) int {
		return order(RouteRank{a.Priority, &a.Match, a.Name}, RouteRank{b.Priority, &b.Match, b.Name})
	})
	tcp := false
	first := map[string]*ir.Route{}
	for _, r := range router.Routes {
		owner := owners[r]
		prefix := ""
		if owner == st {
			prefix = "route " + r.Name + ": "
		}
		if earlier, ok := first[matchKey(r.Kind, &r.Match)]; ok {
			owner.note(fmt.Sprintf("%snever matched: route %s has the same match and comes first", prefix, earlier.Name))
		} else {
			first[matchKey(r.Kind, &r.Match)] = r
		}
		if r.TotalWeight == 0 {
			owner.note(prefix + "the weights of all targets are 0, so every request this route matches gets 503")
		}
		if r.Kind == "tcp" {
			tcp = true
			if owner != st {
				owner.note(tcpNote)
			}
		}
	}
	if tcp {
		st.note(tcpNote)
	}
	if len(router.Routes) == 0 {
		st.note("no routes: every request to this router gets 404")
	}
}
