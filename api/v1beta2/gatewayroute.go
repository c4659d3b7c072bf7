package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GatewayRoute sends matching requests arriving at a VirtualGateway to a VirtualService.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ARN",type="string",JSONPath=".status.gatewayRouteARN",description="The AppMesh GatewayRoute object's Amazon Resource Name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type GatewayRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GatewayRouteSpec `json:"spec,omitempty"`
	Status            Status           `json:"status,omitempty"`
}

// GatewayRouteSpec is the desired state of a GatewayRoute: exactly one of
// GRPCRoute, HTTPRoute, HTTP2Route.
// +kubebuilder:validation:XValidation:rule="[has(self.grpcRoute), has(self.httpRoute), has(self.http2Route)].filter(x, x).size() <= 1",message="Found multiple types in GatewayRoute Spec. Only 1 (GRPC/HTTP/HTTP2) allowed"
// +kubebuilder:validation:XValidation:rule="has(self.grpcRoute) || has(self.httpRoute) || has(self.http2Route)",message="Missing GatewayRoute Type in GatewayRoute Spec"
// +kubebuilder:validation:XValidation:rule="(!has(oldSelf.awsName) || (has(self.awsName) && self.awsName == oldSelf.awsName)) && (!has(oldSelf.meshRef) || (has(self.meshRef) && self.meshRef == oldSelf.meshRef)) && (!has(oldSelf.virtualGatewayRef) || (has(self.virtualGatewayRef) && self.virtualGatewayRef == oldSelf.virtualGatewayRef))",messageExpression="'GatewayRoute update may not change these fields: ' + (((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef)) && (has(oldSelf.virtualGatewayRef) && (!has(self.virtualGatewayRef) || self.virtualGatewayRef != oldSelf.virtualGatewayRef))) ? 'spec.awsName,spec.meshRef,spec.virtualGatewayRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef)) && !(has(oldSelf.virtualGatewayRef) && (!has(self.virtualGatewayRef) || self.virtualGatewayRef != oldSelf.virtualGatewayRef))) ? 'spec.awsName,spec.meshRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && !(has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef)) && (has(oldSelf.virtualGatewayRef) && (!has(self.virtualGatewayRef) || self.virtualGatewayRef != oldSelf.virtualGatewayRef))) ? 'spec.awsName,spec.virtualGatewayRef' : (!(has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef)) && (has(oldSelf.virtualGatewayRef) && (!has(self.virtualGatewayRef) || self.virtualGatewayRef != oldSelf.virtualGatewayRef))) ? 'spec.meshRef,spec.virtualGatewayRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && !(has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef)) && !(has(oldSelf.virtualGatewayRef) && (!has(self.virtualGatewayRef) || self.virtualGatewayRef != oldSelf.virtualGatewayRef))) ? 'spec.awsName' : (!(has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef)) && !(has(oldSelf.virtualGatewayRef) && (!has(self.virtualGatewayRef) || self.virtualGatewayRef != oldSelf.virtualGatewayRef))) ? 'spec.meshRef' : 'spec.virtualGatewayRef')"
type GatewayRouteSpec struct {
	// +kubebuilder:validation:MaxLength=255
	AWSName    *string           `json:"awsName,omitempty"`
	GRPCRoute  *GRPCGatewayRoute `json:"grpcRoute,omitempty"`
	HTTPRoute  *HTTPGatewayRoute `json:"httpRoute,omitempty"`
	HTTP2Route *HTTPGatewayRoute `json:"http2Route,omitempty"`
	// Priority 0..1000, 0 first; unset sorts after 1000.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Priority          *int64                   `json:"priority,omitempty"`
	VirtualGatewayRef *VirtualGatewayReference `json:"virtualGatewayRef,omitempty"`
	MeshRef           *MeshReference           `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
	// VirtualGateway is the guide form of VirtualGatewayRef.
	VirtualGateway *VirtualGatewayReference `json:"virtualGateway,omitempty"`
}

// HTTPGatewayRoute is an httpRoute or http2Route.
// +kubebuilder:validation:XValidation:rule="!has(self.action.rewrite) || !has(self.action.rewrite.prefix) || !has(self.match.prefix) || self.match.prefix.startsWith('/')",message="Prefix to be matched on must start with '/'"
type HTTPGatewayRoute struct {
	Match  HTTPGatewayRouteMatch  `json:"match"`
	Action HTTPGatewayRouteAction `json:"action"`
}

// HTTPGatewayRouteMatch: every criterion present must match.
// +kubebuilder:validation:XValidation:rule="has(self.prefix) || has(self.path) || has(self.hostname)",message="Either prefix or path or hostname must be specified"
// +kubebuilder:validation:XValidation:rule="!(has(self.prefix) && has(self.path))",message="Both prefix and path cannot be specified. Only 1 allowed"
type HTTPGatewayRouteMatch struct {
	Prefix *string        `json:"prefix,omitempty"`
	Path   *HTTPPathMatch `json:"path,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	QueryParameters []HTTPQueryParameters `json:"queryParameters,omitempty"`
	// +kubebuilder:validation:Enum=CONNECT;DELETE;GET;HEAD;OPTIONS;PATCH;POST;PUT;TRACE
	Method   *string                    `json:"method,omitempty"`
	Hostname *GatewayRouteHostnameMatch `json:"hostname,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Headers []HTTPHeader `json:"headers,omitempty"`
	Port    *PortNumber  `json:"port,omitempty"`
}

// GatewayRouteHostnameMatch matches the Host exactly or by suffix.
// +kubebuilder:validation:XValidation:rule="!(has(self.exact) && has(self.suffix))",message="Both exact and suffix match for hostname are not allowed. Only one must be specified"
// +kubebuilder:validation:XValidation:rule="has(self.exact) || has(self.suffix)",message="Either exact or suffix match for hostname must be specified"
type GatewayRouteHostnameMatch struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Exact *string `json:"exact,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
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
// +kubebuilder:validation:XValidation:rule="has(self.prefix) || has(self.path) || has(self.hostname)",message="Either prefix, path or hostname for rewrite must be specified"
// +kubebuilder:validation:XValidation:rule="!(has(self.prefix) && has(self.path))",message="Both prefix and path for rewrites cannot be specified. Only 1 allowed"
type HTTPGatewayRouteRewrite struct {
	Prefix   *GatewayRoutePrefixRewrite   `json:"prefix,omitempty"`
	Path     *GatewayRoutePathRewrite     `json:"path,omitempty"`
	Hostname *GatewayRouteHostnameRewrite `json:"hostname,omitempty"`
}

// GatewayRoutePrefixRewrite replaces the matched prefix.
// +kubebuilder:validation:XValidation:rule="!(has(self.defaultPrefix) && has(self.value))",message="Cannot specify both defaultPrefix and prefix for rewrite, only 1 allowed"
// +kubebuilder:validation:XValidation:rule="!has(self.value) || (self.value.startsWith('/') && self.value.endsWith('/'))",message="New Rewrite Prefix must start and end with '/'"
type GatewayRoutePrefixRewrite struct {
	// DefaultPrefix is ENABLED (matched prefix becomes /) or DISABLED (path kept).
	// +kubebuilder:validation:Enum=ENABLED;DISABLED
	DefaultPrefix *string `json:"defaultPrefix,omitempty"`
	// Value replaces the matched prefix; it starts and ends with /.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Value *string `json:"value,omitempty"`
}

// GatewayRoutePathRewrite replaces the whole path.
type GatewayRoutePathRewrite struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Exact *string `json:"exact,omitempty"`
}

// GatewayRouteHostnameRewrite controls the Host rewrite.
type GatewayRouteHostnameRewrite struct {
	// DefaultTargetHostname is ENABLED (Host becomes the VirtualService name)
	// or DISABLED (Host kept).
	// +kubebuilder:validation:Enum=ENABLED;DISABLED
	DefaultTargetHostname *string `json:"defaultTargetHostname,omitempty"`
}

// GRPCGatewayRoute is a grpcRoute.
type GRPCGatewayRoute struct {
	Match  GRPCGatewayRouteMatch  `json:"match"`
	Action GRPCGatewayRouteAction `json:"action"`
}

// GRPCGatewayRouteMatch: every criterion present must match.
// +kubebuilder:validation:XValidation:rule="has(self.serviceName) || has(self.hostname)",message="Either servicename or hostname must be specified"
type GRPCGatewayRouteMatch struct {
	ServiceName *string                    `json:"serviceName,omitempty"`
	Hostname    *GatewayRouteHostnameMatch `json:"hostname,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Metadata []GRPCMetadata `json:"metadata,omitempty"`
	Port     *PortNumber    `json:"port,omitempty"`
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
