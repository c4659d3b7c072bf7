package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualNode is a set of endpoints found by service discovery.
type VirtualNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualNodeSpec `json:"spec,omitempty"`
	Status            Status          `json:"status,omitempty"`
}

// VirtualNodeSpec is the desired state of a VirtualNode.
type VirtualNodeSpec struct {
	AWSName          *string                 `json:"awsName,omitempty"`
	PodSelector      *metav1.LabelSelector   `json:"podSelector,omitempty"`
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
	MaxServerErrors      int64    `json:"maxServerErrors"`
	Interval             Duration `json:"interval"`
	BaseEjectionDuration Duration `json:"baseEjectionDuration"`
	MaxEjectionPercent   int64    `json:"maxEjectionPercent"`
}

// VirtualNodeConnectionPool is a union: one of tcp, http, http2, grpc.
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
	Hostname string `json:"hostname"`
	// ResponseType is LOADBALANCER (default, one endpoint) or ENDPOINTS (every address).
	ResponseType *string `json:"responseType,omitempty"`
}

// AWSCloudMapServiceDiscovery finds endpoints in AWS Cloud Map.
type AWSCloudMapServiceDiscovery struct {
	NamespaceName string                         `json:"namespaceName"`
	ServiceName   string                         `json:"serviceName"`
	Attributes    []AWSCloudMapInstanceAttribute `json:"attributes,omitempty"`
}

// AWSCloudMapInstanceAttribute filters Cloud Map instances.
type AWSCloudMapInstanceAttribute struct {
	Key   string `json:"key"`
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
