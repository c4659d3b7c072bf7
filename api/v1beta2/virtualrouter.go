package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualRouter spreads a VirtualService's traffic over VirtualNodes by its routes.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ARN",type="string",JSONPath=".status.virtualRouterARN",description="The AppMesh VirtualRouter object's Amazon Resource Name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
// The API server cannot afford to find which name repeats (the cost
// estimate of that message is over its budget), so its message stops at the
// router; compile's status names the route.
// +kubebuilder:validation:XValidation:rule="!has(self.spec.routes) || self.spec.routes.all(r, self.spec.routes.exists_one(o, o.name == r.name))",messageExpression="'VirtualRouter-' + self.metadata.name + ' has duplicate route entries'"
type VirtualRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualRouterSpec `json:"spec,omitempty"`
	Status            Status            `json:"status,omitempty"`
}

// VirtualRouterSpec is the desired state of a VirtualRouter.
// +kubebuilder:validation:XValidation:rule="(!has(oldSelf.awsName) || (has(self.awsName) && self.awsName == oldSelf.awsName)) && (!has(oldSelf.meshRef) || (has(self.meshRef) && self.meshRef == oldSelf.meshRef))",messageExpression="'VirtualRouter update may not change these fields: ' + (((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName,spec.meshRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && !(has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName' : 'spec.meshRef')"
type VirtualRouterSpec struct {
	// +kubebuilder:validation:MaxLength=255
	AWSName *string `json:"awsName,omitempty"`
	// +kubebuilder:validation:MinItems=1
	Listeners []VirtualRouterListener `json:"listeners,omitempty"`
	// Routes is bounded so that the API server can bound the cost of the
	// duplicate-name rule; it is AWS's default quota of routes per router.
	// +kubebuilder:validation:MaxItems=50
	Routes  []Route        `json:"routes,omitempty"`
	MeshRef *MeshReference `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
}

// VirtualRouterListener is a port clients of the VirtualService dial.
type VirtualRouterListener struct {
	PortMapping PortMapping `json:"portMapping"`
}

// Route is one entry of spec.routes: exactly one of its route kinds.
type Route struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Name       string     `json:"name"`
	GRPCRoute  *GRPCRoute `json:"grpcRoute,omitempty"`
	HTTPRoute  *HTTPRoute `json:"httpRoute,omitempty"`
	HTTP2Route *HTTPRoute `json:"http2Route,omitempty"`
	TCPRoute   *TCPRoute  `json:"tcpRoute,omitempty"`
	// Priority 0..1000, 0 first; unset sorts after 1000.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
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
// +kubebuilder:validation:XValidation:rule="!(has(self.prefix) && has(self.path))",message="Both Prefix and Path cannot be specified, only 1 allowed"
// +kubebuilder:validation:XValidation:rule="has(self.prefix) || has(self.path)",message="Either Prefix or Path must be specified"
type HTTPRouteMatch struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Headers []HTTPHeader `json:"headers,omitempty"`
	// +kubebuilder:validation:Enum=CONNECT;DELETE;GET;HEAD;OPTIONS;PATCH;POST;PUT;TRACE
	Method *string        `json:"method,omitempty"`
	Prefix *string        `json:"prefix,omitempty"`
	Path   *HTTPPathMatch `json:"path,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	QueryParameters []HTTPQueryParameters `json:"queryParameters,omitempty"`
	// +kubebuilder:validation:Enum=http;https
	Scheme *string     `json:"scheme,omitempty"`
	Port   *PortNumber `json:"port,omitempty"`
}

// HTTPRouteAction picks one of the weighted targets.
type HTTPRouteAction struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// WeightedTarget is a VirtualNode and its relative weight 0..100.
type WeightedTarget struct {
	VirtualNodeRef *VirtualNodeReference `json:"virtualNodeRef,omitempty"`
	VirtualNodeARN *string               `json:"virtualNodeARN,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight int64       `json:"weight"`
	Port   *PortNumber `json:"port,omitempty"`
}

// HTTPRetryPolicy retries failed requests.
type HTTPRetryPolicy struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=25
	// +kubebuilder:validation:items:Enum=server-error;gateway-error;client-error;stream-error
	HTTPRetryEvents []string `json:"httpRetryEvents,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	// +kubebuilder:validation:items:Enum=connection-error
	TCPRetryEvents  []string `json:"tcpRetryEvents,omitempty"`
	PerRetryTimeout Duration `json:"perRetryTimeout"`
	// +kubebuilder:validation:Minimum=0
	MaxRetries int64 `json:"maxRetries"`
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
	ServiceName *string `json:"serviceName,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	MethodName *string `json:"methodName,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Metadata []GRPCMetadata `json:"metadata,omitempty"`
	Port     *PortNumber    `json:"port,omitempty"`
}

// GRPCRouteAction picks one of the weighted targets.
type GRPCRouteAction struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// GRPCRetryPolicy retries failed calls.
type GRPCRetryPolicy struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Enum=cancelled;deadline-exceeded;internal;resource-exhausted;unavailable
	GRPCRetryEvents []string `json:"grpcRetryEvents,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=25
	// +kubebuilder:validation:items:Enum=server-error;gateway-error;client-error;stream-error
	HTTPRetryEvents []string `json:"httpRetryEvents,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	// +kubebuilder:validation:items:Enum=connection-error
	TCPRetryEvents  []string `json:"tcpRetryEvents,omitempty"`
	PerRetryTimeout Duration `json:"perRetryTimeout"`
	// +kubebuilder:validation:Minimum=0
	MaxRetries int64 `json:"maxRetries"`
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
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// StandaloneRoute is the guide form of a route: kind Route, attached to the
// VirtualRouter named in spec.virtualRouter, named by metadata.name. Its CRD
// (routes.appmesh.k8s.aws) is meshgate's own: App Mesh had no such kind. It
// has no status: the VirtualRouter it joins reports on it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=routes,singular=route,categories=all
// +kubebuilder:printcolumn:name="ROUTER",type="string",JSONPath=".spec.virtualRouter.name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
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
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Priority *int64 `json:"priority,omitempty"`
}
