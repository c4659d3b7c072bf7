// Package xds owns meshgate as an Envoy control plane: the pure
// translation of an ir.Config into Envoy v3 resources (Listener,
// RouteConfiguration, Cluster, ClusterLoadAssignment) for App Mesh's
// VirtualGateway Envoys, VirtualNode Envoy sidecars and proxyless gRPC
// clients that are VirtualNodes, and the ADS server that serves them keyed
// by the App Mesh node id (a node's sidecar and its proxyless clients are
// told apart by the xDS user agent).
//
// Names: a gateway listener is "gateway_<port>" with route configuration
// "gateway_<port>"; the cluster of a VirtualNode listener is
// "vn/<namespace>/<name>/<port>" (ClusterName), its EDS resource has the
// same name; a cluster whose settings differ from that one's carries a
// suffix saying why: "~gateway_<port>" (that gateway listener's connection
// pool) or "~backend/<namespace>/<service>" (that backend's client policy).
// A proxyless client gets one API listener per backend of its node,
// named as it dials it: "<service>" and "<service>:<port>" per router
// listener port, with route configurations "client/<service>[:<port>]".
// Sidecar names follow App Mesh's (see Sidecar).
package xds

import (
	"errors"
	"fmt"
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/meshgate/meshgate/internal/ir"
)

// Resources is everything one xDS client is served.
type Resources struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
	// Warnings say what could not be translated faithfully; the resources
	// are still served.
	Warnings []string
}

type translator struct {
	cfg       *ir.Config
	proxyless bool
	// clientTLS, variant and pool are the context clusters are built in:
	// the TLS policy toward the upstream, the suffix that names clusters
	// whose settings differ from the node listener's plain cluster, and a
	// gateway listener's connection pool.
	clientTLS *ir.ClientTLS
	variant   string
	pool      *ir.ConnectionPool
	clusters  map[string]*cluster.Cluster
	endpoints map[string]*endpoint.ClusterLoadAssignment
	warnings  []string
	errs      []error
}

func newTranslator(cfg *ir.Config, proxyless bool) *translator {
	return &translator{cfg: cfg, proxyless: proxyless, clusters: map[string]*cluster.Cluster{}, endpoints: map[string]*endpoint.ClusterLoadAssignment{}}
}

func (t *translator) warn(format string, a ...any) {
	t.warnings = append(t.warnings, fmt.Sprintf(format, a...))
}
func (t *translator) fail(format string, a ...any) { t.errs = append(t.errs, fmt.Errorf(format, a...)) }

// finish collects the clusters and endpoints, sorted by name, and checks
// every resource with its proto validation.
func (t *translator) finish(r *Resources) (*Resources, error) {
	for _, c := range t.clusters {
		r.Clusters = append(r.Clusters, c)
	}
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].Name < r.Clusters[j].Name })
	for _, e := range t.endpoints {
		r.Endpoints = append(r.Endpoints, e)
	}
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].ClusterName < r.Endpoints[j].ClusterName })
	r.Warnings = append(r.Warnings, t.warnings...)
	sort.Strings(r.Warnings)
	if err := errors.Join(t.errs...); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

type validator interface{ ValidateAll() error }

// Validate runs every resource's proto validation.
func (r *Resources) Validate() error {
	var errs []error
	check := func(kind, name string, v validator) {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", kind, name, err))
		}
	}
	for _, l := range r.Listeners {
		check("listener", l.Name, l)
	}
	for _, rc := range r.Routes {
		check("route configuration", rc.Name, rc)
	}
	for _, c := range r.Clusters {
		check("cluster", c.Name, c)
	}
	for _, e := range r.Endpoints {
		check("endpoints", e.ClusterName, e)
	}
	return errors.Join(errs...)
}
