package router

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/meshgate/meshgate/internal/ir"
)

// view is the request as a matcher sees it: host without port (compared
// case-insensitively, so it is never copied to lower case), path normalised.
// Router routes see a copy with the forwarded host and path.
type view struct {
	port     int
	method   string
	host     string // for hostname matching
	rawHost  string // for :authority / host header matching
	path     string
	rawQuery string
	scheme   string
	header   http.Header
}

type headerKind uint8

const (
	headerPresent headerKind = iota
	headerExact
	headerPrefix
	headerSuffix
	headerRegex
	headerRange
	headerUnknown // never matches, so a config from a newer compile fails closed
)

type pseudoHeader uint8

const (
	notPseudo pseudoHeader = iota
	pseudoAuthority
	pseudoMethod
	pseudoPath
	pseudoScheme
)

type headerMatcher struct {
	name   string // lower case, as configured
	key    string // canonical MIME form, how net/http stores it
	pseudo pseudoHeader
	kind   headerKind
	value  string
	regex  *ir.Regexp
	start  int64
	end    int64
	invert bool
}

type queryMatcher struct {
	name  string
	exact *string
}

// matcher is an ir.Match prepared for evaluation: strings lower-cased and
// gRPC paths built once.
type matcher struct {
	port       int
	hostExact  string
	hostSuffix string
	method     string
	scheme     string
	prefix     string
	pathExact  string
	pathRegex  *ir.Regexp
	grpcPrefix string // "/service/"
	grpcPath   string // "/service/method"
	grpcMethod string // "/method" when a method is given without a service
	headers    []headerMatcher
	query      []queryMatcher
}

func compileMatch(m *ir.Match) matcher {
	c := matcher{
		port:      m.Port,
		method:    m.Method,
		scheme:    strings.ToLower(m.Scheme),
		prefix:    m.Prefix,
		pathExact: m.PathExact,
		pathRegex: m.PathRegex,
	}
	if h := m.Hostname; h != nil {
		c.hostExact = strings.ToLower(h.Exact)
		c.hostSuffix = strings.ToLower(h.Suffix)
	}
	switch {
	case m.ServiceName != "" && m.MethodName != "":
		c.grpcPath = "/" + m.ServiceName + "/" + m.MethodName
	case m.ServiceName != "":
		c.grpcPrefix = "/" + m.ServiceName + "/"
	case m.MethodName != "":
		c.grpcMethod = "/" + m.MethodName
	}
	for _, h := range m.Headers {
		name := strings.ToLower(h.Name)
		hm := headerMatcher{
			name:   name,
			key:    textproto.CanonicalMIMEHeaderKey(name),
			value:  h.Value,
			regex:  h.Regex,
			start:  h.Start,
			end:    h.End,
			invert: h.Invert,
		}
		switch name {
		case ":authority", "host":
			hm.pseudo = pseudoAuthority
		case ":method":
			hm.pseudo = pseudoMethod
		case ":path":
			hm.pseudo = pseudoPath
		case ":scheme":
			hm.pseudo = pseudoScheme
		}
		switch h.Type {
		case ir.HeaderPresent, "":
			hm.kind = headerPresent
		case ir.HeaderExact:
			hm.kind = headerExact
		case ir.HeaderPrefix:
			hm.kind = headerPrefix
		case ir.HeaderSuffix:
			hm.kind = headerSuffix
		case ir.HeaderRegex:
			hm.kind = headerRegex
		case ir.HeaderRange:
			hm.kind = headerRange
		default:
			hm.kind = headerUnknown
		}
		c.headers = append(c.headers, hm)
	}
	for _, q := range m.Query {
		c.query = append(c.query, queryMatcher{name: q.Name, exact: q.Exact})
	}
	return c
}

// matches is the hot path: every criterion must hold, cheapest first.
func (m *matcher) matches(v *view) bool {
	if !portOK(m.port, v.port) ||
		!m.hostOK(v.host) ||
		(m.method != "" && v.method != m.method) ||
		(m.scheme != "" && !strings.EqualFold(v.scheme, m.scheme)) ||
		!m.pathOK(v.path) ||
		!m.grpcOK(v.path) {
		return false
	}
	for i := range m.headers {
		if !m.headers[i].matches(v) {
			return false
		}
	}
	for i := range m.query {
		if !m.query[i].matches(v.rawQuery) {
			return false
		}
	}
	return true
}

