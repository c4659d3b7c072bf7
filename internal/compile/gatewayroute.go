package compile

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// grInfo is what validation compiled of a GatewayRoute for binding.
type grInfo struct {
	route *ir.GatewayRoute
	// field is the path of the route body: spec.httpRoute, spec.http2Route
	// or spec.grpcRoute.
	field string
	// gateway is the gateway the route names, if it names one.
	gateway      *resource.Key
	gatewayField string
	// port is match.port (0 when unset).
	port int
	// target is the VirtualService; targetPort is action.target.port (0 when unset).
	target     ref
	targetPort int
	// hostRewrite is false when defaultTargetHostname is DISABLED.
	hostRewrite bool
	// prefixRewrite is the written prefix rewrite, if any: "ENABLED",
	// "DISABLED" or a /value/.
	prefixRewrite *string
	pathRewrite   string
}

// validateGatewayRoutes checks every GatewayRoute on its own (reference §1.3,
// §6.3) and compiles its match.
func (c *compiler) validateGatewayRoutes() {
	each(c, v1beta2.KindGatewayRoute, func(st *state, gr *v1beta2.GatewayRoute) {
		spec := &gr.Spec
		info := &grInfo{route: &ir.GatewayRoute{Name: st.name(), Priority: 1001}, hostRewrite: true}
		st.data = info
		c.awsNameLength(st, spec.AWSName)
		if spec.Priority != nil && c.intRange(st, "spec.priority", *spec.Priority, 0, 1000) {
			info.route.Priority = int(*spec.Priority)
		}
		c.gatewayRef(st, spec, info)
		types := present("grpcRoute", spec.GRPCRoute, "httpRoute", spec.HTTPRoute, "http2Route", spec.HTTP2Route)
		switch {
		case len(types) > 1:
			c.invalid(st, "spec", "Found multiple types in GatewayRoute Spec. Only 1 (GRPC/HTTP/HTTP2) allowed")
		case len(types) == 0:
			c.invalid(st, "spec", "Missing GatewayRoute Type in GatewayRoute Spec")
		case spec.HTTPRoute != nil:
			c.httpGatewayRoute(st, "spec.httpRoute", "http", spec.HTTPRoute, info)
		case spec.HTTP2Route != nil:
			c.httpGatewayRoute(st, "spec.http2Route", "http2", spec.HTTP2Route, info)
		case spec.GRPCRoute != nil:
			c.grpcGatewayRoute(st, "spec.grpcRoute", spec.GRPCRoute, info)
		}
	})
}

// gatewayRef reads the gateway a route names: App Mesh's virtualGatewayRef or
// the guide's virtualGateway, in the route's namespace unless given.
func (c *compiler) gatewayRef(st *state, spec *v1beta2.GatewayRouteSpec, info *grInfo) {
	key := func(r *v1beta2.VirtualGatewayReference) resource.Key {
		ns := st.obj.Key.Namespace
		if r.Namespace != nil && *r.Namespace != "" {
			ns = *r.Namespace
		}
		return resource.Key{Kind: v1beta2.KindVirtualGateway, Namespace: ns, Name: r.Name}
	}
	r, field := spec.VirtualGatewayRef, "spec.virtualGatewayRef"
	if r == nil {
		r, field = spec.VirtualGateway, "spec.virtualGateway"
	} else if spec.VirtualGateway != nil && key(spec.VirtualGateway) != key(r) {
		c.invalid(st, "spec.virtualGateway", fmt.Sprintf("virtualGateway names %s but virtualGatewayRef names %s; give one",
			irName(key(spec.VirtualGateway)), irName(key(r))))
	}
	if r == nil {
		return
	}
	if c.required(st, field+".name", r.Name, "the name of the VirtualGateway") {
		k := key(r)
		info.gateway, info.gatewayField = &k, field+".name"
	}
}

