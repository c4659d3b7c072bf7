package ir

import "fmt"

// TLS modes of a listener.
const (
	TLSStrict     = "STRICT"
	TLSPermissive = "PERMISSIVE"
	TLSDisabled   = "DISABLED"
)

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

// Terminates reports whether the listener serves TLS (STRICT or PERMISSIVE).
func (t *ListenerTLS) Terminates() bool { return t != nil && t.Mode != TLSDisabled }

// CertificateSource is a certificate and key from files, or from a secret
// of the local secret source (see the data plane for how names map to
// files). Exactly one of the file pair, SDSSecret and ACMCertificateARN is set.
type CertificateSource struct {
	CertificateChain string `json:"certificateChain,omitempty"`
	PrivateKey       string `json:"privateKey,omitempty"`
	SDSSecret        string `json:"sdsSecret,omitempty"`
	// ACMCertificateARN is an AWS Certificate Manager certificate, which
	// only App Mesh's Envoy inside AWS can use.
	ACMCertificateARN string `json:"acmCertificateArn,omitempty"`
}

// String names the source for messages.
func (c CertificateSource) String() string {
	switch {
	case c.SDSSecret != "":
		return "sds secret " + c.SDSSecret
	case c.ACMCertificateARN != "":
		return "acm certificate " + c.ACMCertificateARN
	}
	return "certificate chain " + c.CertificateChain + " and private key " + c.PrivateKey
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
	// Enforce is App Mesh's enforce (default true); when false the policy
	// is not applied and upstreams are called in cleartext.
	Enforce bool `json:"enforce"`
	// Ports limits origination to these upstream ports; empty means all.
	Ports []int `json:"ports,omitempty"`
	// Certificate is the client certificate for mTLS, if any.
	Certificate *CertificateSource `json:"certificate,omitempty"`
	Validation  TLSValidation      `json:"validation"`
}

// AppliesTo reports whether connections to an upstream listener port are
// TLS under this policy.
func (c *ClientTLS) AppliesTo(port int) bool {
	if c == nil || !c.Enforce {
		return false
	}
	if len(c.Ports) == 0 {
		return true
	}
	for _, p := range c.Ports {
		if p == port {
			return true
		}
	}
	return false
}

// validateTLS checks what the data plane relies on: a known mode and one
// certificate source per TLS listener, one trust source per validation.
func (c *Config) validateTLS(bad func(format string, a ...any)) {
	for _, g := range c.Gateways {
		for _, l := range g.Listeners {
			if l.TLS != nil {
				l.TLS.validate(fmt.Sprintf("gateway %s port %d", g.Name, l.Port), bad)
			}
		}
		if t := g.ClientTLS; t != nil {
			where := "gateway " + g.Name + " client policy"
			if t.Certificate != nil {
				t.Certificate.validate(where, bad)
			}
			t.Validation.validate(where, bad)
		}
	}
}

func (t *ListenerTLS) validate(where string, bad func(format string, a ...any)) {
	switch t.Mode {
	case TLSStrict, TLSPermissive, TLSDisabled:
	default:
		bad("%s: TLS mode %q", where, t.Mode)
	}
	t.Certificate.validate(where, bad)
	if t.ClientValidation != nil {
		t.ClientValidation.validate(where, bad)
	}
}

func (c *CertificateSource) validate(where string, bad func(format string, a ...any)) {
	n := 0
	if c.CertificateChain != "" || c.PrivateKey != "" {
		n++
		if c.CertificateChain == "" || c.PrivateKey == "" {
			bad("%s: a certificate file needs both a chain and a key", where)
		}
	}
	if c.SDSSecret != "" {
		n++
	}
	if c.ACMCertificateARN != "" {
		n++
	}
	if n != 1 {
		bad("%s: %d certificate sources; want exactly one", where, n)
	}
}

func (v *TLSValidation) validate(where string, bad func(format string, a ...any)) {
	n := 0
	for _, set := range []bool{v.TrustFile != "", v.TrustSDSSecret != "", len(v.TrustACM) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad("%s: %d trust sources; want exactly one", where, n)
	}
}