// portOK: a route port of 0 takes any port, and a router reached without a
// known port takes routes for any port.
func portOK(want, got int) bool { return want == 0 || got == 0 || want == got }

func (m *matcher) hostOK(host string) bool {
	if m.hostExact != "" && !equalFoldASCII(host, m.hostExact) {
		return false
	}
	return m.hostSuffix == "" || suffixMatch(host, m.hostSuffix)
}

// suffixMatch is Envoy's wildcard-domain rule: the host must end with the
// (lower-case) suffix, ignoring case, and have at least one character before it.
func suffixMatch(host, suffix string) bool {
	return len(host) > len(suffix) && equalFoldASCII(host[len(host)-len(suffix):], suffix)
}

// equalFoldASCII compares s with lower, which is already lower case, folding
// only ASCII letters as DNS names do.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func hasUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func (m *matcher) pathOK(path string) bool {
	if m.prefix != "" && !strings.HasPrefix(path, m.prefix) {
		return false
	}
	if m.pathExact != "" && path != m.pathExact {
		return false
	}
	return m.pathRegex == nil || m.pathRegex.MatchString(path)
}

func (m *matcher) grpcOK(path string) bool {
	switch {
	case m.grpcPath != "":
		return path == m.grpcPath
	case m.grpcPrefix != "":
		return strings.HasPrefix(path, m.grpcPrefix)
	case m.grpcMethod != "":
		return strings.HasSuffix(path, m.grpcMethod) && strings.Count(path, "/") == 2
	}
	return true
}

func (h *headerMatcher) matches(v *view) bool {
	val, ok := h.lookup(v)
	if !ok {
		// Envoy never matches an absent header, inverted or not, except that
		// an inverted presence match is exactly "absent".
		return h.kind == headerPresent && h.invert
	}
	return h.test(val) != h.invert
}

func (h *headerMatcher) lookup(v *view) (string, bool) {
	switch h.pseudo {
	case pseudoAuthority:
		return v.rawHost, v.rawHost != ""
	case pseudoMethod:
		return v.method, v.method != ""
	case pseudoPath:
		if v.rawQuery == "" {
			return v.path, true
		}
		return v.path + "?" + v.rawQuery, true
	case pseudoScheme:
		return v.scheme, v.scheme != ""
	}
	vals := v.header[h.key]
	if len(vals) == 0 && h.key != h.name {
		vals = v.header[h.name] // a Header built by hand, not by net/http
	}
	switch len(vals) {
	case 0:
		return "", false
	case 1:
		return vals[0], true
	}
	// Repeated headers are matched as one comma-joined value, as Envoy does.
	return strings.Join(vals, ","), true
}

func (h *headerMatcher) test(val string) bool {
	switch h.kind {
	case headerPresent:
		return true
	case headerExact:
		return val == h.value
	case headerPrefix:
		return strings.HasPrefix(val, h.value)
	case headerSuffix:
		return strings.HasSuffix(val, h.value)
	case headerRegex:
		return h.regex != nil && h.regex.MatchString(val)
	case headerRange:
		n, ok := parseInt(val)
		return ok && n >= h.start && n < h.end
	}
	return false
}

// parseInt is a strict base-10 int64 parse that does not allocate on failure.
func parseInt(s string) (int64, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

func (q *queryMatcher) matches(rawQuery string) bool {
	val, ok := queryValue(rawQuery, q.name)
	if !ok {
		return false
	}
	return q.exact == nil || val == *q.exact
}

// queryValue finds the first value of a query parameter without building a
// map; "?flag" is present with an empty value.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if u, err := url.QueryUnescape(k); err != nil || u != name {
				continue
			}
		}
		if strings.ContainsAny(val, "%+") {
			if u, err := url.QueryUnescape(val); err == nil {
				val = u
			}
		}
		return val, true
	}
	return "", false
}

