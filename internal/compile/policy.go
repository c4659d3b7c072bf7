package compile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
)

// The checks of listener and client policies that VirtualGateways and
// VirtualNodes share (reference §4).

// listenerPorts checks that listener ports are in range and distinct, and
// returns the listeners as port/protocol pairs sorted by port.
func (c *compiler) listenerPorts(st *state, field string, pms []v1beta2.PortMapping, protocols ...string) []ir.PortProto {
	seen := map[v1beta2.PortNumber]int{}
	var out []ir.PortProto
	for i, pm := range pms {
		f := fmt.Sprintf("%s[%d].portMapping", field, i)
		okPort := c.port(st, f+".port", pm.Port)
		okProto := c.enum(st, f+".protocol", string(pm.Protocol), protocols...)
		if j, dup := seen[pm.Port]; dup && okPort {
			c.invalid(st, f+".port", fmt.Sprintf("port %d is already the port of %s[%d]; each listener needs its own port", pm.Port, field, j))
			continue
		}
		seen[pm.Port] = i
		if okPort && okProto {
			out = append(out, ir.PortProto{Port: int(pm.Port), Protocol: string(pm.Protocol)})
		}
	}
	sortPorts(out)
	return out
}

func sortPorts(ps []ir.PortProto) {
	slices.SortFunc(ps, func(a, b ir.PortProto) int { return a.Port - b.Port })
}

// describePorts lists listeners for messages: "8080/http, 9090/grpc".
func describePorts(ps []ir.PortProto) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
	}
	return strings.Join(s, ", ")
}

// healthCheck checks a listener health check (§4.2).
func (c *compiler) healthCheck(st *state, f string, hc *v1beta2.HealthCheckPolicy, listenerPort v1beta2.PortNumber, protocols ...string) {
	if hc == nil {
		return
	}
	c.intRange(st, f+".healthyThreshold", hc.HealthyThreshold, 2, 10)
	c.intRange(st, f+".intervalMillis", hc.IntervalMillis, 5000, 300000)
	c.intRange(st, f+".timeoutMillis", hc.TimeoutMillis, 2000, 60000)
	c.intRange(st, f+".unhealthyThreshold", hc.UnhealthyThreshold, 2, 10)
	c.enum(st, f+".protocol", string(hc.Protocol), protocols...)
	if hc.Port != nil && c.port(st, f+".port", *hc.Port) && *hc.Port != listenerPort {
		c.invalid(st, f+".port", fmt.Sprintf("port %d is not the listener's port %d; a health check port must match the listener's portMapping.port", *hc.Port, listenerPort))
	}
}

// connectionPool checks a listener connection pool: one type, the type of
// the listener's protocol, limits of at least 1 (§4.5). kindMsg is the
// controller's message for several types.
func (c *compiler) connectionPool(st *state, f, protocol, kindMsg string, tcp *v1beta2.TCPConnectionPool, http *v1beta2.HTTPConnectionPool, http2 *v1beta2.HTTP2ConnectionPool, grpc *v1beta2.GRPCConnectionPool, types ...string) {
	var members []any
	for _, t := range types {
		switch t {
		case "tcp":
			members = append(members, t, tcp)
		case "http":
			members = append(members, t, http)
		case "http2":
			members = append(members, t, http2)
		case "grpc":
			members = append(members, t, grpc)
		}
	}
	got := present(members...)
	switch {
	case len(got) > 1:
		c.invalid(st, f, kindMsg)
		return
	case len(got) == 0:
		c.invalid(st, f, fmt.Sprintf("connectionPool is empty; give one of %s", strings.Join(types, ", ")))
		return
	}
	if got[0] != protocol {
		c.invalid(st, f+"."+got[0], fmt.Sprintf("connectionPool.%s does not fit the listener's protocol %s; give connectionPool.%s", got[0], protocol, protocol))
	}
	switch {
	case tcp != nil:
		c.atLeast(st, f+".tcp.maxConnections", tcp.MaxConnections, 1)
	case http != nil:
		c.atLeast(st, f+".http.maxConnections", http.MaxConnections, 1)
		if http.MaxPendingRequests != nil {
			c.atLeast(st, f+".http.maxPendingRequests", *http.MaxPendingRequests, 1)
		}
	case http2 != nil:
		c.atLeast(st, f+".http2.maxRequests", http2.MaxRequests, 1)
	case grpc != nil:
		c.atLeast(st, f+".grpc.maxRequests", grpc.MaxRequests, 1)
	}
}

