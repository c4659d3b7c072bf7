package xds

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpup "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/meshgate/meshgate/internal/ir"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Locality is the locality every EDS endpoint is placed in: proxyless gRPC
// drops endpoints without a locality or with locality weight 0.
var Locality = &core.Locality{Region: "meshgate"}

// SDSCluster is the static cluster of the App Mesh Envoy bootstrap that
// serves sds.secretName secrets over APPMESH_SDS_SOCKET_PATH (reference §7).
const SDSCluster = "static_cluster_sds_unix_socket"

// unlimited is App Mesh's fixed circuit-breaker limit (reference §3).
const unlimited = math.MaxInt32

// ClusterName names the cluster of one VirtualNode listener port.
func ClusterName(node string, port int) string { return "vn/" + node + "/" + strconv.Itoa(port) }

// nodeCluster returns the cluster of node's listener on port, building it
// on first use. Port 0 means the node's only listener, else fallback (the
// router's port). A missing node gets a cluster without endpoints.
func (t *translator) nodeCluster(name string, port, fallback int) string {
	n := t.cfg.Nodes[name]
	proto := "http"
	if port == 0 && n != nil && len(n.Listeners) == 1 {
		port = n.Listeners[0].Port
	}
	if port == 0 {
		port = fallback
	}
	if n != nil {
		for _, l := range n.Listeners {
			if l.Port == port {
				proto = l.Protocol
			}
		}
	}
	cn := ClusterName(name, port) + t.variant
	if _, ok := t.clusters[cn]; ok {
		return cn
	}
	c := &cluster.Cluster{
		Name:            cn,
		CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{poolThresholds(t.pool)}},
		LbPolicy:        cluster.Cluster_ROUND_ROBIN,
	}
	eds := func() {
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
		c.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
		cla := &endpoint.ClusterLoadAssignment{ClusterName: cn}
		if n != nil && len(n.Endpoints) > 0 {
			// Bare IP endpoints are the node's pods, called at the port of
			// this cluster's listener; IP:PORT ones are called as they are.
			lle := &endpoint.LocalityLbEndpoints{Locality: Locality, LoadBalancingWeight: wrapperspb.UInt32(1)}
			eps := n.EndpointsAt(port)
			if port == 0 && slices.ContainsFunc(n.Endpoints, func(ep string) bool { return !ir.EndpointHasPort(ep) }) {
				t.warn("virtual node %s: no listener port for its IP endpoints in cluster %s", name, cn)
			}
			for _, ep := range eps {
				host, p, err := net.SplitHostPort(ep)
				pn, perr := strconv.Atoi(p)
				if err != nil || perr != nil {
					t.warn("virtual node %s: endpoint %q is not IP:PORT", name, ep)
					continue
				}
				lle.LbEndpoints = append(lle.LbEndpoints, lbEndpoint(host, pn))
			}
			cla.Endpoints = []*endpoint.LocalityLbEndpoints{lle}
		}
		t.endpoints[cn] = cla
	}
	switch {
	case n == nil:
		t.warn("virtual node %s not found: cluster %s has no endpoints", name, cn)
		eds()
	case len(n.Endpoints) > 0 || t.proxyless:
		if len(n.Endpoints) == 0 {
			t.warn("virtual node %s: proxyless clients need fixed endpoints (EDS); %s has none", name, cn)
		}
		eds()
	case n.Hostname != "":
		typ := cluster.Cluster_LOGICAL_DNS
		if n.ResponseType == "ENDPOINTS" {
			typ = cluster.Cluster_STRICT_DNS
		}
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: typ}
		c.LoadAssignment = &endpoint.ClusterLoadAssignment{ClusterName: cn, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{lbEndpoint(n.Hostname, port)},
		}}}
	default:
		t.warn("virtual node %s: no DNS hostname and no endpoints (Cloud Map is not discovered): cluster %s has no endpoints", name, cn)
		eds()
	}
	if proto == "http2" || proto == "grpc" {
		opts, _ := anypb.New(&httpup.HttpProtocolOptions{UpstreamProtocolOptions: &httpup.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpup.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpup.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
			},
		}})
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": opts}
	}
	if n != nil {
		if p := n.Policies[port]; p != nil {
			if hc := p.HealthCheck; hc != nil && !t.proxyless {
				c.HealthChecks = []*core.HealthCheck{healthCheck(hc)}
			}
			if o := p.OutlierDetection; o != nil {
				c.OutlierDetection = &cluster.OutlierDetection{
					Consecutive_5Xx:    wrapperspb.UInt32(uint32(o.MaxServerErrors)),
					Interval:           millis(o.IntervalMillis),
					BaseEjectionTime:   millis(o.BaseEjectionDurationMillis),
					MaxEjectionPercent: wrapperspb.UInt32(uint32(o.MaxEjectionPercent)),
				}
			}
		}
	}
	if t.clientTLS.AppliesTo(port) && !t.proxyless {
		sni := ""
		if n != nil {
			sni = n.Hostname
		}
		ts, err := upstreamTLS(t.clientTLS, sni)
		if err != nil {
			t.fail("cluster %s: %v", cn, err)
		} else {
			c.TransportSocket = ts
		}
	}
	t.clusters[cn] = c
	return cn
}

