package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualGateway is the door into the mesh: listeners that GatewayRoutes attach to.
type VirtualGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualGatewaySpec `json:"spec,omitempty"`
	Status            Status             `json:"status,omitempty"`
}

// VirtualGatewaySpec is the desired state of a VirtualGateway.
type VirtualGatewaySpec struct {
	AWSName *string `json:"awsName,omitempty"`
	// NamespaceSelector selects the namespaces whose GatewayRoutes may attach:
	// absent selects none, {} all.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// GatewayRouteSelector selects GatewayRoutes by label; absent or {} selects all.
	GatewayRouteSelector *metav1.LabelSelector    `json:"gatewayRouteSelector,omitempty"`
	PodSelector          *metav1.LabelSelector    `json:"podSelector,omitempty"`
	Listeners            []VirtualGatewayListener `json:"listeners,omitempty"`
	Logging              *Logging                 `json:"logging,omitempty"`
	BackendDefaults      *BackendDefaults         `json:"backendDefaults,omitempty"`
	MeshRef              *MeshReference           `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
}

// VirtualGatewayListener is one port of the gateway.
type VirtualGatewayListener struct {
	PortMapping    PortMapping                   `json:"portMapping"`
	TLS            *ListenerTLS                  `json:"tls,omitempty"`
	HealthCheck    *HealthCheckPolicy            `json:"healthCheck,omitempty"`
	ConnectionPool *VirtualGatewayConnectionPool `json:"connectionPool,omitempty"`
}

// VirtualGatewayConnectionPool is a union: one of http, http2, grpc.
type VirtualGatewayConnectionPool struct {
	HTTP  *HTTPConnectionPool  `json:"http,omitempty"`
	HTTP2 *HTTP2ConnectionPool `json:"http2,omitempty"`
	GRPC  *GRPCConnectionPool  `json:"grpc,omitempty"`
}

// HealthCheckPolicy is an active health check (VirtualGateway and VirtualNode listeners).
type HealthCheckPolicy struct {
	HealthyThreshold   int64        `json:"healthyThreshold,omitempty"`
	IntervalMillis     int64        `json:"intervalMillis"`
	Path               *string      `json:"path,omitempty"`
	Port               *PortNumber  `json:"port,omitempty"`
	Protocol           PortProtocol `json:"protocol"`
	TimeoutMillis      int64        `json:"timeoutMillis"`
	UnhealthyThreshold int64        `json:"unhealthyThreshold"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	Certificate ListenerTLSCertificate `json:"certificate"`
	// Mode is STRICT, PERMISSIVE or DISABLED.
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
	CertificateChain string `json:"certificateChain"`
	PrivateKey       string `json:"privateKey"`
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
	CertificateAuthorityARNs []string `json:"certificateAuthorityARNs"`
}

// FileTrust trusts the certificates in a local PEM file.
type FileTrust struct {
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
	Path   string         `json:"path"`
	Format *LoggingFormat `json:"format,omitempty"`
}

// LoggingFormat is a union: json key/value pairs or a text pattern.
type LoggingFormat struct {
	JSON []JSONKeyValue `json:"json,omitempty"`
	Text *string        `json:"text,omitempty"`
}

// JSONKeyValue is one key of a JSON access log line and its command operator.
type JSONKeyValue struct {
	Key   string `json:"key"`
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
