package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualRouter spreads a VirtualService's traffic over VirtualNodes by its routes.
type VirtualRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualRouterSpec `json:"spec,omitempty"`
	Status            Status            `json:"status,omitempty"`
}

// VirtualRouterSpec is the desired state of a VirtualRouter.
type VirtualRouterSpec struct {
	AWSName   *string                 `json:"awsName,omitempty"`
	Listeners []VirtualRouterListener `json:"listeners,omitempty"`
	Routes    []Route                 `json:"routes,omitempty"`
	MeshRef   *MeshReference          `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
}

// VirtualRouterListener is a port clients of the VirtualService dial.
type VirtualRouterListener struct {
	PortMapping PortMapping `json:"portMapping"`
}

// Route is one entry of spec.routes: exactly one of its route kinds.
type Route struct {
	Name       string     `json:"name"`
	GRPCRoute  *GRPCRoute `json:"grpcRoute,omitempty"`
	HTTPRoute  *HTTPRoute `json:"httpRoute,omitempty"`
	HTTP2Route *HTTPRoute `json:"http2Route,omitempty"`
	TCPRoute   *TCPRoute  `json:"tcpRoute,omitempty"`
	// Priority 0..1000, 0 first; unset sorts after 1000.
	Priority *int64 `json:"priority,omitempty"`
}

// HTTPRoute is an httpRoute or http2Route of a VirtualRouter.
type HTTPRoute struct {
	Match       HTTPRouteMatch   `json:"match"`
	Action      HTTPRouteAction  `json:"action"`
	RetryPolicy *HTTPRetryPolicy `json:"retryPolicy,omitempty"`
	Timeout     *HTTPTimeout     `json:"timeout,omitempty"`
}

// HTTPRouteMatch: every criterion present must match.
type HTTPRouteMatch struct {
	Headers         []HTTPHeader          `json:"headers,omitempty"`
	Method          *string               `json:"method,omitempty"`
	Prefix          *string               `json:"prefix,omitempty"`
	Path            *HTTPPathMatch        `json:"path,omitempty"`
	QueryParameters []HTTPQueryParameters `json:"queryParameters,omitempty"`
	Scheme          *string               `json:"scheme,omitempty"`
	Port            *PortNumber           `json:"port,omitempty"`
}

// HTTPRouteAction picks one of the weighted targets.
type HTTPRouteAction struct {
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// WeightedTarget is a VirtualNode and its relative weight 0..100.
type WeightedTarget struct {
	VirtualNodeRef *VirtualNodeReference `json:"virtualNodeRef,omitempty"`
	VirtualNodeARN *string               `json:"virtualNodeARN,omitempty"`
	Weight         int64                 `json:"weight"`
	Port           *PortNumber           `json:"port,omitempty"`
}

// HTTPRetryPolicy retries failed requests.
type HTTPRetryPolicy struct {
	HTTPRetryEvents []string `json:"httpRetryEvents,omitempty"`
	TCPRetryEvents  []string `json:"tcpRetryEvents,omitempty"`
	PerRetryTimeout Duration `json:"perRetryTimeout"`
	MaxRetries      int64    `json:"maxRetries"`
}

// GRPCRoute is a grpcRoute of a VirtualRouter.
type GRPCRoute struct {
	Match       GRPCRouteMatch   `json:"match"`
	Action      GRPCRouteAction  `json:"action"`
	RetryPolicy *GRPCRetryPolicy `json:"retryPolicy,omitempty"`
	Timeout     *GRPCTimeout     `json:"timeout,omitempty"`
}

// GRPCRouteMatch: every criterion present must match.
type GRPCRouteMatch struct {
	ServiceName *string        `json:"serviceName,omitempty"`
	MethodName  *string        `json:"methodName,omitempty"`
	Metadata    []GRPCMetadata `json:"metadata,omitempty"`
	Port        *PortNumber    `json:"port,omitempty"`
}

// GRPCRouteAction picks one of the weighted targets.
type GRPCRouteAction struct {
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// GRPCRetryPolicy retries failed calls.
type GRPCRetryPolicy struct {
	GRPCRetryEvents []string `json:"grpcRetryEvents,omitempty"`
	HTTPRetryEvents []string `json:"httpRetryEvents,omitempty"`
	TCPRetryEvents  []string `json:"tcpRetryEvents,omitempty"`
	PerRetryTimeout Duration `json:"perRetryTimeout"`
	MaxRetries      int64    `json:"maxRetries"`
}

// TCPRoute is a tcpRoute of a VirtualRouter.
type TCPRoute struct {
	Match   *TCPRouteMatch `json:"match,omitempty"`
	Action  TCPRouteAction `json:"action"`
	Timeout *TCPTimeout    `json:"timeout,omitempty"`
}

// TCPRouteMatch selects the router listener by port.
type TCPRouteMatch struct {
	Port *PortNumber `json:"port,omitempty"`
}

// TCPRouteAction picks one of the weighted targets.
type TCPRouteAction struct {
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// StandaloneRoute is the guide form of a route: kind Route, attached to the
// VirtualRouter named in spec.virtualRouter, named by metadata.name.
type StandaloneRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              StandaloneRouteSpec `json:"spec,omitempty"`
}

// StandaloneRouteSpec is a Route plus the router it belongs to.
type StandaloneRouteSpec struct {
	Mesh          string                  `json:"mesh,omitempty"`
	MeshRef       *MeshReference          `json:"meshRef,omitempty"`
	VirtualRouter *VirtualRouterReference `json:"virtualRouter"`
	GRPCRoute     *GRPCRoute              `json:"grpcRoute,omitempty"`
	HTTPRoute     *HTTPRoute              `json:"httpRoute,omitempty"`
	HTTP2Route    *HTTPRoute              `json:"http2Route,omitempty"`
	TCPRoute      *TCPRoute               `json:"tcpRoute,omitempty"`
	Priority      *int64                  `json:"priority,omitempty"`
}
