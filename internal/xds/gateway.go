package xds

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/meshgate/meshgate/internal/ir"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// GatewayListenerName names the listener (and route configuration) of a
// gateway port.
func GatewayListenerName(port int) string { return "gateway_" + strconv.Itoa(port) }

// Gateway translates the VirtualGateway named "namespace/name" for the
// gateway's own Envoy.
//
// A listener's connectionPool becomes the circuit breakers of the clusters
// its routes send to (the App Mesh API defines its limits as connections
// and requests toward the upstream cluster): http maxConnections and
// maxPendingRequests, http2 and grpc maxRequests.
//
// Host groups become virtual hosts: one per exact hostname, one per
// hostname suffix ("*<suffix>") and "*". Envoy picks one virtual host and
// never falls back to another, while the Go data plane falls through from
// the hostname's group to its suffix groups (longest first) and then to
// the routes without a hostname; so each virtual host repeats, after its
// own routes, the routes of every group a request it selects would fall
// through to.
//
// A gateway route whose service is provided by a VirtualRouter becomes one
// Envoy route per router route, in router order: the gateway route's match
// AND-ed with the router route's match on the forwarded request (reference
// §2.3: the gateway is the mesh client, so the router sees the rewritten
// path). The router route's path condition is carried back through the
// rewrite: with a path rewrite it is decided once; with a prefix rewrite
// prefix/exact conditions become a regex on the received path. Then one
// more route with the gateway route's match alone answers 503, as the Go
// data plane does when no router route matches: a request the gateway
// route took never falls through to a later gateway route. A pair that
// Envoy cannot express (two regexes) ends the expansion with that 503
// route, so later router routes are not reachable through this gateway
// route; a warning says so.
func Gateway(cfg *ir.Config, name string) (*Resources, error) {
	g := cfg.Gateway(name)
	if g == nil {
		return nil, fmt.Errorf("virtual gateway %s not in config", name)
	}
	t := newTranslator(cfg, false)
	t.clientTLS = g.ClientTLS
	r := &Resources{}
	for _, l := range g.Listeners {
		// App Mesh defines a gateway listener's connectionPool as limits
		// toward the upstream cluster (circuit breakers), so the clusters
		// this listener's routes use are its own.
		t.pool, t.variant = l.Pool, ""
		if l.Pool != nil {
			t.variant = "~" + GatewayListenerName(l.Port)
		}
		rc := t.gatewayRoutes(g, l)
		r.Routes = append(r.Routes, rc)
		ln, err := t.gatewayListener(g, l, rc.Name)
		if err != nil {
			return nil, fmt.Errorf("gateway %s port %d: %w", g.Name, l.Port, err)
		}
		r.Listeners = append(r.Listeners, ln)
	}
	return t.finish(r)
}

func (t *translator) gatewayRoutes(g *ir.Gateway, l *ir.Listener) *route.RouteConfiguration {
	name := GatewayListenerName(l.Port)
	expanded := make([][]*route.Route, len(l.Routes))
	collect := func(groups ...[]int) []*route.Route {
		var out []*route.Route
		for _, idx := range groups {
			for _, i := range idx {
				if expanded[i] == nil {
					expanded[i] = t.gatewayRoute(g, l.Routes[i])
				}
				out = append(out, expanded[i]...)
			}
		}
		return out
	}
	rc := &route.RouteConfiguration{Name: name, ValidateClusters: wrapperspb.Bool(false)}
	hosts := make([]string, 0, len(l.Hosts))
	for h := range l.Hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		groups := [][]int{l.Hosts[h]}
		for _, s := range l.Suffixes {
			if len(h) > len(s.Suffix) && h[len(h)-len(s.Suffix):] == s.Suffix {
				groups = append(groups, s.Routes)
			}
		}
		groups = append(groups, l.AnyHost)
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "host " + h, Domains: []string{h}, Routes: collect(groups...)})
	}
	for i, s := range l.Suffixes {
		groups := [][]int{s.Routes}
		for _, shorter := range l.Suffixes[i+1:] {
			if len(shorter.Suffix) < len(s.Suffix) && s.Suffix[len(s.Suffix)-len(shorter.Suffix):] == shorter.Suffix {
				groups = append(groups, shorter.Routes)
			}
		}
		groups = append(groups, l.AnyHost)
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "suffix " + s.Suffix, Domains: []string{"*" + s.Suffix}, Routes: collect(groups...)})
	}
	rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "any host", Domains: []string{"*"}, Routes: collect(l.AnyHost)})
	return rc
}

