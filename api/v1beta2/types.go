package v1beta2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PortNumber is a TCP port, 1..65535. App Mesh's CRD allowed 0 where AWS
// then refused it (§6.5 quirk 10); the API server refuses it here.
// +kubebuilder:validation:Minimum=1
// +kubebuilder:validation:Maximum=65535
type PortNumber int64

// PortProtocol is a listener protocol: grpc, http, http2 or tcp.
// +kubebuilder:validation:Enum=grpc;http;http2;tcp
type PortProtocol string

const (
	ProtocolGRPC  PortProtocol = "grpc"
	ProtocolHTTP  PortProtocol = "http"
	ProtocolHTTP2 PortProtocol = "http2"
	ProtocolTCP   PortProtocol = "tcp"
)

// PortMapping is a listener's port and protocol.
type PortMapping struct {
	Port     PortNumber   `json:"port"`
	Protocol PortProtocol `json:"protocol"`
}

// DurationUnit is s or ms.
// +kubebuilder:validation:Enum=s;ms
type DurationUnit string

const (
	DurationUnitS  DurationUnit = "s"
	DurationUnitMS DurationUnit = "ms"
)

// Duration is App Mesh's {unit, value} duration.
type Duration struct {
	Unit DurationUnit `json:"unit"`
	// +kubebuilder:validation:Minimum=0
	Value int64 `json:"value"`
}

// MatchRange matches an integer value in [Start, End).
// +kubebuilder:validation:XValidation:rule="self.end > self.start",message="Invalid Match Range specified, end has to be greater than start"
type MatchRange struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// HeaderMatchMethod is a union: exactly one matcher is meant to be set.
//
// Exact, Prefix and Suffix take any scalar, as the file decoder does: the
// guide writes `exact: true` where a string is meant, and such a manifest
// must apply. A field without a type is invisible to CEL, so the webhook
// rules that count matchers ("Too many Match Filters specified, ...",
// "Missing Match criteria for one or more header match block, ...") and the
// 1..255 length are checked by compile, which puts App Mesh's message in the
// object's status, instead of by the API server.
type HeaderMatchMethod struct {
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Exact *string     `json:"exact,omitempty"`
	Range *MatchRange `json:"range,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Regex *string `json:"regex,omitempty"`
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Prefix *string `json:"prefix,omitempty"`
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Suffix *string `json:"suffix,omitempty"`
}

// HTTPPathMatch matches the whole path exactly or by a regular expression.
// +kubebuilder:validation:XValidation:rule="!(has(self.exact) && has(self.regex))",message="Both exact and regex for path are not allowed. Only one must be specified"
// +kubebuilder:validation:XValidation:rule="has(self.exact) || has(self.regex)",message="Either exact or regex for path must be specified"
type HTTPPathMatch struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Exact *string `json:"exact,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Regex *string `json:"regex,omitempty"`
}

// QueryMatchMethod matches a query parameter's value.
type QueryMatchMethod struct {
	Exact *string `json:"exact,omitempty"`
}

// HTTPQueryParameters matches a query parameter by name and, optionally, value.
// +kubebuilder:validation:XValidation:rule="!has(self.match) || has(self.match.exact)",message="Missing Match criteria for one or more exact query match block, don't specify match block if you dont need it"
type HTTPQueryParameters struct {
	Name  *string           `json:"name"`
	Match *QueryMatchMethod `json:"match,omitempty"`
}

// HTTPHeader matches one request header (GatewayRoute and Route alike).
type HTTPHeader struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	Name   string             `json:"name"`
	Match  *HeaderMatchMethod `json:"match,omitempty"`
	Invert *bool              `json:"invert,omitempty"`
}

// GRPCMetadata matches one gRPC metadata entry (a request header).
type GRPCMetadata struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	Name   string             `json:"name"`
	Match  *HeaderMatchMethod `json:"match,omitempty"`
	Invert *bool              `json:"invert,omitempty"`
}

// HTTPTimeout bounds a request and its idle time.
type HTTPTimeout struct {
	PerRequest *Duration `json:"perRequest,omitempty"`
	Idle       *Duration `json:"idle,omitempty"`
}

