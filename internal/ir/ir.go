// Package ir is the compiled routing table: plain, immutable data that every
// sink consumes (the Go data plane, the CLI, later xDS and status writers).
// It holds no Kubernetes types. Regular expressions, host tables and route
// order are computed once by compile, never per request. Object names are
// "namespace/name".
package ir

import (
	"cmp"
	"encoding/json"
	"regexp"
	"slices"
)

// Config is everything compile produced from one resource set.
type Config struct {
	Gateways []*Gateway                 `json:"gateways"`
	Services map[string]*VirtualService `json:"virtualServices"`
	Routers  map[string]*VirtualRouter  `json:"virtualRouters"`
	Nodes    map[string]*VirtualNode    `json:"virtualNodes"`
	// Statuses holds one entry per input object, sorted by kind, namespace, name.
	Statuses []ObjectStatus `json:"statuses"`
}

// Gateway is one VirtualGateway and the routes attached to it.
type Gateway struct {
	Name      string      `json:"name"`
	Mesh      string      `json:"mesh"`
	Listeners []*Listener `json:"listeners"` // sorted by port
	AccessLog *AccessLog  `json:"accessLog,omitempty"`
	// ClientTLS is spec.backendDefaults.clientPolicy.tls: TLS origination
	// to upstreams.
	ClientTLS *ClientTLS `json:"clientTLS,omitempty"`
}

// Listener is one gateway port and its route table.
type Listener struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // http, http2 or grpc
	// Routes are every GatewayRoute served on this port, in precedence order.
	Routes []*GatewayRoute `json:"routes"`
	// Hosts maps a lower-case exact hostname to the indexes in Routes of the
	// routes that name it, in precedence order.
	Hosts map[string][]int `json:"hosts,omitempty"`
	// Suffixes are the routes with a hostname suffix, longest suffix first.
	Suffixes []HostSuffix `json:"suffixes,omitempty"`
	// AnyHost are the indexes of routes without a hostname, in precedence order.
	AnyHost []int `json:"anyHost,omitempty"`
	// TLS terminates TLS on this listener; nil serves plaintext.
	TLS *ListenerTLS `json:"tls,omitempty"`
	// Pool limits what this listener accepts at once; nil is unlimited.
	Pool *ConnectionPool `json:"connectionPool,omitempty"`
	// HealthCheck is the listener's healthCheck as written.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// HostSuffix is the routes that match hosts ending in Suffix (lower case).
type HostSuffix struct {
	Suffix string `json:"suffix"`
	Routes []int  `json:"routes"`
}

// GatewayRoute is a compiled GatewayRoute.
type GatewayRoute struct {
	Name string `json:"name"`
	// Kind is http, http2 or grpc.
	Kind string `json:"kind"`
	// Priority is the effective priority: 0..1000 as written, 1001 when unset.
	Priority int     `json:"priority"`
	Match    Match   `json:"match"`
	Target   Target  `json:"target"`
	Rewrite  Rewrite `json:"rewrite"`
}

// Target is where a GatewayRoute sends: a VirtualService and, optionally, a port.
type Target struct {
	Service string `json:"virtualService"`
	Port    int    `json:"port,omitempty"`
}

// Rewrite is how the forwarded request differs from the received one.
type Rewrite struct {
	// Hostname is the Host sent upstream; empty keeps the request's Host.
	Hostname string `json:"hostname,omitempty"`
	// Prefix replaces Match.Prefix at the start of the path, with the
	// slashes that followed the matched prefix dropped; empty leaves the path alone.
	Prefix string `json:"prefix,omitempty"`
	// Path replaces the whole path; empty leaves it alone.
	Path string `json:"path,omitempty"`
}

// Match is the criteria of a GatewayRoute or Route; all present criteria must hold.
type Match struct {
	Hostname  *HostnameMatch `json:"hostname,omitempty"`
	Prefix    string         `json:"prefix,omitempty"`
	PathExact string         `json:"pathExact,omitempty"`
	PathRegex *Regexp        `json:"pathRegex,omitempty"`
	Method    string         `json:"method,omitempty"`
	Scheme    string         `json:"scheme,omitempty"`
	Headers   []HeaderMatch  `json:"headers,omitempty"`
	Query     []QueryMatch   `json:"queryParameters,omitempty"`
	// Port is the listener port; 0 matches any.
	Port int `json:"port,omitempty"`
	// ServiceName and MethodName match gRPC calls (path /service/method).
	ServiceName string `json:"serviceName,omitempty"`
	MethodName  string `json:"methodName,omitempty"`
}