// gatewayRoute expands one gateway route into Envoy routes.
func (t *translator) gatewayRoute(g *ir.Gateway, gr *ir.GatewayRoute) []*route.Route {
	own, err := conjoin(conds(&gr.Match))
	if err != nil {
		t.warn("gateway %s route %s: %v; it is not served", g.Name, gr.Name, err)
		return nil
	}
	if own.never {
		return nil
	}
	rw := rewriter(gr)
	fail := func(reason string) []*route.Route {
		return []*route.Route{t.forward(gr.Name, routeMatch(own, &gr.Match), nil, nil, nil, reason, nil)}
	}
	svc := t.cfg.Services[gr.Target.Service]
	switch {
	case svc == nil:
		return fail("virtual service " + gr.Target.Service + " not found")
	case svc.Node != "":
		if t.cfg.Nodes[svc.Node] == nil {
			return fail("virtual node " + svc.Node + " not found")
		}
		tg := []target{{cluster: t.nodeCluster(svc.Node, gr.Target.Port, 0), weight: 1}}
		return []*route.Route{t.forward(gr.Name, routeMatch(own, &gr.Match), tg, ir.DefaultRetryPolicy(), nil, "", rw)}
	case svc.Router == "":
		return fail("virtual service " + svc.Name + " has no provider")
	}
	vr := t.cfg.Routers[svc.Router]
	if vr == nil {
		return fail("virtual router " + svc.Router + " not found")
	}
	port := gr.Target.Port
	if port == 0 && len(vr.Listeners) == 1 {
		port = vr.Listeners[0].Port
	}
	fwd := forwardOf(gr)
	var out []*route.Route
	for _, rt := range vr.Routes {
		if rt == nil || rt.Kind == "tcp" || (rt.Match.Port != 0 && port != 0 && rt.Match.Port != port) {
			continue
		}
		spec, ok, err := composed(gr, rt, fwd)
		if err != nil {
			t.warn("gateway %s route %s with router %s route %s: %v; requests for it and for later routes get 503", g.Name, gr.Name, vr.Name, rt.Name, err)
			break
		}
		if !ok {
			continue
		}
		reason := "route " + rt.Name + " of virtual router " + vr.Name + " has no target with weight > 0"
		out = append(out, t.forward(routeName(gr.Name, rt.Name), routeMatch(spec, &gr.Match, &rt.Match), t.routerTargets(rt, port), rt.Retry, rt.Timeout, reason, rw))
	}
	return append(out, fail(noRouteReason(vr.Name))...)
}

// composed is the path specifier of gateway route gr AND router route rt.
func composed(gr *ir.GatewayRoute, rt *ir.Route, fwd forwarded) (pathSpec, bool, error) {
	cs := conds(&gr.Match)
	for _, c := range conds(&rt.Match) {
		out, ok, err := fwd.onReceived(c)
		if err != nil || !ok {
			return pathSpec{}, false, err
		}
		cs = append(cs, out...)
	}
	spec, err := conjoin(cs)
	if err != nil || spec.never {
		return pathSpec{}, false, err
	}
	return spec, true, nil
}

// rewriter applies App Mesh's rewrites (reference §2.3) as the IR states
// them: compile has already applied the defaults.
func rewriter(gr *ir.GatewayRoute) func(*route.RouteAction) {
	return func(a *route.RouteAction) {
		switch {
		case gr.Rewrite.Path != "":
			a.RegexRewrite = &matcher.RegexMatchAndSubstitute{Pattern: &matcher.RegexMatcher{Regex: "^.*$"}, Substitution: withSlash(gr.Rewrite.Path)}
		case gr.Rewrite.Prefix != "":
			// Envoy's prefix_rewrite would keep the slashes after the
			// matched prefix; App Mesh drops them.
			a.RegexRewrite = &matcher.RegexMatchAndSubstitute{
				Pattern:      &matcher.RegexMatcher{Regex: "^" + regexp.QuoteMeta(gr.Match.Prefix) + "/*"},
				Substitution: withSlash(gr.Rewrite.Prefix),
			}
		}
		if h := gr.Rewrite.Hostname; h != "" {
			a.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: h}
		}
	}
}

