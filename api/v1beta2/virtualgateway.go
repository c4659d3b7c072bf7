package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualGateway is the door into the mesh: listeners that GatewayRoutes attach to.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ARN",type="string",JSONPath=".status.virtualGatewayARN",description="The AppMesh VirtualGateway object's Amazon Resource Name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type VirtualGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualGatewaySpec `json:"spec,omitempty"`
	Status            Status             `json:"status,omitempty"`
}

// VirtualGatewaySpec is the desired state of a VirtualGateway.
// +kubebuilder:validation:XValidation:rule="(!has(oldSelf.awsName) || (has(self.awsName) && self.awsName == oldSelf.awsName)) && (!has(oldSelf.meshRef) || (has(self.meshRef) && self.meshRef == oldSelf.meshRef))",messageExpression="'VirtualGateway update may not change these fields: ' + (((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName,spec.meshRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && !(has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName' : 'spec.meshRef')"
type VirtualGatewaySpec struct {
	// +kubebuilder:validation:MaxLength=255
	AWSName *string `json:"awsName,omitempty"`
	// NamespaceSelector selects the namespaces whose GatewayRoutes may attach:
	// absent selects none, {} all.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// GatewayRouteSelector selects GatewayRoutes by label; absent or {} selects all.
	GatewayRouteSelector *metav1.LabelSelector `json:"gatewayRouteSelector,omitempty"`
	PodSelector          *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Listeners is bounded so that the API server can bound the cost of
	// the per-listener rules; AWS allows far fewer.
	// +kubebuilder:validation:MaxItems=64
	Listeners       []VirtualGatewayListener `json:"listeners,omitempty"`
	Logging         *Logging                 `json:"logging,omitempty"`
	BackendDefaults *BackendDefaults         `json:"backendDefaults,omitempty"`
	MeshRef         *MeshReference           `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
}

// VirtualGatewayListener is one port of the gateway. Its protocols exclude
// tcp, which App Mesh's CRD enum left out (a TCP gateway never shipped).
// +kubebuilder:validation:XValidation:rule="self.portMapping.protocol != 'tcp'",message="portMapping.protocol: Unsupported value: \"tcp\": supported values: \"grpc\", \"http\", \"http2\""
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || self.healthCheck.protocol != 'tcp'",message="healthCheck.protocol: Unsupported value: \"tcp\": supported values: \"grpc\", \"http\", \"http2\""
type VirtualGatewayListener struct {
	PortMapping    PortMapping                   `json:"portMapping"`
	TLS            *ListenerTLS                  `json:"tls,omitempty"`
	HealthCheck    *HealthCheckPolicy            `json:"healthCheck,omitempty"`
	ConnectionPool *VirtualGatewayConnectionPool `json:"connectionPool,omitempty"`
}

// VirtualGatewayConnectionPool is a union: one of http, http2, grpc.
// +kubebuilder:validation:XValidation:rule="[has(self.http), has(self.http2), has(self.grpc)].filter(x, x).size() <= 1",message="Only one type of Virtual Gateway Connection Pool is allowed"
type VirtualGatewayConnectionPool struct {
	HTTP  *HTTPConnectionPool  `json:"http,omitempty"`
	HTTP2 *HTTP2ConnectionPool `json:"http2,omitempty"`
	GRPC  *GRPCConnectionPool  `json:"grpc,omitempty"`
}

// HealthCheckPolicy is an active health check (VirtualGateway and VirtualNode listeners).
type HealthCheckPolicy struct {
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=10
	HealthyThreshold int64 `json:"healthyThreshold,omitempty"`
	// +kubebuilder:validation:Minimum=5000
	// +kubebuilder:validation:Maximum=300000
	IntervalMillis int64        `json:"intervalMillis"`
	Path           *string      `json:"path,omitempty"`
	Port           *PortNumber  `json:"port,omitempty"`
	Protocol       PortProtocol `json:"protocol"`
	// +kubebuilder:validation:Minimum=2000
	// +kubebuilder:validation:Maximum=60000
	TimeoutMillis int64 `json:"timeoutMillis"`
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=10
	UnhealthyThreshold int64 `json:"unhealthyThreshold"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	Certificate ListenerTLSCertificate `json:"certificate"`
	// Mode is STRICT, PERMISSIVE or DISABLED.
	// +kubebuilder:validation:Enum=STRICT;PERMISSIVE;DISABLED
	Mode       string                `json:"mode"`
	Validation *TLSValidationContext `json:"validation,omitempty"`
}

