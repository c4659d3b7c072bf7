package compile

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
)

// The checks and conversions of match criteria that GatewayRoutes and
// VirtualRouter routes share (reference §1.0, §1.3, §1.5, §6.3). Every entry
// of a list is checked: the controller stopped after the first header with a
// range and skipped query parameters whenever headers were present.

var methods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// header is an HTTP header or gRPC metadata match as written.
type header struct {
	name   string
	match  *v1beta2.HeaderMatchMethod
	invert *bool
}

func httpHeaders(hs []v1beta2.HTTPHeader) []header {
	out := make([]header, len(hs))
	for i, h := range hs {
		out[i] = header{h.Name, h.Match, h.Invert}
	}
	return out
}

func grpcMetadata(ms []v1beta2.GRPCMetadata) []header {
	out := make([]header, len(ms))
	for i, m := range ms {
		out[i] = header{m.Name, m.Match, m.Invert}
	}
	return out
}

// headers checks and compiles header matches (per is "header") or gRPC
// metadata matches (per is "metadata"). A header with only a name matches
// when the header is present. For metadata the controller accepts an empty
// match block, which means the same.
func (c *compiler) headers(st *state, field string, hs []header, per string) []ir.HeaderMatch {
	c.items(st, field, len(hs), 1, 10)
	var out []ir.HeaderMatch
	for i, h := range hs {
		f := fmt.Sprintf("%s[%d]", field, i)
		c.length(st, f+".name", h.name, 1, 50)
		hm := ir.HeaderMatch{Name: strings.ToLower(h.name), Type: ir.HeaderPresent, Invert: h.invert != nil && *h.invert}
		if m := h.match; m != nil {
			mf := f + ".match"
			kinds := present("exact", m.Exact, "prefix", m.Prefix, "suffix", m.Suffix, "regex", m.Regex, "range", m.Range)
			switch {
			case len(kinds) > 1:
				c.invalid(st, mf, "Too many Match Filters specified, only 1 allowed per "+per)
			case len(kinds) == 0 && per == "header":
				c.invalid(st, mf, "Missing Match criteria for one or more header match block, don't specify match block if you dont need it")
			case m.Exact != nil:
				c.length(st, mf+".exact", *m.Exact, 1, 255)
				hm.Type, hm.Value = ir.HeaderExact, *m.Exact
			case m.Prefix != nil:
				c.length(st, mf+".prefix", *m.Prefix, 1, 255)
				hm.Type, hm.Value = ir.HeaderPrefix, *m.Prefix
			case m.Suffix != nil:
				c.length(st, mf+".suffix", *m.Suffix, 1, 255)
				hm.Type, hm.Value = ir.HeaderSuffix, *m.Suffix
			case m.Regex != nil:
				hm.Type, hm.Regex = ir.HeaderRegex, c.regex(st, mf+".regex", *m.Regex)
			case m.Range != nil:
				if m.Range.End <= m.Range.Start {
					c.invalid(st, mf+".range", "Invalid Match Range specified, end has to be greater than start")
				}
				hm.Type, hm.Start, hm.End = ir.HeaderRange, m.Range.Start, m.Range.End
			}
		}
		out = append(out, hm)
	}
	return out
}

// query checks and compiles query parameter matches; a parameter with only a
// name matches when it is present.
func (c *compiler) query(st *state, field string, qs []v1beta2.HTTPQueryParameters) []ir.QueryMatch {
	c.items(st, field, len(qs), 1, 10)
	var out []ir.QueryMatch
	for i, q := range qs {
		f := fmt.Sprintf("%s[%d]", field, i)
		name := ""
		if q.Name != nil {
			name = *q.Name
		}
		c.required(st, f+".name", name, "the query parameter's name")
		qm := ir.QueryMatch{Name: name}
		if q.Match != nil {
			if q.Match.Exact == nil {
				c.invalid(st, f+".match", "Missing Match criteria for one or more exact query match block, don't specify match block if you dont need it")
			} else {
				v := *q.Match.Exact
				qm.Exact = &v
			}
		}
		out = append(out, qm)
	}
	return out
}

// path checks and compiles a path match (exact XOR regex).
func (c *compiler) path(st *state, field string, p *v1beta2.HTTPPathMatch, m *ir.Match) {
	switch {
	case p.Exact != nil && p.Regex != nil:
		c.invalid(st, field, "Both exact and regex for path are not allowed. Only one must be specified")
	case p.Exact != nil:
		if c.length(st, field+".exact", *p.Exact, 1, 255) {
			m.PathExact = *p.Exact
		}
	case p.Regex != nil:
		m.PathRegex = c.regex(st, field+".regex", *p.Regex)
	default:
		c.invalid(st, field, "Either exact or regex for path must be specified")
	}
}

// hostname checks and compiles a GatewayRoute hostname match (exact XOR
// suffix), lower-cased because hostnames compare case-insensitively.
func (c *compiler) hostname(st *state, field string, h *v1beta2.GatewayRouteHostnameMatch) *ir.HostnameMatch {
	switch {
	case h.Exact != nil && h.Suffix != nil:
		c.invalid(st, field, "Both exact and suffix match for hostname are not allowed. Only one must be specified")
	case h.Exact != nil:
		if c.length(st, field+".exact", *h.Exact, 1, 253) {
			return &ir.HostnameMatch{Exact: strings.ToLower(*h.Exact)}
		}
	case h.Suffix != nil:
		if c.length(st, field+".suffix", *h.Suffix, 1, 253) {
			return &ir.HostnameMatch{Suffix: strings.ToLower(*h.Suffix)}
		}
	default:
		c.invalid(st, field, "Either exact or suffix match for hostname must be specified")
	}
	return nil
}

// prefix compiles a match prefix. App Mesh only rejects a prefix without a
// leading slash when a prefix rewrite is present; elsewhere it is accepted,
// so it is kept, with a note that no request path can match it.
func (c *compiler) prefix(st *state, field, p string, m *ir.Match) {
	m.Prefix = p
	if p != "" && !strings.HasPrefix(p, "/") {
		st.note(fmt.Sprintf("%s: prefix %s does not start with '/', so no request path can match it", field, quote(p)))
	}
}

// method checks and compiles an HTTP method match.
func (c *compiler) method(st *state, field string, m *string, out *ir.Match) {
	if m != nil && c.enum(st, field, *m, methods...) {
		out.Method = *m
	}
}