func typed(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // only known message types are passed
	}
	return a
}

func (t *translator) gatewayListener(g *ir.Gateway, l *ir.Listener, rds string) (*listener.Listener, error) {
	m := &hcm.HttpConnectionManager{
		StatPrefix: "ingress",
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsSource(), RouteConfigName: rds,
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: typed(&routerfilter.Router{})},
		}},
		// Reference §2.2: App Mesh normalises paths when matching them.
		NormalizePath: wrapperspb.Bool(true),
		MergeSlashes:  true,
		StripPortMode: &hcm.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
	}
	if l.Protocol == "http" {
		m.UpgradeConfigs = []*hcm.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	}
	if al := g.AccessLog; al != nil {
		fl := &fileal.FileAccessLog{Path: al.Path}
		switch {
		case al.Text != "":
			fl.AccessLogFormat = &fileal.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
				Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: inlineString(al.Text)},
			}}
		case len(al.JSON) > 0:
			fields := map[string]*structpb.Value{}
			for _, kv := range al.JSON {
				fields[kv.Key] = structpb.NewStringValue(kv.Value)
			}
			fl.AccessLogFormat = &fileal.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
				Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: fields}},
			}}
		}
		m.AccessLog = []*accesslog.AccessLog{{Name: "envoy.access_loggers.file", ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: typed(fl)}}}
	}
	plain := &listener.FilterChain{Filters: []*listener.Filter{{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(m)},
	}}}
	ln := &listener.Listener{Name: GatewayListenerName(l.Port), Address: socketAddress("0.0.0.0", l.Port)}
	chains, filters, err := tlsChains(plain, l.TLS, l.Protocol)
	if err != nil {
		return nil, err
	}
	ln.FilterChains, ln.ListenerFilters = chains, filters
	return ln, nil
}

// tlsChains terminates TLS as the listener's mode says: STRICT serves
// only TLS, PERMISSIVE adds the plaintext chain and a TLS inspector to
// tell them apart.
func tlsChains(plain *listener.FilterChain, tls *ir.ListenerTLS, protocol string) ([]*listener.FilterChain, []*listener.ListenerFilter, error) {
	if !tls.Terminates() {
		return []*listener.FilterChain{plain}, nil, nil
	}
	ctx := &tlsv3.CommonTlsContext{}
	if protocol == "http2" || protocol == "grpc" {
		ctx.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	if err := certificate(ctx, &tls.Certificate); err != nil {
		return nil, nil, err
	}
	dt := &tlsv3.DownstreamTlsContext{CommonTlsContext: ctx}
	if v := tls.ClientValidation; v != nil {
		if err := validation(ctx, v, ""); err != nil {
			return nil, nil, err
		}
		dt.RequireClientCertificate = wrapperspb.Bool(true)
	}
	ts, err := transportSocket(dt)
	if err != nil {
		return nil, nil, err
	}
	name := plain.Name
	if name != "" {
		name += "_tls"
	}
	secure := &listener.FilterChain{Name: name, FilterChainMatch: proto.Clone(plain.FilterChainMatch).(*listener.FilterChainMatch), Filters: plain.Filters, TransportSocket: ts}
	if tls.Mode != ir.TLSPermissive {
		return []*listener.FilterChain{secure}, nil, nil
	}
	if secure.FilterChainMatch == nil {
		secure.FilterChainMatch = &listener.FilterChainMatch{}
	}
	secure.FilterChainMatch.TransportProtocol = "tls"
	inspector := &listener.ListenerFilter{
		Name:       "envoy.filters.listener.tls_inspector",
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: typed(&tlsinspector.TlsInspector{})},
	}
	return []*listener.FilterChain{secure, plain}, []*listener.ListenerFilter{inspector}, nil
}