// GRPCTimeout bounds a gRPC call and its idle time.
type GRPCTimeout struct {
	PerRequest *Duration `json:"perRequest,omitempty"`
	Idle       *Duration `json:"idle,omitempty"`
}

// TCPTimeout bounds a connection's idle time.
type TCPTimeout struct {
	Idle *Duration `json:"idle,omitempty"`
}

// TCPConnectionPool limits TCP connections.
type TCPConnectionPool struct {
	// +kubebuilder:validation:Minimum=1
	MaxConnections int64 `json:"maxConnections"`
}

// HTTPConnectionPool limits HTTP/1.1 connections and queued requests.
type HTTPConnectionPool struct {
	// +kubebuilder:validation:Minimum=1
	MaxConnections int64 `json:"maxConnections"`
	// +kubebuilder:validation:Minimum=1
	MaxPendingRequests *int64 `json:"maxPendingRequests,omitempty"`
}

// HTTP2ConnectionPool limits concurrent HTTP/2 requests.
type HTTP2ConnectionPool struct {
	// +kubebuilder:validation:Minimum=1
	MaxRequests int64 `json:"maxRequests"`
}

// GRPCConnectionPool limits concurrent gRPC requests.
type GRPCConnectionPool struct {
	// +kubebuilder:validation:Minimum=1
	MaxRequests int64 `json:"maxRequests"`
}

// SubjectAlternativeNameMatchers lists the accepted SANs.
type SubjectAlternativeNameMatchers struct {
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=254
	Exact []string `json:"exact"`
}

// SubjectAlternativeNames restricts peer certificates to these SANs.
type SubjectAlternativeNames struct {
	Match *SubjectAlternativeNameMatchers `json:"match"`
}

// MeshReference names a Mesh; UID is set by the system only.
type MeshReference struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	UID types.UID `json:"uid,omitempty"`
}

// VirtualGatewayReference names a VirtualGateway. An empty namespace means
// the referencing object's namespace.
type VirtualGatewayReference struct {
	// +kubebuilder:validation:MaxLength=63
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	UID types.UID `json:"uid,omitempty"`
}

// VirtualNodeReference names a VirtualNode. An empty namespace means the
// referencing object's namespace.
type VirtualNodeReference struct {
	// +kubebuilder:validation:MaxLength=63
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// VirtualServiceReference names a VirtualService. An empty namespace means
// the referencing object's namespace.
type VirtualServiceReference struct {
	// +kubebuilder:validation:MaxLength=63
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// VirtualRouterReference names a VirtualRouter. An empty namespace means the
// referencing object's namespace.
type VirtualRouterReference struct {
	// +kubebuilder:validation:MaxLength=63
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// BackendGroupReference names a BackendGroup.
type BackendGroupReference struct {
	// +kubebuilder:validation:MaxLength=63
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Condition is the one condition App Mesh writes per object
// (MeshActive, VirtualGatewayActive, ...).
type Condition struct {
	Type string `json:"type"`
	// +kubebuilder:validation:Enum=True;False;Unknown
	Status             string       `json:"status"`
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
	Reason             *string      `json:"reason,omitempty"`
	Message            *string      `json:"message,omitempty"`
}

// Status is the status every kind carries. ARN holds whichever of
// meshARN, virtualGatewayARN, ... the object was exported with.
type Status struct {
	MeshARN            *string           `json:"meshARN,omitempty"`
	VirtualGatewayARN  *string           `json:"virtualGatewayARN,omitempty"`
	GatewayRouteARN    *string           `json:"gatewayRouteARN,omitempty"`
	VirtualServiceARN  *string           `json:"virtualServiceARN,omitempty"`
	VirtualRouterARN   *string           `json:"virtualRouterARN,omitempty"`
	VirtualNodeARN     *string           `json:"virtualNodeARN,omitempty"`
	RouteARNs          map[string]string `json:"routeARNs,omitempty"`
	Conditions         []Condition       `json:"conditions,omitempty"`
	ObservedGeneration *int64            `json:"observedGeneration,omitempty"`
}