// httpGatewayRoute checks and compiles an httpRoute or http2Route.
func (c *compiler) httpGatewayRoute(st *state, f, kind string, r *v1beta2.HTTPGatewayRoute, info *grInfo) {
	info.field, info.route.Kind = f, kind
	fp := routePathsOf(f)
	m, mf := &r.Match, fp.match
	out := &info.route.Match
	if m.Prefix == nil && m.Path == nil && m.Hostname == nil {
		c.invalid(st, mf, "Either prefix or path or hostname must be specified")
	}
	if m.Prefix != nil && m.Path != nil {
		c.invalid(st, mf, "Both prefix and path cannot be specified. Only 1 allowed")
	}
	if m.Prefix != nil {
		c.prefix(st, fp.prefix, *m.Prefix, out)
	}
	if m.Path != nil {
		c.path(st, fp.path, m.Path, out)
	}
	if m.Hostname != nil {
		out.Hostname = c.hostname(st, fp.hostname, m.Hostname)
	}
	out.Headers = c.headers(st, fp.headers, httpHeaders(m.Headers), "header")
	out.Query = c.query(st, fp.query, m.QueryParameters)
	c.method(st, fp.method, m.Method, out)
	info.port = c.matchPort(st, fp.port, m.Port)
	c.gatewayTarget(st, fp.target, &r.Action.Target, info)

	rw := r.Action.Rewrite
	if rw == nil {
		return
	}
	rf := f + ".action.rewrite"
	if rw.Prefix == nil && rw.Path == nil && rw.Hostname == nil {
		c.invalid(st, rf, "Either prefix, path or hostname for rewrite must be specified")
	}
	if rw.Prefix != nil && rw.Path != nil {
		c.invalid(st, rf, "Both prefix and path for rewrites cannot be specified. Only 1 allowed")
	}
	if p := rw.Prefix; p != nil {
		pf := rf + ".prefix"
		if m.Prefix != nil && !strings.HasPrefix(*m.Prefix, "/") {
			c.invalid(st, mf+".prefix", "Prefix to be matched on must start with '/'")
		}
		switch {
		case p.DefaultPrefix != nil && p.Value != nil:
			c.invalid(st, pf, "Cannot specify both defaultPrefix and prefix for rewrite, only 1 allowed")
		case p.DefaultPrefix != nil:
			if c.enum(st, pf+".defaultPrefix", *p.DefaultPrefix, "ENABLED", "DISABLED") {
				info.prefixRewrite = p.DefaultPrefix
			}
		case p.Value != nil:
			v := *p.Value
			if c.length(st, pf+".value", v, 1, 255) {
				if !strings.HasPrefix(v, "/") || !strings.HasSuffix(v, "/") {
					c.invalid(st, pf+".value", "New Rewrite Prefix must start and end with '/'")
				}
				info.prefixRewrite = &v
			}
		default:
			c.invalid(st, pf, "prefix is empty; give defaultPrefix (ENABLED or DISABLED) or value")
		}
		if m.Prefix == nil {
			// App Mesh accepts this; there is no matched prefix to replace.
			st.note(pf + ": a prefix rewrite needs match.prefix; without it the path is forwarded unchanged")
		}
	}
	if p := rw.Path; p != nil {
		if p.Exact == nil {
			c.invalid(st, rf+".path.exact", "exact is missing; give the path to send")
		} else if c.length(st, rf+".path.exact", *p.Exact, 1, 255) {
			info.pathRewrite = *p.Exact
		}
	}
	c.hostnameRewrite(st, rf+".hostname", rw.Hostname, info)
}

// grpcGatewayRoute checks and compiles a grpcRoute. Unlike the controller,
// it checks the hostname also when serviceName is given, and it checks the
// rewrite (an empty one crashed the controller's conversion).
func (c *compiler) grpcGatewayRoute(st *state, f string, r *v1beta2.GRPCGatewayRoute, info *grInfo) {
	info.field, info.route.Kind = f, "grpc"
	m, mf := &r.Match, f+".match"
	out := &info.route.Match
	if m.ServiceName == nil && m.Hostname == nil {
		c.invalid(st, mf, "Either servicename or hostname must be specified")
	}
	if m.ServiceName != nil && c.required(st, mf+".serviceName", *m.ServiceName, "the gRPC service name, e.g. color.ColorService") {
		out.ServiceName = *m.ServiceName
	}
	if m.Hostname != nil {
		out.Hostname = c.hostname(st, mf+".hostname", m.Hostname)
	}
	out.Headers = c.headers(st, mf+".metadata", grpcMetadata(m.Metadata), "metadata")
	info.port = c.matchPort(st, mf+".port", m.Port)
	c.gatewayTarget(st, routePathsOf(f).target, &r.Action.Target, info)
	if rw := r.Action.Rewrite; rw != nil {
		if rw.Hostname == nil {
			c.invalid(st, f+".action.rewrite", "rewrite is empty; a gRPC route can only rewrite the hostname: give hostname.defaultTargetHostname (ENABLED or DISABLED)")
		}
		c.hostnameRewrite(st, f+".action.rewrite.hostname", rw.Hostname, info)
	}
}

