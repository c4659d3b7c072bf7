package compile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/certs"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

// TLS settings (reference §4.3, §4.4) go into the IR as written, once
// policy.go has checked them. A VirtualGateway is served by this gateway,
// so what it cannot use outside AWS (ACM certificates and ACM trust) is a
// problem there; a VirtualNode's TLS is its sidecar's business and is
// compiled as written.

// gatewayListenerTLS compiles a VirtualGateway listener's tls into the
// compiled listener of the same port.
func (c *compiler) gatewayListenerTLS(st *state, f string, g *ir.Gateway, l *v1beta2.VirtualGatewayListener) {
	t := listenerTLSIR(l.TLS)
	if t == nil {
		return
	}
	if t.Terminates() && l.TLS.Certificate.ACM != nil {
		c.invalid(st, f+".certificate.acm", "ACM certificates are only available to App Mesh inside AWS; give the certificate as file or sds")
	}
	for _, out := range g.Listeners {
		if out.Port == int(l.PortMapping.Port) {
			out.TLS = t
		}
	}
}

// gatewayClientTLS compiles a VirtualGateway's backendDefaults client policy.
func (c *compiler) gatewayClientTLS(st *state, f string, d *v1beta2.BackendDefaults) *ir.ClientTLS {
	if d == nil || d.ClientPolicy == nil {
		return nil
	}
	t := clientTLSIR(d.ClientPolicy)
	if t == nil {
		return nil
	}
	f += ".tls"
	switch {
	case !t.Enforce:
		st.note(f + ".enforce is false: the gateway calls its upstreams without TLS")
	case len(t.Validation.TrustACM) > 0:
		c.invalid(st, f+".validation.trust.acm", "AWS Private CA trust is only available to App Mesh inside AWS; give the trusted CAs as file or sds")
	}
	return t
}

// nodeListenerTLS compiles a VirtualNode listener's tls into the node's
// policy for that port.
func nodeListenerTLS(n *ir.VirtualNode, l *v1beta2.Listener) {
	t := listenerTLSIR(l.TLS)
	if t == nil {
		return
	}
	listenerPolicy(n, int(l.PortMapping.Port)).TLS = t
}

func listenerTLSIR(t *v1beta2.ListenerTLS) *ir.ListenerTLS {
	if t == nil {
		return nil
	}
	out := &ir.ListenerTLS{Mode: t.Mode}
	switch cert := t.Certificate; {
	case cert.File != nil:
		out.Certificate = ir.CertificateSource{CertificateChain: cert.File.CertificateChain, PrivateKey: cert.File.PrivateKey}
	case cert.SDS != nil && cert.SDS.SecretName != nil:
		out.Certificate = ir.CertificateSource{SDSSecret: *cert.SDS.SecretName}
	case cert.ACM != nil:
		out.Certificate = ir.CertificateSource{ACMCertificateARN: cert.ACM.CertificateARN}
	}
	if v := t.Validation; v != nil {
		val := validationIR(v)
		out.ClientValidation = &val
	}
	return out
}

func validationIR(v *v1beta2.TLSValidationContext) ir.TLSValidation {
	var out ir.TLSValidation
	switch tr := v.Trust; {
	case tr.File != nil:
		out.TrustFile = tr.File.CertificateChain
	case tr.SDS != nil && tr.SDS.SecretName != nil:
		out.TrustSDSSecret = *tr.SDS.SecretName
	case tr.ACM != nil:
		out.TrustACM = slices.Clone(tr.ACM.CertificateAuthorityARNs)
	}
	if s := v.SubjectAlternativeNames; s != nil && s.Match != nil {
		out.SubjectAlternativeNames = slices.Clone(s.Match.Exact)
	}
	return out
}

// clientTLSIR compiles a client policy's tls; enforce defaults to true.
func clientTLSIR(p *v1beta2.ClientPolicy) *ir.ClientTLS {
	if p == nil || p.TLS == nil {
		return nil
	}
	t := p.TLS
	out := &ir.ClientTLS{Enforce: t.Enforce == nil || *t.Enforce, Validation: validationIR(&t.Validation)}
	for _, port := range t.Ports {
		out.Ports = append(out.Ports, int(port))
	}
	slices.Sort(out.Ports)
	out.Ports = slices.Compact(out.Ports)
	if cert := t.Certificate; cert != nil {
		switch {
		case cert.File != nil:
			out.Certificate = &ir.CertificateSource{CertificateChain: cert.File.CertificateChain, PrivateKey: cert.File.PrivateKey}
		case cert.SDS != nil && cert.SDS.SecretName != nil:
			out.Certificate = &ir.CertificateSource{SDSSecret: *cert.SDS.SecretName}
		}
	}
	return out
}

// CheckFiles reads the certificates, private keys and trust bundles that the
// compiled gateways of cfg name, and reports each one the gateway could not
// use: a file that is missing or unreadable, holds no PEM certificate, or a
// key that does not match its certificate. Unlike Compile it reads the file
// system, so it is a separate step (`meshgate check` runs it; the data plane
// loads the same files when it applies a config). SDS secrets are read
// below sdsDir (see package certs); with sdsDir empty they are not checked.
func CheckFiles(set *resource.Set, cfg *ir.Config, sdsDir string) []resource.Problem {
	var out []resource.Problem
	for _, g := range cfg.Gateways {
		ns, name, _ := strings.Cut(g.Name, "/")
		if name == "" {
			ns, name = "", ns
		}
		obj := set.Objects[resource.Key{Kind: v1beta2.KindVirtualGateway, Namespace: ns, Name: name}]
		if obj == nil {
			continue
		}
		vg, ok := obj.Value.(*v1beta2.VirtualGateway)
		if !ok {
			continue
		}
		report := func(field string, err error) {
			if err == nil || (sdsDir == "" && errors.Is(err, certs.ErrNoSecretDir)) {
				return
			}
			out = append(out, resource.Problem{File: obj.Origin.File, Line: obj.Origin.LineOf(field), Key: obj.Key, Field: field, Message: err.Error()})
		}
		for i, l := range vg.Spec.Listeners {
			t := listenerTLSIR(l.TLS)
			if !t.Terminates() {
				continue
			}
			f := fmt.Sprintf("spec.listeners[%d].tls", i)
			report(certField(f+".certificate", t.Certificate), certs.CheckKeyPair(t.Certificate, sdsDir))
			if v := t.ClientValidation; v != nil {
				report(trustField(f+".validation.trust", *v), certs.CheckTrust(*v, sdsDir))
			}
		}
		if t := g.ClientTLS; t != nil && t.Enforce {
			f := "spec.backendDefaults.clientPolicy.tls"
			if t.Certificate != nil {
				report(certField(f+".certificate", *t.Certificate), certs.CheckKeyPair(*t.Certificate, sdsDir))
			}
			report(trustField(f+".validation.trust", t.Validation), certs.CheckTrust(t.Validation, sdsDir))
		}
	}
	slices.SortStableFunc(out, func(a, b resource.Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Message, b.Message))
	})
	return out
}

func certField(f string, src ir.CertificateSource) string {
	switch {
	case src.SDSSecret != "":
		return f + ".sds.secretName"
	case src.ACMCertificateARN != "":
		return f + ".acm.certificateARN"
	}
	return f + ".file"
}

func trustField(f string, v ir.TLSValidation) string {
	switch {
	case v.TrustSDSSecret != "":
		return f + ".sds.secretName"
	case len(v.TrustACM) > 0:
		return f + ".acm"
	}
	return f + ".file.certificateChain"
}