// poolThresholds are App Mesh's unlimited circuit breakers with the
// limits of pool, if any, in their place.
func poolThresholds(pool *ir.ConnectionPool) *cluster.CircuitBreakers_Thresholds {
	th := unlimitedThresholds()
	if pool == nil {
		return th
	}
	limit := func(v int) *wrapperspb.UInt32Value { return wrapperspb.UInt32(uint32(min(v, math.MaxUint32))) }
	if pool.MaxConnections > 0 {
		th.MaxConnections = limit(pool.MaxConnections)
	}
	if pool.MaxPendingRequests > 0 {
		th.MaxPendingRequests = limit(pool.MaxPendingRequests)
	}
	if pool.MaxRequests > 0 {
		th.MaxRequests = limit(pool.MaxRequests)
	}
	return th
}

func unlimitedThresholds() *cluster.CircuitBreakers_Thresholds {
	u := wrapperspb.UInt32(unlimited)
	return &cluster.CircuitBreakers_Thresholds{MaxConnections: u, MaxPendingRequests: u, MaxRequests: u, MaxRetries: u}
}

func lbEndpoint(host string, port int) *endpoint.LbEndpoint {
	return &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
		Address: socketAddress(host, port),
	}}}
}

func socketAddress(host string, port int) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}

func healthCheck(hc *ir.HealthCheck) *core.HealthCheck {
	h := &core.HealthCheck{
		Timeout:            millis(hc.TimeoutMillis),
		Interval:           millis(hc.IntervalMillis),
		HealthyThreshold:   wrapperspb.UInt32(uint32(hc.HealthyThreshold)),
		UnhealthyThreshold: wrapperspb.UInt32(uint32(hc.UnhealthyThreshold)),
	}
	switch hc.Protocol {
	case "http", "http2":
		path := hc.Path
		if path == "" {
			path = "/"
		}
		hh := &core.HealthCheck_HttpHealthCheck{Path: path}
		if hc.Protocol == "http2" {
			hh.CodecClientType = typev3.CodecClientType_HTTP2
		}
		h.HealthChecker = &core.HealthCheck_HttpHealthCheck_{HttpHealthCheck: hh}
	case "grpc":
		h.HealthChecker = &core.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &core.HealthCheck_GrpcHealthCheck{}}
	default:
		h.HealthChecker = &core.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &core.HealthCheck_TcpHealthCheck{}}
	}
	return h
}

// sdsSecret is a secret fetched from the Envoy's local SDS server.
func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &core.ConfigSource{
		ResourceApiVersion: core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_ApiConfigSource{ApiConfigSource: &core.ApiConfigSource{
			ApiType:             core.ApiConfigSource_GRPC,
			TransportApiVersion: core.ApiVersion_V3,
			GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: SDSCluster},
			}}},
		}},
	}}
}

func fileSource(path string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: path}}
}

func inlineString(s string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: s}}
}

// certificate adds a certificate source to ctx; ACM cannot be used
// outside AWS.
func certificate(ctx *tlsv3.CommonTlsContext, c *ir.CertificateSource) error {
	switch {
	case c.SDSSecret != "":
		ctx.TlsCertificateSdsSecretConfigs = append(ctx.TlsCertificateSdsSecretConfigs, sdsSecret(c.SDSSecret))
	case c.CertificateChain != "":
		ctx.TlsCertificates = append(ctx.TlsCertificates, &tlsv3.TlsCertificate{
			CertificateChain: fileSource(c.CertificateChain), PrivateKey: fileSource(c.PrivateKey),
		})
	default:
		return fmt.Errorf("%s cannot be used outside AWS", c)
	}
	return nil
}

// validation sets who ctx trusts; sanDefault is the name the peer must
// carry when the policy lists no SANs (reference §4.4), empty for none.
func validation(ctx *tlsv3.CommonTlsContext, v *ir.TLSValidation, sanDefault string) error {
	vc := &tlsv3.CertificateValidationContext{}
	sans := v.SubjectAlternativeNames
	if len(sans) == 0 && sanDefault != "" {
		sans = []string{sanDefault}
	}
	for _, s := range sans {
		typ := tlsv3.SubjectAltNameMatcher_DNS
		if strings.Contains(s, "://") {
			typ = tlsv3.SubjectAltNameMatcher_URI
		}
		vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: typ, Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}},
		})
	}
	switch {
	case v.TrustFile != "":
		vc.TrustedCa = fileSource(v.TrustFile)
	case v.TrustSDSSecret != "":
		// The SDS secret carries the CAs; SANs stay in the combined context.
		ctx.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         vc,
			ValidationContextSdsSecretConfig: sdsSecret(v.TrustSDSSecret),
		}}
		return nil
	default:
		return fmt.Errorf("ACM certificate authorities cannot be used outside AWS")
	}
	ctx.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	return nil
}

func upstreamTLS(p *ir.ClientTLS, sni string) (*core.TransportSocket, error) {
	ctx := &tlsv3.CommonTlsContext{}
	if p.Certificate != nil {
		if err := certificate(ctx, p.Certificate); err != nil {
			return nil, err
		}
	}
	if err := validation(ctx, &p.Validation, sni); err != nil {
		return nil, err
	}
	return transportSocket(&tlsv3.UpstreamTlsContext{CommonTlsContext: ctx, Sni: sni})
}

func transportSocket(m proto.Message) (*core.TransportSocket, error) {
	a, err := anypb.New(m)
	if err != nil {
		return nil, err
	}
	return &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}
