package xds

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	originaldst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/meshgate/meshgate/internal/ir"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Ports of the App Mesh sidecar: iptables redirect inbound traffic to the
// ingress port and outbound traffic to the egress port (reference §7).
const (
	IngressPort = 15000
	EgressPort  = 15001
)

// Sidecar translates what the App Mesh Envoy sidecar of VirtualNode
// "namespace/name" is served, with App Mesh's resource names (reference
// §7): listener "lds_ingress_0.0.0.0_15000" with one filter chain per node
// listener (matched on the original destination port) to the local app
// cluster "cds_ingress_<awsName>_<protocol>_<port>" at 127.0.0.1, carrying
// the listener's TLS, timeout, connection pool (as circuit breakers) and
// health check; and listener "lds_egress_0.0.0.0_15001" for the node's
// backends only (spec.backends; the mesh's default egress filter, DROP_ALL,
// lets a proxy reach nothing else but AWS endpoints). Its route configuration
// "rds_egress_http_15001" has one virtual host per backend (its hostname,
// with and without each port) with the router's routes, retries, timeouts
// and weighted clusters; a backend's TCP ports get a filter chain each,
// matched on the original destination port, with a TCP proxy over the TCP
// route's weighted clusters. Clusters originate TLS under the backend's
// client policy, or else the node's backendDefaults. With the mesh's
// egressFilter ALLOW_ALL, what is for no backend passes through to its
// original destination (see passthrough). Cloud Map discovery is not
// translated.
func Sidecar(cfg *ir.Config, node string) (*Resources, error) {
	n := cfg.Nodes[node]
	if n == nil {
		return nil, fmt.Errorf("virtual node %s not in config", node)
	}
	t := newTranslator(cfg, false)
	t.clientTLS = n.ClientTLS
	r := &Resources{}
	ns, name, _ := strings.Cut(node, "/")
	aws := name + "_" + ns
	in := &listener.Listener{
		Name:    "lds_ingress_0.0.0.0_" + strconv.Itoa(IngressPort),
		Address: socketAddress("0.0.0.0", IngressPort),
		ListenerFilters: []*listener.ListenerFilter{{
			Name:       "envoy.filters.listener.original_dst",
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: typed(&originaldst.OriginalDst{})},
		}},
	}
	for _, l := range n.Listeners {
		p := n.Policies[l.Port]
		if p == nil {
			p = &ir.NodeListenerPolicy{}
		}
		local := fmt.Sprintf("cds_ingress_%s_%s_%d", aws, l.Protocol, l.Port)
		t.clusters[local] = localCluster(local, l, p)
		var filter *listener.Filter
		if l.Protocol == "tcp" {
			tp := &tcpproxy.TcpProxy{StatPrefix: "ingress", ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: local}}
			if p.Timeout != nil && p.Timeout.IdleMillis != nil {
				tp.IdleTimeout = millis(*p.Timeout.IdleMillis)
			}
			filter = &listener.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(tp)}}
		} else {
			rds := fmt.Sprintf("rds_ingress_%s_%d", l.Protocol, l.Port)
			a := &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: local}}
			t.applyTimeout(a, p.Timeout)
			r.Routes = append(r.Routes, &route.RouteConfiguration{Name: rds, VirtualHosts: []*route.VirtualHost{{
				Name: "ingress", Domains: []string{"*"},
				Routes: []*route.Route{{Match: routeMatch(pathSpec{}), Action: &route.Route_Route{Route: a}}},
			}}})
			m := httpManager("ingress", rds, l.Protocol)
			if p.Timeout != nil && p.Timeout.IdleMillis != nil {
				m.CommonHttpProtocolOptions = commonIdle(*p.Timeout.IdleMillis)
			}
			filter = &listener.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(m)}}
		}
		plain := &listener.FilterChain{
			Name:             fmt.Sprintf("ingress_%s_%d", l.Protocol, l.Port),
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(l.Port))},
			Filters:          []*listener.Filter{filter},
		}
		chains, filters, err := tlsChains(plain, p.TLS, l.Protocol)
		if err != nil {
			return nil, fmt.Errorf("virtual node %s port %d: %w", node, l.Port, err)
		}
		in.FilterChains = append(in.FilterChains, chains...)
		if len(filters) > 0 && len(in.ListenerFilters) == 1 {
			in.ListenerFilters = append(in.ListenerFilters, filters...)
		}
	}
	r.Listeners = append(r.Listeners, in)

	egressRDS := "rds_egress_http_" + strconv.Itoa(EgressPort)
	rc := &route.RouteConfiguration{Name: egressRDS, ValidateClusters: wrapperspb.Bool(false)}
	tcp := map[int]*listener.FilterChain{}
	tcpOwner := map[int]string{}
	httpPorts := map[int][]string{}
	for _, b := range n.Backends {
		svc := cfg.Services[b.Service]
		if svc == nil || svc.Hostname == "" {
			t.warn("virtual node %s: backend %s is not an active virtual service; it gets no egress route", node, b.Service)
			continue
		}
		// Clusters toward a backend with its own client policy are its
		// own, so that other backends sending to the same nodes keep the
		// node's default policy.
		t.clientTLS, t.variant = n.BackendTLS(&b), ""
		if b.ClientTLS != nil {
			t.variant = "~backend/" + svc.Name
		}
		vh, ports := t.egressHost(svc)
		if vh != nil {
			rc.VirtualHosts = append(rc.VirtualHosts, vh)
		}
		for _, p := range ports {
			httpPorts[p] = append(httpPorts[p], svc.Name)
		}
		for port, fc := range t.egressTCP(svc) {
			if other, ok := tcpOwner[port]; ok {
				t.warn("virtual node %s: backends %s and %s both serve TCP on port %d, which only the destination port tells apart; %s gets the port", node, other, svc.Name, port, other)
				continue
			}
			tcp[port], tcpOwner[port] = fc, svc.Name
		}
	}
	t.clientTLS, t.variant = nil, ""
	r.Routes = append(r.Routes, rc)
	egress := &listener.Listener{
		Name:    "lds_egress_0.0.0.0_" + strconv.Itoa(EgressPort),
		Address: socketAddress("0.0.0.0", EgressPort),
		ListenerFilters: []*listener.ListenerFilter{{
			Name:       "envoy.filters.listener.original_dst",
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: typed(&originaldst.OriginalDst{})},
		}},
	}
	tcpPorts := make([]int, 0, len(tcp))
	for p := range tcp {
		tcpPorts = append(tcpPorts, p)
	}
	sort.Ints(tcpPorts)
	for _, p := range tcpPorts {
		if names := httpPorts[p]; len(names) > 0 {
			t.warn("virtual node %s: port %d carries TCP to backend %s, so calls to %s on that port are proxied as TCP too", node, p, tcpOwner[p], strings.Join(names, ", "))
		}
		egress.FilterChains = append(egress.FilterChains, tcp[p])
	}
	httpChain := &listener.FilterChain{Filters: []*listener.Filter{{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(httpManager("egress", egressRDS, "http"))},
	}}}
	egress.FilterChains = append(egress.FilterChains, httpChain)
	if n.EgressAllowAll {
		t.passthrough(rc, egress, httpChain)
	} else {
		t.awsPassthrough(rc, egress)
	}
	skipInspectors(egress, tcpPorts)
	r.Listeners = append(r.Listeners, egress)
	return t.finish(r)
}