func (c *compiler) hostnameRewrite(st *state, f string, h *v1beta2.GatewayRouteHostnameRewrite, info *grInfo) {
	if h == nil {
		return
	}
	v := ""
	if h.DefaultTargetHostname != nil {
		v = *h.DefaultTargetHostname
	}
	if c.enum(st, f+".defaultTargetHostname", v, "ENABLED", "DISABLED") {
		info.hostRewrite = v == "ENABLED"
	}
}

// matchPort checks a match.port; unlike the CRD, 0 is rejected.
func (c *compiler) matchPort(st *state, f string, p *v1beta2.PortNumber) int {
	if p == nil || !c.port(st, f, *p) {
		return 0
	}
	return int(*p)
}

func (c *compiler) gatewayTarget(st *state, f string, t *v1beta2.GatewayRouteTarget, info *grInfo) {
	vs := t.VirtualService
	var ns *string
	name := ""
	if vs.VirtualServiceRef != nil {
		ns, name = vs.VirtualServiceRef.Namespace, vs.VirtualServiceRef.Name
	}
	tp := targetPathsOf(f)
	info.target, _ = c.parseRef(st, v1beta2.KindVirtualService, tp.service, tp.ref, vs.VirtualServiceRef != nil, ns, name,
		tp.arn, vs.VirtualServiceARN)
	info.targetPort = c.matchPort(st, tp.port, t.Port)
}

// buildGatewayRoutes binds every valid GatewayRoute to its gateway and
// listener, resolves its target and rewrite, and finishes the listeners.
func (c *compiler) buildGatewayRoutes() {
	owners := map[*ir.GatewayRoute]*state{}
	each(c, v1beta2.KindGatewayRoute, func(st *state, gr *v1beta2.GatewayRoute) {
		if !st.ok() {
			return
		}
		info := st.data.(*grInfo)
		gw := c.bindGateway(st, gr, info)
		if gw == nil {
			return
		}
		l := c.bindListener(st, gw, info)
		if l == nil {
			return
		}
		if !c.bindTarget(st, info) {
			return
		}
		info.route.Match.Port = l.Port
		l.Routes = append(l.Routes, info.route)
		owners[info.route] = st
		st.served = true
	})
	c.finishGateways(owners)
}

// bindGateway finds the gateway of a route: the one it names, else the one
// VirtualGateway (of all in the input) whose namespaceSelector selects the
// route's namespace and whose gatewayRouteSelector selects its labels.
func (c *compiler) bindGateway(st *state, gr *v1beta2.GatewayRoute, info *grInfo) *state {
	if info.gateway != nil {
		st.gateway = irName(*info.gateway)
		gw, ok := c.objs[*info.gateway]
		switch {
		case !ok:
			c.reject(st, "VirtualGatewayNotFound", info.gatewayField, fmt.Sprintf("virtualGateway %s not found", irName(*info.gateway)))
			return nil
		case gw.meshOK && !c.sameMesh(st.mesh, gw.mesh):
			c.reject(st, reasonMeshMismatch, info.gatewayField, fmt.Sprintf("virtualGateway %s didn't belong to mesh %s", gw.name(), st.mesh))
			return nil
		case !gw.served:
			c.reject(st, "VirtualGatewayInactive", info.gatewayField, fmt.Sprintf("virtualGateway %s is not active; see its status", gw.name()))
			return nil
		}
		return gw
	}
	nsLabels := c.namespaceLabels(st.obj.Key.Namespace)
	grLabels := labels.Set(gr.Labels)
	var found []*state
	var names []string
	for _, k := range c.keys(v1beta2.KindVirtualGateway) {
		vg := c.objs[k].obj.Value.(*v1beta2.VirtualGateway)
		if !c.selects(vg.Spec.NamespaceSelector, nsLabels) {
			continue
		}
		// An absent gatewayRouteSelector selects every route, like {}.
		if vg.Spec.GatewayRouteSelector != nil && !c.selects(vg.Spec.GatewayRouteSelector, grLabels) {
			continue
		}
		found = append(found, c.objs[k])
		names = append(names, k.Name)
	}
	switch len(found) {
	case 0:
		msg := fmt.Sprintf("failed to find matching virtualGateway for gatewayRoute: %s, expecting 1 but found 0", gr.Name)
		// A gateway without namespaceSelector is the usual cause: say so
		// after the controller's message.
		var unselectable []string
		for _, k := range c.keys(v1beta2.KindVirtualGateway) {
			if c.objs[k].obj.Value.(*v1beta2.VirtualGateway).Spec.NamespaceSelector == nil {
				unselectable = append(unselectable, irName(k))
			}
		}
		if len(unselectable) > 0 {
			msg += fmt.Sprintf(" (virtualGateway %s has no namespaceSelector, so it selects no namespace: give it namespaceSelector: {} or name it in spec.virtualGateway)",
				strings.Join(unselectable, ", "))
		}
		c.reject(st, "VirtualGatewayNotFound", "spec.virtualGateway", msg)
		return nil
	case 1:
	default:
		c.reject(st, "VirtualGatewayAmbiguous", "spec.virtualGateway", fmt.Sprintf("found multiple matching virtualGateways for gatewayRoute: %s, expecting 1 but found %d: %s", gr.Name, len(found), strings.Join(names, ",")))
		return nil
	}
	gw := found[0]
	st.gateway = gw.name()
	switch {
	case gw.meshOK && !c.sameMesh(st.mesh, gw.mesh):
		c.reject(st, reasonMeshMismatch, "spec.virtualGateway", "virtualGateway referenced does not belong to the mesh referenced in GatewayRoute Create")
		return nil
	case !gw.served:
		c.reject(st, "VirtualGatewayInactive", "spec.virtualGateway", fmt.Sprintf("virtualGateway %s is not active; see its status", gw.name()))
		return nil
	}
	return gw
}