// stripPort is the Host as hostname matching sees it: without the port.
func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		port := host[i+1:]
		digits := true
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				digits = false
				break
			}
		}
		// A bare IPv6 address has colons but no brackets: leave it whole.
		if digits && (strings.IndexByte(host[:i], ':') < 0 || strings.HasPrefix(host, "[")) {
			host = host[:i]
		}
	}
	return host
}

// explain evaluates every criterion, recording each, and reports whether all held.
func (m *matcher) explain(v *view) ([]Check, bool) {
	var checks []Check
	all := true
	add := func(criterion, value string, ok bool) {
		checks = append(checks, Check{Criterion: criterion, Value: value, Matched: ok})
		all = all && ok
	}
	if m.port != 0 {
		add(fmt.Sprintf("port %d", m.port), strconv.Itoa(v.port), portOK(m.port, v.port))
	}
	if m.hostExact != "" {
		add("hostname "+m.hostExact, strings.ToLower(v.host), equalFoldASCII(v.host, m.hostExact))
	}
	if m.hostSuffix != "" {
		add("hostname suffix "+m.hostSuffix, strings.ToLower(v.host), suffixMatch(v.host, m.hostSuffix))
	}
	if m.method != "" {
		add("method "+m.method, v.method, v.method == m.method)
	}
	if m.scheme != "" {
		add("scheme "+m.scheme, v.scheme, strings.EqualFold(v.scheme, m.scheme))
	}
	if m.prefix != "" {
		add("prefix "+m.prefix, v.path, strings.HasPrefix(v.path, m.prefix))
	}
	if m.pathExact != "" {
		add("path "+m.pathExact, v.path, v.path == m.pathExact)
	}
	if m.pathRegex != nil {
		add("path regex "+m.pathRegex.Source, v.path, m.pathRegex.MatchString(v.path))
	}
	switch {
	case m.grpcPath != "":
		add("grpc method "+m.grpcPath[1:], v.path, m.grpcOK(v.path))
	case m.grpcPrefix != "":
		add("grpc service "+strings.Trim(m.grpcPrefix, "/"), v.path, m.grpcOK(v.path))
	case m.grpcMethod != "":
		add("grpc method "+m.grpcMethod[1:], v.path, m.grpcOK(v.path))
	}
	for i := range m.headers {
		h := &m.headers[i]
		val, ok := h.lookup(v)
		shown := "absent"
		if ok {
			shown = strconv.Quote(val)
		}
		add(h.describe(), shown, h.matches(v))
	}
	for i := range m.query {
		q := &m.query[i]
		val, ok := queryValue(v.rawQuery, q.name)
		shown := "absent"
		if ok {
			shown = strconv.Quote(val)
		}
		crit := "query " + q.name + " present"
		if q.exact != nil {
			crit = "query " + q.name + " = " + strconv.Quote(*q.exact)
		}
		add(crit, shown, q.matches(v.rawQuery))
	}
	if checks == nil {
		checks = []Check{{Criterion: "no criteria", Matched: true}}
	}
	return checks, all
}

func (h *headerMatcher) describe() string {
	not := ""
	if h.invert {
		not = "not "
	}
	switch h.kind {
	case headerPresent:
		if h.invert {
			return "header " + h.name + " absent"
		}
		return "header " + h.name + " present"
	case headerExact:
		return "header " + h.name + " " + not + "exact " + strconv.Quote(h.value)
	case headerPrefix:
		return "header " + h.name + " " + not + "prefix " + strconv.Quote(h.value)
	case headerSuffix:
		return "header " + h.name + " " + not + "suffix " + strconv.Quote(h.value)
	case headerRegex:
		src := ""
		if h.regex != nil {
			src = h.regex.Source
		}
		return "header " + h.name + " " + not + "regex " + strconv.Quote(src)
	case headerRange:
		return fmt.Sprintf("header %s %sin range [%d,%d)", h.name, not, h.start, h.end)
	}
	return "header " + h.name + " unknown match type"
}
