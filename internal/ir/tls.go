package ir

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// Mode is STRICT (TLS only), PERMISSIVE (TLS or plaintext on the same
	// port) or DISABLED (plaintext).
	Mode string `json:"mode"`
	// Certificate is the served certificate.
	Certificate CertificateSource `json:"certificate"`
	// ClientValidation, when set, requires and verifies client certificates (mTLS).
	ClientValidation *TLSValidation `json:"clientValidation,omitempty"`
}

// CertificateSource is a certificate and key from files, or from a secret
// of the local secret source (see the data plane for how names map to files).
type CertificateSource struct {
	CertificateChain string `json:"certificateChain,omitempty"`
	PrivateKey       string `json:"privateKey,omitempty"`
	SDSSecret        string `json:"sdsSecret,omitempty"`
}

// TLSValidation says which peer certificates are accepted.
type TLSValidation struct {
	// TrustFile is a PEM bundle of trusted CAs.
	TrustFile string `json:"trustFile,omitempty"`
	// TrustSDSSecret names a secret holding the trusted CAs.
	TrustSDSSecret string `json:"trustSdsSecret,omitempty"`
	// TrustACM are AWS Private CA ARNs; they cannot be used outside AWS.
	TrustACM []string `json:"trustAcm,omitempty"`
	// SubjectAlternativeNames, when not empty, restricts the peer's SANs.
	SubjectAlternativeNames []string `json:"subjectAlternativeNames,omitempty"`
}

// ClientTLS originates TLS to upstreams.
type ClientTLS struct {
	// Enforce is App Mesh's enforce (default true).
	Enforce bool `json:"enforce"`
	// Ports limits origination to these upstream ports; empty means all.
	Ports []int `json:"ports,omitempty"`
	// Certificate is the client certificate for mTLS, if any.
	Certificate *CertificateSource `json:"certificate,omitempty"`
	Validation  TLSValidation      `json:"validation"`
}