// bindListener picks the listener a route serves: the one of match.port,
// which must have the route's protocol, or the gateway's only listener.
func (c *compiler) bindListener(st *state, gw *state, info *grInfo) *ir.Listener {
	g := gw.data.(*ir.Gateway)
	kind := info.route.Kind
	var ports []ir.PortProto
	var ofKind []*ir.Listener
	for _, l := range g.Listeners {
		ports = append(ports, ir.PortProto{Port: l.Port, Protocol: l.Protocol})
		if l.Protocol == kind {
			ofKind = append(ofKind, l)
		}
	}
	routeType := strings.TrimPrefix(info.field, "spec.")
	if len(ofKind) == 0 {
		c.reject(st, "NoMatchingListener", info.field, fmt.Sprintf("virtualGateway %s has no %s listener (its listeners: %s); %s is served on %s listeners only",
			g.Name, kind, describePorts(ports), routeType, kind))
		return nil
	}
	if info.port != 0 {
		for _, l := range g.Listeners {
			if l.Port != info.port {
				continue
			}
			if l.Protocol != kind {
				c.reject(st, "NoMatchingListener", info.field+".match.port", fmt.Sprintf("listener %d of virtualGateway %s is %s, but %s needs protocol %s",
					l.Port, g.Name, l.Protocol, routeType, kind))
				return nil
			}
			return l
		}
		c.reject(st, "NoMatchingListener", info.field+".match.port", fmt.Sprintf("port %d is not a listener of virtualGateway %s; its listeners: %s",
			info.port, g.Name, describePorts(ports)))
		return nil
	}
	if len(g.Listeners) > 1 {
		c.reject(st, "PortRequired", info.field+".match.port", fmt.Sprintf("virtualGateway %s has %d listeners (%s); give match.port to choose one",
			g.Name, len(g.Listeners), describePorts(ports)))
		return nil
	}
	return ofKind[0]
}

// bindTarget resolves the route's VirtualService and its rewrite. A missing
// or inactive service keeps the route (its requests get 503); a service in
// another mesh, or a port the service's provider does not listen on, rejects
// it.
func (c *compiler) bindTarget(st *state, info *grInfo) bool {
	r := info.route
	r.Target = ir.Target{Port: info.targetPort}
	t, res := c.resolve(st, info.target)
	if t != nil {
		r.Target.Service = t.name()
	} else {
		r.Target.Service = info.target.String()
	}
	if res != refOK {
		reason, msg := c.refProblem(st, info.target, t, res)
		if res == refCrossMesh || res == refAmbiguous {
			c.reject(st, reason, info.target.field, msg)
			return false
		}
		c.fail(st, reason, info.target.field, msg)
	} else if !c.targetPort(st, info, t) {
		return false
	}
	r.Rewrite = c.rewrite(info, t, res == refOK)
	return true
}

