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
	originaldst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
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
// health check; and listener "lds_egress_0.0.0.0_15001" whose route
// configuration "rds_egress_http_15001" has one virtual host per
// VirtualService (its hostname, with and without each port), with the
// router's routes, retries, timeouts and weighted clusters, TLS
// origination from the node's client policy. The IR does not record a
// node's backends, so every VirtualService is reachable; TCP routes and
// Cloud Map discovery are not translated.
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
	svcs := make([]string, 0, len(cfg.Services))
	for s := range cfg.Services {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	for _, s := range svcs {
		svc := cfg.Services[s]
		if svc.Hostname == "" {
			continue
		}
		domains := []string{svc.Hostname}
		var routes []*route.Route
		switch {
		case svc.Node != "":
			tg := []target{{cluster: t.nodeCluster(svc.Node, 0, 0), weight: 1}}
			routes = []*route.Route{t.forward(svc.Name, routeMatch(pathSpec{}), tg, ir.DefaultRetryPolicy(), nil, "", nil)}
			if vn := cfg.Nodes[svc.Node]; vn != nil {
				for _, l := range vn.Listeners {
					domains = append(domains, svc.Hostname+":"+strconv.Itoa(l.Port))
				}
			}
		case cfg.Routers[svc.Router] != nil:
			vr := cfg.Routers[svc.Router]
			port := 0
			if len(vr.Listeners) == 1 {
				port = vr.Listeners[0].Port
			}
			for _, l := range vr.Listeners {
				domains = append(domains, svc.Hostname+":"+strconv.Itoa(l.Port))
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
			continue
		}
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: svc.Name, Domains: uniq(domains), Routes: routes})
	}
	r.Routes = append(r.Routes, rc)
	r.Listeners = append(r.Listeners, &listener.Listener{
		Name:    "lds_egress_0.0.0.0_" + strconv.Itoa(EgressPort),
		Address: socketAddress("0.0.0.0", EgressPort),
		ListenerFilters: []*listener.ListenerFilter{{
			Name:       "envoy.filters.listener.original_dst",
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: typed(&originaldst.OriginalDst{})},
		}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: typed(httpManager("egress", egressRDS, "http"))},
		}}}},
	})
	return t.finish(r)
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
	th := unlimitedThresholds()
	if pool := p.Pool; pool != nil {
		if pool.MaxConnections > 0 {
			th.MaxConnections = wrapperspb.UInt32(uint32(pool.MaxConnections))
		}
		if pool.MaxPendingRequests > 0 {
			th.MaxPendingRequests = wrapperspb.UInt32(uint32(pool.MaxPendingRequests))
		}
		if pool.MaxRequests > 0 {
			th.MaxRequests = wrapperspb.UInt32(uint32(pool.MaxRequests))
		}
	}
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
