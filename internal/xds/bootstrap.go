package xds

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpup "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// XDSCluster is the bootstrap's static cluster that reaches meshgate.
const XDSCluster = "meshgate_xds"

// BootstrapOptions says what an upstream Envoy's bootstrap points at.
type BootstrapOptions struct {
	// NodeID is the App Mesh node id: mesh/<mesh>/virtualGateway/<name> or .../virtualNode/<name>.
	NodeID string
	// Cluster is node.cluster; empty means the node id, as the App Mesh agent does.
	Cluster string
	// XDSAddress is meshgate's ADS server: HOST:PORT or unix:///PATH.
	XDSAddress string
	// AdminAddress is Envoy's admin HOST:PORT; empty leaves the admin off.
	AdminAddress string
	// SDSSocket, when set, adds the App Mesh SDS cluster over this Unix
	// socket, for sds.secretName certificates.
	SDSSocket string
}

// Bootstrap returns the Envoy v3 bootstrap of an App Mesh Envoy served by
// meshgate, as the aws-appmesh-envoy agent would write it (reference §7):
// state-of-the-world ADS over gRPC, LDS and CDS over ADS.
func Bootstrap(o BootstrapOptions) (*bootstrap.Bootstrap, error) {
	if _, err := ParseNodeID(o.NodeID); err != nil {
		return nil, err
	}
	xdsAddr, err := address(o.XDSAddress)
	if err != nil {
		return nil, fmt.Errorf("xds address: %w", err)
	}
	clusterName := o.Cluster
	if clusterName == "" {
		clusterName = o.NodeID
	}
	ads := &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3}
	b := &bootstrap.Bootstrap{
		Node: &core.Node{Id: o.NodeID, Cluster: clusterName},
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:             core.ApiConfigSource_GRPC,
				TransportApiVersion: core.ApiVersion_V3,
				GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: XDSCluster},
				}}},
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{staticHTTP2Cluster(XDSCluster, xdsAddr)}},
	}
	if o.SDSSocket != "" {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, staticHTTP2Cluster(SDSCluster, pipe(o.SDSSocket)))
	}
	if o.AdminAddress != "" {
		a, err := address(o.AdminAddress)
		if err != nil {
			return nil, fmt.Errorf("admin address: %w", err)
		}
		b.Admin = &bootstrap.Admin{Address: a}
	}
	if err := b.ValidateAll(); err != nil {
		return nil, err
	}
	return b, nil
}

func pipe(path string) *core.Address {
	return &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: path}}}
}

func address(a string) (*core.Address, error) {
	if path, ok := strings.CutPrefix(a, "unix://"); ok {
		return pipe(path), nil
	}
	host, p, err := net.SplitHostPort(a)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("%q: bad port", a)
	}
	return socketAddress(host, port), nil
}

func staticHTTP2Cluster(name string, addr *core.Address) *cluster.Cluster {
	typ := cluster.Cluster_STATIC
	if sa := addr.GetSocketAddress(); sa != nil && net.ParseIP(sa.Address) == nil {
		typ = cluster.Cluster_STRICT_DNS
	}
	opts, _ := anypb.New(&httpup.HttpProtocolOptions{UpstreamProtocolOptions: &httpup.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpup.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpup.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
		},
	}})
	return &cluster.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          &cluster.Cluster_Type{Type: typ},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": opts},
		LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: addr}}}},
		}}},
	}
}