// PassthroughCluster is where a sidecar sends traffic that is for no
// backend but that its mesh's egress filter lets out: the original
// destination.
const PassthroughCluster = "egress_passthrough"

// AWSDomain is what App Mesh's default egress filter, DROP_ALL, lets a
// proxy reach besides its backends (reference §1.1).
const AWSDomain = "*.amazonaws.com"

func (t *translator) passthroughCluster() *route.Route {
	t.clusters[PassthroughCluster] = &cluster.Cluster{
		Name:                 PassthroughCluster,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
		LbPolicy:             cluster.Cluster_CLUSTER_PROVIDED,
		CircuitBreakers:      &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{unlimitedThresholds()}},
	}
	return &route.Route{
		Name:   "passthrough",
		Match:  routeMatch(pathSpec{}),
		Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: PassthroughCluster}}},
	}
}

func passthroughChain(name string, m *listener.FilterChainMatch) *listener.FilterChain {
	tp := &tcpproxy.TcpProxy{StatPrefix: name, ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: PassthroughCluster}}
	return &listener.FilterChain{
		Name:             name,
		FilterChainMatch: m,
		Filters:          []*listener.Filter{{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(tp)}}},
	}
}

// passthrough lets traffic that is not for a backend through to the
// address the app dialled, as App Mesh's egressFilter ALLOW_ALL does: HTTP
// to hosts no backend names takes a last virtual host "*", and connections
// that are not HTTP (TLS to an outside API, a database) take a TCP proxy.
// An HTTP inspector tells the two apart; a protocol whose server speaks
// first gives it nothing to read, so its connections go on, as TCP, when
// the listener filter's timeout ends.
func (t *translator) passthrough(rc *route.RouteConfiguration, egress *listener.Listener, httpChain *listener.FilterChain) {
	rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "passthrough", Domains: []string{"*"}, Routes: []*route.Route{t.passthroughCluster()}})
	egress.ListenerFilters = append(egress.ListenerFilters, &listener.ListenerFilter{
		Name:       "envoy.filters.listener.http_inspector",
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: typed(&httpinspector.HttpInspector{})},
	})
	egress.ContinueOnListenerFiltersTimeout = true
	httpChain.Name = "egress_http"
	httpChain.FilterChainMatch = &listener.FilterChainMatch{ApplicationProtocols: []string{"http/1.1", "h2c"}}
	egress.FilterChains = append(egress.FilterChains, passthroughChain(PassthroughCluster, nil))
}

