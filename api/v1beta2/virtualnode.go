package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualNode is a set of endpoints found by service discovery.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ARN",type="string",JSONPath=".status.virtualNodeARN",description="The AppMesh VirtualNode object's Amazon Resource Name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.listeners) || has(self.spec.serviceDiscovery)",messageExpression="'ServiceDiscovery missing for VirtualNode-' + self.metadata.name + '. ServiceDiscovery must be specified when a listener is specified.'"
type VirtualNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualNodeSpec `json:"spec,omitempty"`
	Status            Status          `json:"status,omitempty"`
}

// VirtualNodeSpec is the desired state of a VirtualNode.
// +kubebuilder:validation:XValidation:rule="(!has(oldSelf.awsName) || (has(self.awsName) && self.awsName == oldSelf.awsName)) && (!has(oldSelf.meshRef) || (has(self.meshRef) && self.meshRef == oldSelf.meshRef))",messageExpression="'VirtualNode update may not change these fields: ' + (((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName,spec.meshRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && !(has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName' : 'spec.meshRef')"
type VirtualNodeSpec struct {
	// +kubebuilder:validation:MaxLength=255
	AWSName     *string               `json:"awsName,omitempty"`
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Listeners is bounded so that the API server can bound the cost of
	// the per-listener rules; AWS allows far fewer.
	// +kubebuilder:validation:MaxItems=64
	Listeners        []Listener              `json:"listeners,omitempty"`
	ServiceDiscovery *ServiceDiscovery       `json:"serviceDiscovery,omitempty"`
	Backends         []Backend               `json:"backends,omitempty"`
	BackendGroups    []BackendGroupReference `json:"backendGroups,omitempty"`
	BackendDefaults  *BackendDefaults        `json:"backendDefaults,omitempty"`
	Logging          *Logging                `json:"logging,omitempty"`
	MeshRef          *MeshReference          `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
}

// Listener is a port the node's application serves.
type Listener struct {
	PortMapping      PortMapping                `json:"portMapping"`
	TLS              *ListenerTLS               `json:"tls,omitempty"`
	HealthCheck      *HealthCheckPolicy         `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection          `json:"outlierDetection,omitempty"`
	ConnectionPool   *VirtualNodeConnectionPool `json:"connectionPool,omitempty"`
	Timeout          *ListenerTimeout           `json:"timeout,omitempty"`
}

// OutlierDetection ejects endpoints that keep failing.
type OutlierDetection struct {
	// +kubebuilder:validation:Minimum=1
	MaxServerErrors      int64    `json:"maxServerErrors"`
	Interval             Duration `json:"interval"`
	BaseEjectionDuration Duration `json:"baseEjectionDuration"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent int64 `json:"maxEjectionPercent"`
}

// VirtualNodeConnectionPool is a union: one of tcp, http, http2, grpc.
// +kubebuilder:validation:XValidation:rule="[has(self.tcp), has(self.http), has(self.http2), has(self.grpc)].filter(x, x).size() <= 1",message="Only one type of Virtual Node Connection Pool is allowed"
type VirtualNodeConnectionPool struct {
	TCP   *TCPConnectionPool   `json:"tcp,omitempty"`
	HTTP  *HTTPConnectionPool  `json:"http,omitempty"`
	HTTP2 *HTTP2ConnectionPool `json:"http2,omitempty"`
	GRPC  *GRPCConnectionPool  `json:"grpc,omitempty"`
}

// ListenerTimeout is a union keyed by protocol.
type ListenerTimeout struct {
	TCP   *TCPTimeout  `json:"tcp,omitempty"`
	HTTP  *HTTPTimeout `json:"http,omitempty"`
	HTTP2 *HTTPTimeout `json:"http2,omitempty"`
	GRPC  *GRPCTimeout `json:"grpc,omitempty"`
}

// ServiceDiscovery is a union: one of dns, awsCloudMap.
type ServiceDiscovery struct {
	AWSCloudMap *AWSCloudMapServiceDiscovery `json:"awsCloudMap,omitempty"`
	DNS         *DNSServiceDiscovery         `json:"dns,omitempty"`
}

// DNSServiceDiscovery finds endpoints by DNS name.
type DNSServiceDiscovery struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Hostname string `json:"hostname"`
	// ResponseType is LOADBALANCER (default, one endpoint) or ENDPOINTS (every address).
	// +kubebuilder:validation:Enum=LOADBALANCER;ENDPOINTS
	ResponseType *string `json:"responseType,omitempty"`
}

// AWSCloudMapServiceDiscovery finds endpoints in AWS Cloud Map.
type AWSCloudMapServiceDiscovery struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	NamespaceName string `json:"namespaceName"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	ServiceName string                         `json:"serviceName"`
	Attributes  []AWSCloudMapInstanceAttribute `json:"attributes,omitempty"`
}

// AWSCloudMapInstanceAttribute filters Cloud Map instances.
type AWSCloudMapInstanceAttribute struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Key string `json:"key"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// Backend is a VirtualService this node calls.
type Backend struct {
	VirtualService VirtualServiceBackend `json:"virtualService"`
}

// VirtualServiceBackend names the called VirtualService and how to call it.
type VirtualServiceBackend struct {
	VirtualServiceRef *VirtualServiceReference `json:"virtualServiceRef,omitempty"`
	VirtualServiceARN *string                  `json:"virtualServiceARN,omitempty"`
	ClientPolicy      *ClientPolicy            `json:"clientPolicy,omitempty"`
}
