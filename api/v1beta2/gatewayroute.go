package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GatewayRoute sends matching requests arriving at a VirtualGateway to a VirtualService.
type GatewayRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GatewayRouteSpec `json:"spec,omitempty"`
	Status            Status           `json:"status,omitempty"`
}

// GatewayRouteSpec is the desired state of a GatewayRoute: exactly one of
// GRPCRoute, HTTPRoute, HTTP2Route.
type GatewayRouteSpec struct {
	AWSName    *string           `json:"awsName,omitempty"`
	GRPCRoute  *GRPCGatewayRoute `json:"grpcRoute,omitempty"`
	HTTPRoute  *HTTPGatewayRoute `json:"httpRoute,omitempty"`
	HTTP2Route *HTTPGatewayRoute `json:"http2Route,omitempty"`
	// Priority 0..1000, 0 first; unset sorts after 1000.
	Priority          *int64                   `json:"priority,omitempty"`
	VirtualGatewayRef *VirtualGatewayReference `json:"virtualGatewayRef,omitempty"`
	MeshRef           *MeshReference           `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
	// VirtualGateway is the guide form of VirtualGatewayRef.
	VirtualGateway *VirtualGatewayReference `json:"virtualGateway,omitempty"`
}

// HTTPGatewayRoute is an httpRoute or http2Route.
type HTTPGatewayRoute struct {
	Match  HTTPGatewayRouteMatch  `json:"match"`
	Action HTTPGatewayRouteAction `json:"action"`
}

// HTTPGatewayRouteMatch: every criterion present must match.
type HTTPGatewayRouteMatch struct {
	Prefix          *string                    `json:"prefix,omitempty"`
	Path            *HTTPPathMatch             `json:"path,omitempty"`
	QueryParameters []HTTPQueryParameters      `json:"queryParameters,omitempty"`
	Method          *string                    `json:"method,omitempty"`
	Hostname        *GatewayRouteHostnameMatch `json:"hostname,omitempty"`
	Headers         []HTTPHeader               `json:"headers,omitempty"`
	Port            *PortNumber                `json:"port,omitempty"`
}

// GatewayRouteHostnameMatch matches the Host exactly or by suffix.
type GatewayRouteHostnameMatch struct {
	Exact  *string `json:"exact,omitempty"`
	Suffix *string `json:"suffix,omitempty"`
}

// HTTPGatewayRouteAction says where a matched request goes and how it is rewritten.
type HTTPGatewayRouteAction struct {
	Target  GatewayRouteTarget       `json:"target"`
	Rewrite *HTTPGatewayRouteRewrite `json:"rewrite,omitempty"`
}

// GatewayRouteTarget is the VirtualService a GatewayRoute sends to.
type GatewayRouteTarget struct {
	VirtualService GatewayRouteVirtualService `json:"virtualService"`
	Port           *PortNumber                `json:"port,omitempty"`
}

// GatewayRouteVirtualService refers to the target by reference or ARN.
type GatewayRouteVirtualService struct {
	VirtualServiceRef *VirtualServiceReference `json:"virtualServiceRef,omitempty"`
	VirtualServiceARN *string                  `json:"virtualServiceARN,omitempty"`
}

// HTTPGatewayRouteRewrite changes the forwarded request.
type HTTPGatewayRouteRewrite struct {
	Prefix   *GatewayRoutePrefixRewrite   `json:"prefix,omitempty"`
	Path     *GatewayRoutePathRewrite     `json:"path,omitempty"`
	Hostname *GatewayRouteHostnameRewrite `json:"hostname,omitempty"`
}

// GatewayRoutePrefixRewrite replaces the matched prefix.
type GatewayRoutePrefixRewrite struct {
	// DefaultPrefix is ENABLED (matched prefix becomes /) or DISABLED (path kept).
	DefaultPrefix *string `json:"defaultPrefix,omitempty"`
	// Value replaces the matched prefix; it starts and ends with /.
	Value *string `json:"value,omitempty"`
}

// GatewayRoutePathRewrite replaces the whole path.
type GatewayRoutePathRewrite struct {
	Exact *string `json:"exact,omitempty"`
}

// GatewayRouteHostnameRewrite controls the Host rewrite.
type GatewayRouteHostnameRewrite struct {
	// DefaultTargetHostname is ENABLED (Host becomes the VirtualService name)
	// or DISABLED (Host kept).
	DefaultTargetHostname *string `json:"defaultTargetHostname,omitempty"`
}

// GRPCGatewayRoute is a grpcRoute.
type GRPCGatewayRoute struct {
	Match  GRPCGatewayRouteMatch  `json:"match"`
	Action GRPCGatewayRouteAction `json:"action"`
}

// GRPCGatewayRouteMatch: every criterion present must match.
type GRPCGatewayRouteMatch struct {
	ServiceName *string                    `json:"serviceName,omitempty"`
	Hostname    *GatewayRouteHostnameMatch `json:"hostname,omitempty"`
	Metadata    []GRPCMetadata             `json:"metadata,omitempty"`
	Port        *PortNumber                `json:"port,omitempty"`
}

// GRPCGatewayRouteAction says where a matched call goes.
type GRPCGatewayRouteAction struct {
	Target  GatewayRouteTarget       `json:"target"`
	Rewrite *GRPCGatewayRouteRewrite `json:"rewrite,omitempty"`
}

// GRPCGatewayRouteRewrite only controls the Host rewrite.
type GRPCGatewayRouteRewrite struct {
	Hostname *GatewayRouteHostnameRewrite `json:"hostname,omitempty"`
}