// HostnameMatch is a lower-case exact hostname or suffix; the port of the
// request's Host is ignored.
type HostnameMatch struct {
	Exact  string `json:"exact,omitempty"`
	Suffix string `json:"suffix,omitempty"`
}

// Header match types.
const (
	HeaderPresent = "present"
	HeaderExact   = "exact"
	HeaderPrefix  = "prefix"
	HeaderSuffix  = "suffix"
	HeaderRegex   = "regex"
	HeaderRange   = "range"
)

// HeaderMatch matches one header (or gRPC metadata entry). A header that is
// absent never matches, whatever Invert says, unless Type is present and Invert
// is set (then absence is the match).
type HeaderMatch struct {
	// Name is lower case.
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Value  string  `json:"value,omitempty"`
	Regex  *Regexp `json:"regex,omitempty"`
	Start  int64   `json:"start,omitempty"`
	End    int64   `json:"end,omitempty"`
	Invert bool    `json:"invert,omitempty"`
}

// QueryMatch matches a query parameter: present when Exact is nil.
type QueryMatch struct {
	Name  string  `json:"name"`
	Exact *string `json:"exact,omitempty"`
}

// VirtualService is a compiled VirtualService; exactly one of Node and Router is set.
type VirtualService struct {
	Name string `json:"name"`
	// Hostname is the service's awsName: the Host the gateway sends by default.
	Hostname string `json:"hostname"`
	Node     string `json:"virtualNode,omitempty"`
	Router   string `json:"virtualRouter,omitempty"`
}

// VirtualRouter is a compiled VirtualRouter.
type VirtualRouter struct {
	Name      string      `json:"name"`
	Listeners []PortProto `json:"listeners"`
	// Routes are in precedence order.
	Routes []*Route `json:"routes"`
}

// PortProto is a listener's port and protocol.
type PortProto struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// Route is one compiled route of a VirtualRouter.
type Route struct {
	Name string `json:"name"`
	// Kind is http, http2, grpc or tcp.
	Kind     string           `json:"kind"`
	Priority int              `json:"priority"`
	Match    Match            `json:"match"`
	Targets  []WeightedTarget `json:"weightedTargets"`
	// TotalWeight is the sum of the targets' weights; 0 means no target can
	// receive traffic.
	TotalWeight int `json:"totalWeight"`
	// Retry is the route's retry policy, or App Mesh's default when the
	// route has none.
	Retry *RetryPolicy `json:"retryPolicy,omitempty"`
	// Timeout is the route's timeout; nil means App Mesh's defaults.
	Timeout *Timeout `json:"timeout,omitempty"`
}

// WeightedTarget is a VirtualNode, its relative weight and, optionally, the
// node listener port.
type WeightedTarget struct {
	Node   string `json:"virtualNode"`
	Weight int    `json:"weight"`
	Port   int    `json:"port,omitempty"`
}

// VirtualNode is a compiled VirtualNode.
type VirtualNode struct {
	Name      string      `json:"name"`
	Listeners []PortProto `json:"listeners"`
	// Hostname is the DNS name of serviceDiscovery.dns (empty for Cloud Map).
	Hostname string `json:"hostname,omitempty"`
	// ResponseType is LOADBALANCER or ENDPOINTS.
	ResponseType string `json:"responseType,omitempty"`
	// Endpoints are fixed addresses: "IP:PORT" is called whatever listener
	// is targeted, a bare IP at the port of the node listener in use
	// (EndpointsAt). When empty, Hostname is resolved with DNS and the
	// listener port is used.
	Endpoints []string `json:"endpoints,omitempty"`
	// Policies holds each listener's health check, outlier detection,
	// connection pool, timeout and TLS, by listener port.
	Policies map[int]*NodeListenerPolicy `json:"policies,omitempty"`
	// ClientTLS is spec.backendDefaults.clientPolicy.tls of this node.
	ClientTLS *ClientTLS `json:"clientTLS,omitempty"`
	// Backends are the VirtualServices of spec.backends that exist, sorted
	// by name. App Mesh gives a node's proxy routes to these services only.
	Backends []Backend `json:"backends,omitempty"`
	// EgressAllowAll is the egressFilter ALLOW_ALL of the node's mesh: its
	// proxy passes traffic for anything that is not one of its backends on
	// to where it was sent, without mesh routing. False is App Mesh's
	// default, DROP_ALL.
	EgressAllowAll bool `json:"egressAllowAll,omitempty"`
}