// targetPort checks action.target.port against the listeners of the
// service's provider and fills it in when the provider has one listener.
func (c *compiler) targetPort(st *state, info *grInfo, vs *state) bool {
	svc := c.cfg.Services[vs.name()]
	var listeners []ir.PortProto
	var providerKind, providerName string
	switch {
	case svc.Router != "" && c.cfg.Routers[svc.Router] != nil:
		listeners, providerKind, providerName = c.cfg.Routers[svc.Router].Listeners, "virtualRouter", svc.Router
	case svc.Node != "" && c.cfg.Nodes[svc.Node] != nil:
		listeners, providerKind, providerName = c.cfg.Nodes[svc.Node].Listeners, "virtualNode", svc.Node
	default:
		// No usable provider: the service's own status says why.
		return true
	}
	pf := func() string { return targetPathsOf(routePathsOf(info.field).target).port }
	if info.targetPort != 0 {
		for _, l := range listeners {
			if l.Port == info.targetPort {
				return true
			}
		}
		c.invalid(st, pf(), fmt.Sprintf("port %d is not a listener of %s %s, the provider of virtualService %s; its listeners: %s",
			info.targetPort, providerKind, providerName, vs.name(), describePorts(listeners)))
		return false
	}
	switch len(listeners) {
	case 0:
	case 1:
		info.route.Target.Port = listeners[0].Port
	default:
		c.invalid(st, pf(), fmt.Sprintf("%s %s, the provider of virtualService %s, has %d listeners (%s); give action.target.port to choose one",
			providerKind, providerName, vs.name(), len(listeners), describePorts(listeners)))
		return false
	}
	return true
}

// rewrite resolves how the forwarded request differs from the received one
// (reference §2.3): the Host becomes the target service's awsName unless
// defaultTargetHostname is DISABLED; a matched prefix becomes "/" (or the
// rewrite value) unless defaultPrefix is DISABLED; exact and regex path
// matches keep the path unless rewrite.path.exact replaces it. A target that
// did not resolve has no known awsName, so its Host is kept.
func (c *compiler) rewrite(info *grInfo, vs *state, resolved bool) ir.Rewrite {
	var rw ir.Rewrite
	if info.hostRewrite && resolved {
		rw.Hostname = c.cfg.Services[vs.name()].Hostname
	}
	if info.route.Kind == "grpc" {
		return rw
	}
	switch {
	case info.pathRewrite != "":
		rw.Path = info.pathRewrite
	case info.route.Match.Prefix != "":
		switch p := info.prefixRewrite; {
		case p == nil || *p == "ENABLED":
			rw.Prefix = "/"
		case *p == "DISABLED":
		default:
			rw.Prefix = *p
		}
	}
	return rw
}

// routePaths are the paths of the fields of one route type (its field is
// spec.httpRoute, spec.http2Route or spec.grpcRoute) that validation names.
// They are the same for every route: building them once per route was a
// fifth of compiling 10,000 routes.
type routePaths struct {
	match, prefix, path, hostname, headers, query, method, port, target string
}

// targetPaths are the paths of an action.target's fields.
type targetPaths struct {
	service, ref, arn, port string
}

// The paths of the three route types, built once.
var (
	routeTypePaths  = map[string]*routePaths{}
	targetTypePaths = map[string]*targetPaths{}
)

func init() {
	for _, f := range []string{"spec.httpRoute", "spec.http2Route", "spec.grpcRoute"} {
		routeTypePaths[f] = newRoutePaths(f)
		t := routeTypePaths[f].target
		targetTypePaths[t] = newTargetPaths(t)
	}
}

func newRoutePaths(f string) *routePaths {
	m := f + ".match"
	return &routePaths{
		match: m, prefix: m + ".prefix", path: m + ".path", hostname: m + ".hostname", headers: m + ".headers",
		query: m + ".queryParameters", method: m + ".method", port: m + ".port", target: f + ".action.target",
	}
}

func newTargetPaths(t string) *targetPaths {
	s := t + ".virtualService"
	return &targetPaths{service: s, ref: s + ".virtualServiceRef", arn: s + ".virtualServiceARN", port: t + ".port"}
}

// routePathsOf returns the paths under route field f.
func routePathsOf(f string) *routePaths {
	if p, ok := routeTypePaths[f]; ok {
		return p
	}
	return newRoutePaths(f)
}

// targetPathsOf returns the paths under target field t.
func targetPathsOf(t string) *targetPaths {
	if p, ok := targetTypePaths[t]; ok {
		return p
	}
	return newTargetPaths(t)
}