// ListenerTLSCertificate is a union: one of acm, file, sds.
type ListenerTLSCertificate struct {
	ACM  *ACMCertificate  `json:"acm,omitempty"`
	File *FileCertificate `json:"file,omitempty"`
	SDS  *SDSCertificate  `json:"sds,omitempty"`
}

// ACMCertificate is an AWS Certificate Manager certificate.
type ACMCertificate struct {
	CertificateARN string `json:"certificateARN"`
}

// FileCertificate is a PEM chain and key on the local filesystem.
type FileCertificate struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CertificateChain string `json:"certificateChain"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	PrivateKey string `json:"privateKey"`
}

// SDSCertificate names a secret of the local secret discovery service.
type SDSCertificate struct {
	SecretName *string `json:"secretName"`
}

// TLSValidationContext says which peer certificates are trusted.
type TLSValidationContext struct {
	Trust                   TLSValidationContextTrust `json:"trust"`
	SubjectAlternativeNames *SubjectAlternativeNames  `json:"subjectAlternativeNames,omitempty"`
}

// TLSValidationContextTrust is a union: one of acm, file, sds.
type TLSValidationContextTrust struct {
	ACM  *ACMTrust  `json:"acm,omitempty"`
	File *FileTrust `json:"file,omitempty"`
	SDS  *SDSTrust  `json:"sds,omitempty"`
}

// ACMTrust trusts AWS Private CA authorities.
type ACMTrust struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	CertificateAuthorityARNs []string `json:"certificateAuthorityARNs"`
}

// FileTrust trusts the certificates in a local PEM file.
type FileTrust struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CertificateChain string `json:"certificateChain"`
}

// SDSTrust trusts a secret of the local secret discovery service.
type SDSTrust struct {
	SecretName *string `json:"secretName"`
}

// Logging configures access logs.
type Logging struct {
	AccessLog *AccessLog `json:"accessLog,omitempty"`
}

// AccessLog is a union; only file exists.
type AccessLog struct {
	File *FileAccessLog `json:"file,omitempty"`
}

// FileAccessLog writes one line per request to Path.
type FileAccessLog struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Path   string         `json:"path"`
	Format *LoggingFormat `json:"format,omitempty"`
}

// LoggingFormat is a union: json key/value pairs or a text pattern.
type LoggingFormat struct {
	// +kubebuilder:validation:MinItems=1
	JSON []JSONKeyValue `json:"json,omitempty"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	Text *string `json:"text,omitempty"`
}

// JSONKeyValue is one key of a JSON access log line and its command operator.
type JSONKeyValue struct {
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// +kubebuilder:validation:MinLength=1
	Value string `json:"value"`
}

// BackendDefaults are client policies applied to every backend.
type BackendDefaults struct {
	ClientPolicy *ClientPolicy `json:"clientPolicy,omitempty"`
}

// ClientPolicy is how the proxy talks to a backend.
type ClientPolicy struct {
	TLS *ClientPolicyTLS `json:"tls,omitempty"`
}

// ClientPolicyTLS originates TLS to upstreams.
type ClientPolicyTLS struct {
	Enforce     *bool                 `json:"enforce,omitempty"`
	Ports       []PortNumber          `json:"ports,omitempty"`
	Certificate *ClientTLSCertificate `json:"certificate,omitempty"`
	Validation  TLSValidationContext  `json:"validation"`
}

// ClientTLSCertificate is a union: one of file, sds.
type ClientTLSCertificate struct {
	File *FileCertificate `json:"file,omitempty"`
	SDS  *SDSCertificate  `json:"sds,omitempty"`
}