// Backend is one VirtualService a node declares it calls.
type Backend struct {
	Service string `json:"virtualService"`
	// ClientTLS is the backend's own clientPolicy.tls, which replaces the
	// node's backendDefaults for this service; nil means the defaults.
	ClientTLS *ClientTLS `json:"clientTLS,omitempty"`
}

// Backend returns the backend of the node for VirtualService svc, or nil
// when the node does not declare it.
func (n *VirtualNode) Backend(svc string) *Backend {
	for i := range n.Backends {
		if n.Backends[i].Service == svc {
			return &n.Backends[i]
		}
	}
	return nil
}

// BackendTLS is the client TLS policy in effect toward backend b (reference
// §4.4: a backend's clientPolicy overrides backendDefaults).
func (n *VirtualNode) BackendTLS(b *Backend) *ClientTLS {
	if b != nil && b.ClientTLS != nil {
		return b.ClientTLS
	}
	return n.ClientTLS
}

// AccessLog is where and how a gateway logs requests.
type AccessLog struct {
	Path string `json:"path"`
	// Text is an Envoy-style format string; JSON is a list of key/operator
	// pairs. Neither set means the default text format.
	Text string     `json:"text,omitempty"`
	JSON []KeyValue `json:"json,omitempty"`
}

// KeyValue is one key of a JSON access log line and its format operator.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ObjectStatus is what compile concluded about one input object.
type ObjectStatus struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	// Condition is App Mesh's condition type: MeshActive, GatewayRouteActive, ...
	Condition string `json:"condition"`
	// Active is true when the object is served (or servable).
	Active bool `json:"active"`
	// Reason is a single CamelCase word; Message says what is wrong, or notes
	// something the user should know about an active object.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Mesh is the Mesh the object belongs to, and Gateway, for a
	// GatewayRoute, the VirtualGateway ("namespace/name") it names or was
	// selected by. The Kubernetes controller releases App Mesh's member
	// finalizers by them; they are not part of the published config.
	Mesh    string `json:"-"`
	Gateway string `json:"-"`
}

// Regexp is a compiled RE2 expression that is anchored to match the whole
// input and serialises as its source.
type Regexp struct {
	Source string
	re     *regexp.Regexp
}

// CompileRegexp anchors expr to the whole string and compiles it.
func CompileRegexp(expr string) (*Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, err
	}
	return &Regexp{Source: expr, re: re}, nil
}

// MatchString reports whether s matches the whole expression.
func (r *Regexp) MatchString(s string) bool { return r.re.MatchString(s) }

// MarshalJSON writes the source expression.
func (r *Regexp) MarshalJSON() ([]byte, error) { return json.Marshal(r.Source) }

// UnmarshalJSON compiles the source expression.
func (r *Regexp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	c, err := CompileRegexp(s)
	if err != nil {
		return err
	}
	*r = *c
	return nil
}

// ReasonInvalid is the status reason of an object left out of the config
// because it failed validation.
const ReasonInvalid = "Invalid"

// IndexHosts builds Hosts, Suffixes and AnyHost from Routes, which must
// already be in precedence order: each route goes to the group of its
// hostname match, and suffix groups are ordered longest first.
func (l *Listener) IndexHosts() {
	l.Hosts, l.Suffixes, l.AnyHost = nil, nil, nil
	suffixes := map[string][]int{}
	for i, r := range l.Routes {
		switch h := r.Match.Hostname; {
		case h == nil || (h.Exact == "" && h.Suffix == ""):
			l.AnyHost = append(l.AnyHost, i)
		case h.Exact != "":
			if l.Hosts == nil {
				l.Hosts = map[string][]int{}
			}
			l.Hosts[h.Exact] = append(l.Hosts[h.Exact], i)
		default:
			suffixes[h.Suffix] = append(suffixes[h.Suffix], i)
		}
	}
	for s, idx := range suffixes {
		l.Suffixes = append(l.Suffixes, HostSuffix{Suffix: s, Routes: idx})
	}
	slices.SortFunc(l.Suffixes, func(a, b HostSuffix) int {
		return cmp.Or(cmp.Compare(len(b.Suffix), len(a.Suffix)), cmp.Compare(a.Suffix, b.Suffix))
	})
}