// awsPassthrough lets AWS endpoints through under the default egress
// filter: HTTP whose Host is under amazonaws.com, and TLS whose server
// name is (a TLS inspector reads it).
func (t *translator) awsPassthrough(rc *route.RouteConfiguration, egress *listener.Listener) {
	rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "amazonaws", Domains: []string{AWSDomain}, Routes: []*route.Route{t.passthroughCluster()}})
	egress.ListenerFilters = append(egress.ListenerFilters, &listener.ListenerFilter{
		Name:       "envoy.filters.listener.tls_inspector",
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: typed(&tlsinspector.TlsInspector{})},
	})
	egress.ContinueOnListenerFiltersTimeout = true
	egress.FilterChains = append(egress.FilterChains, passthroughChain("egress_amazonaws", &listener.FilterChainMatch{
		ServerNames: []string{AWSDomain}, TransportProtocol: "tls",
	}))
}

// skipInspectors turns the egress listener's protocol inspectors off for
// connections to the TCP backends' ports: they are matched on the port
// alone, and an inspector would hold a connection whose server speaks
// first until the listener filter's timeout.
func skipInspectors(egress *listener.Listener, tcpPorts []int) {
	if len(tcpPorts) == 0 {
		return
	}
	var rules []*listener.ListenerFilterChainMatchPredicate
	for _, p := range tcpPorts {
		rules = append(rules, &listener.ListenerFilterChainMatchPredicate{Rule: &listener.ListenerFilterChainMatchPredicate_DestinationPortRange{
			DestinationPortRange: &typev3.Int32Range{Start: int32(p), End: int32(p) + 1},
		}})
	}
	disabled := rules[0]
	if len(rules) > 1 {
		disabled = &listener.ListenerFilterChainMatchPredicate{Rule: &listener.ListenerFilterChainMatchPredicate_OrMatch{
			OrMatch: &listener.ListenerFilterChainMatchPredicate_MatchSet{Rules: rules},
		}}
	}
	for _, f := range egress.ListenerFilters {
		if f.Name != "envoy.filters.listener.original_dst" {
			f.FilterDisabled = disabled
		}
	}
}

// egressHost is the virtual host of backend svc on the egress route
// configuration (nil when it has no HTTP, HTTP/2 or gRPC listener), and
// the ports it serves those on.
func (t *translator) egressHost(svc *ir.VirtualService) (*route.VirtualHost, []int) {
	domains := []string{svc.Hostname}
	var routes []*route.Route
	var ports []int
	switch {
	case svc.Node != "":
		vn := t.cfg.Nodes[svc.Node]
		if vn != nil {
			for _, l := range vn.Listeners {
				if l.Protocol != "tcp" {
					ports = append(ports, l.Port)
				}
			}
			if len(ports) == 0 && len(vn.Listeners) > 0 {
				return nil, nil
			}
		}
		tg := []target{{cluster: t.nodeCluster(svc.Node, 0, 0), weight: 1}}
		routes = []*route.Route{t.forward(svc.Name, routeMatch(pathSpec{}), tg, ir.DefaultRetryPolicy(), nil, "", nil)}
	case t.cfg.Routers[svc.Router] != nil:
		vr := t.cfg.Routers[svc.Router]
		for _, l := range vr.Listeners {
			if l.Protocol != "tcp" {
				ports = append(ports, l.Port)
			}
		}
		if len(ports) == 0 {
			return nil, nil
		}
		port := 0
		if len(vr.Listeners) == 1 {
			port = vr.Listeners[0].Port
		}
		for _, rt := range vr.Routes {
			if rt == nil || rt.Kind == "tcp" {
				continue
			}
			spec, err := conjoin(conds(&rt.Match))
			if err != nil {
				t.warn("virtual router %s route %s: %v; later routes are not served", vr.Name, rt.Name, err)
				break
			}
			if spec.never {
				continue
			}
			reason := "route " + rt.Name + " of virtual router " + vr.Name + " has no target with weight > 0"
			routes = append(routes, t.forward(routeName(svc.Name, rt.Name), routeMatch(spec, &rt.Match), t.routerTargets(rt, port), rt.Retry, rt.Timeout, reason, nil))
		}
		routes = append(routes, t.forward(svc.Name, routeMatch(pathSpec{}), nil, nil, nil, noRouteReason(vr.Name), nil))
	default:
		return nil, nil
	}
	for _, p := range ports {
		domains = append(domains, svc.Hostname+":"+strconv.Itoa(p))
	}
	return &route.VirtualHost{Name: svc.Name, Domains: uniq(domains), Routes: routes}, ports
}