// listenerTLS checks TLS termination on a listener (§4.3).
func (c *compiler) listenerTLS(st *state, f string, t *v1beta2.ListenerTLS) {
	if t == nil {
		return
	}
	c.enum(st, f+".mode", t.Mode, "STRICT", "PERMISSIVE", "DISABLED")
	cf := f + ".certificate"
	switch c.one(st, cf, "acm", t.Certificate.ACM, "file", t.Certificate.File, "sds", t.Certificate.SDS) {
	case "acm":
		c.required(st, cf+".acm.certificateARN", t.Certificate.ACM.CertificateARN, "the ARN of the ACM certificate")
	case "file":
		c.fileCert(st, cf+".file", t.Certificate.File)
	case "sds":
		c.sds(st, cf+".sds.secretName", t.Certificate.SDS.SecretName)
	}
	if v := t.Validation; v != nil {
		vf := f + ".validation"
		if v.Trust.ACM != nil {
			c.invalid(st, vf+".trust.acm", "acm trust is only for client policies; a listener validates client certificates with file or sds trust")
		} else {
			c.trust(st, vf+".trust", v.Trust, false)
		}
		c.sans(st, vf+".subjectAlternativeNames", v.SubjectAlternativeNames)
	}
}

func (c *compiler) fileCert(st *state, f string, fc *v1beta2.FileCertificate) {
	c.length(st, f+".certificateChain", fc.CertificateChain, 1, 255)
	c.length(st, f+".privateKey", fc.PrivateKey, 1, 255)
}

func (c *compiler) sds(st *state, f string, name *string) {
	if name == nil || *name == "" {
		c.invalid(st, f, "secretName is missing; give the name of the secret the local SDS provider serves")
	}
}

// trust checks a validation trust union; acm is allowed for client policies.
func (c *compiler) trust(st *state, f string, t v1beta2.TLSValidationContextTrust, acm bool) {
	var kind string
	if acm {
		kind = c.one(st, f, "acm", t.ACM, "file", t.File, "sds", t.SDS)
	} else {
		kind = c.one(st, f, "file", t.File, "sds", t.SDS)
	}
	switch kind {
	case "acm":
		n := len(t.ACM.CertificateAuthorityARNs)
		if n < 1 || n > 3 {
			c.invalid(st, f+".acm.certificateAuthorityARNs", fmt.Sprintf("certificateAuthorityARNs has %d entries; allowed 1..3", n))
		}
	case "file":
		c.length(st, f+".file.certificateChain", t.File.CertificateChain, 1, 255)
	case "sds":
		c.sds(st, f+".sds.secretName", t.SDS.SecretName)
	}
}

func (c *compiler) sans(st *state, f string, s *v1beta2.SubjectAlternativeNames) {
	if s == nil {
		return
	}
	if s.Match == nil || len(s.Match.Exact) == 0 {
		c.invalid(st, f+".match.exact", "exact is missing; give the accepted subject alternative names")
		return
	}
	for i, n := range s.Match.Exact {
		c.length(st, fmt.Sprintf("%s.match.exact[%d]", f, i), n, 1, 254)
	}
}

// clientPolicy checks a client policy (§4.4).
func (c *compiler) clientPolicy(st *state, f string, p *v1beta2.ClientPolicy) {
	if p == nil || p.TLS == nil {
		return
	}
	f += ".tls"
	for i, port := range p.TLS.Ports {
		c.port(st, fmt.Sprintf("%s.ports[%d]", f, i), port)
	}
	if cert := p.TLS.Certificate; cert != nil {
		switch c.one(st, f+".certificate", "file", cert.File, "sds", cert.SDS) {
		case "file":
			c.fileCert(st, f+".certificate.file", cert.File)
		case "sds":
			c.sds(st, f+".certificate.sds.secretName", cert.SDS.SecretName)
		}
	}
	c.trust(st, f+".validation.trust", p.TLS.Validation.Trust, true)
	c.sans(st, f+".validation.subjectAlternativeNames", p.TLS.Validation.SubjectAlternativeNames)
}

// logging checks an access log and compiles it (§4.8).
func (c *compiler) logging(st *state, f string, l *v1beta2.Logging) *ir.AccessLog {
	if l == nil || l.AccessLog == nil {
		return nil
	}
	f += ".accessLog"
	if l.AccessLog.File == nil {
		c.invalid(st, f, "accessLog is empty; give file")
		return nil
	}
	f += ".file"
	file := l.AccessLog.File
	out := &ir.AccessLog{Path: file.Path}
	c.length(st, f+".path", file.Path, 1, 255)
	if fm := file.Format; fm != nil {
		switch c.one(st, f+".format", "json", fm.JSON, "text", fm.Text) {
		case "json":
			for i, kv := range fm.JSON {
				kf := fmt.Sprintf("%s.format.json[%d]", f, i)
				c.length(st, kf+".key", kv.Key, 1, 100)
				c.length(st, kf+".value", kv.Value, 1, 100)
				out.JSON = append(out.JSON, ir.KeyValue{Key: kv.Key, Value: kv.Value})
			}
		case "text":
			c.length(st, f+".format.text", *fm.Text, 1, 1000)
			out.Text = *fm.Text
		}
	}
	return out
}