// egressTCP are the filter chains of backend svc's TCP ports, by port: a
// TCP proxy over the weighted targets of the first TCP route of the port
// (a TCP route matches on the port alone), or to the provider node's
// listener. The app dials the service's port and the original
// destination port is all the egress listener sees of it.
func (t *translator) egressTCP(svc *ir.VirtualService) map[int]*listener.FilterChain {
	out := map[int]*listener.FilterChain{}
	chain := func(port int, targets []target, to *ir.Timeout) {
		if len(targets) == 0 {
			t.warn("virtual service %s port %d: no TCP target with weight > 0; connections to it are not proxied", svc.Name, port)
			return
		}
		wc := &tcpproxy.TcpProxy_WeightedCluster{}
		for _, tg := range targets {
			wc.Clusters = append(wc.Clusters, &tcpproxy.TcpProxy_WeightedCluster_ClusterWeight{Name: tg.cluster, Weight: tg.weight})
		}
		tp := &tcpproxy.TcpProxy{StatPrefix: "egress_tcp_" + strconv.Itoa(port), ClusterSpecifier: &tcpproxy.TcpProxy_WeightedClusters{WeightedClusters: wc}}
		if to != nil && to.IdleMillis != nil {
			tp.IdleTimeout = millis(*to.IdleMillis)
		}
		out[port] = &listener.FilterChain{
			Name:             "egress_tcp_" + strconv.Itoa(port),
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(port))},
			Filters:          []*listener.Filter{{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(tp)}}},
		}
	}
	switch {
	case svc.Node != "":
		if vn := t.cfg.Nodes[svc.Node]; vn != nil {
			for _, l := range vn.Listeners {
				if l.Protocol == "tcp" {
					chain(l.Port, []target{{cluster: t.nodeCluster(svc.Node, l.Port, 0), weight: 1}}, nil)
				}
			}
		}
	case t.cfg.Routers[svc.Router] != nil:
		vr := t.cfg.Routers[svc.Router]
		for _, l := range vr.Listeners {
			if l.Protocol != "tcp" {
				continue
			}
			found := false
			for _, rt := range vr.Routes {
				if rt != nil && rt.Kind == "tcp" && (rt.Match.Port == 0 || rt.Match.Port == l.Port) {
					chain(l.Port, t.routerTargets(rt, l.Port), rt.Timeout)
					found = true
					break
				}
			}
			if !found {
				t.warn("virtual router %s: TCP listener %d has no route; connections to %s on it are not proxied", vr.Name, l.Port, svc.Name)
			}
		}
	}
	return out
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func httpManager(stat, rds, protocol string) *hcm.HttpConnectionManager {
	m := &hcm.HttpConnectionManager{
		StatPrefix: stat,
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsSource(), RouteConfigName: rds,
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: typed(&routerfilter.Router{})},
		}},
	}
	if protocol == "http" {
		m.UpgradeConfigs = []*hcm.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	}
	return m
}

// localCluster is the local app behind one node listener. The listener's
// connection pool limits what this Envoy sends the app (reference §4.5).
func localCluster(name string, l ir.PortProto, p *ir.NodeListenerPolicy) *cluster.Cluster {
	th := poolThresholds(p.Pool)
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		CircuitBreakers:      &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{th}},
		LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{lbEndpoint("127.0.0.1", l.Port)},
		}}},
	}
	if l.Protocol == "http2" || l.Protocol == "grpc" {
		c.TypedExtensionProtocolOptions = staticHTTP2Cluster(name, socketAddress("127.0.0.1", l.Port)).TypedExtensionProtocolOptions
	}
	if p.HealthCheck != nil {
		c.HealthChecks = append(c.HealthChecks, healthCheck(p.HealthCheck))
	}
	return c
}

func commonIdle(ms int64) *core.HttpProtocolOptions {
	return &core.HttpProtocolOptions{IdleTimeout: millis(ms)}
}
