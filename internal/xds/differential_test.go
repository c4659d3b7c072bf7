package xds

import (
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/router"
)

// outcome is what one request gets: the gateway route and router route
// that served it, the status, and the forwarded host and path.
type outcome struct {
	gatewayRoute, route string
	status              int
	host, path          string
}

// envoyDecide evaluates a route configuration the way Envoy does, for the
// parts of the API the translation uses: virtual host by domain (exact,
// then longest "*suffix", then "*"), first matching route, regex and host
// rewrites.
func envoyDecide(t *testing.T, rc *route.RouteConfiguration, r *router.Request) outcome {
	host := strings.ToLower(r.Host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	var vh *route.VirtualHost
	best := -1
	for _, v := range rc.VirtualHosts {
		for _, d := range v.Domains {
			switch {
			case d == host:
				vh, best = v, 1<<30
			case d == "*" && best < 0:
				vh, best = v, 0
			case strings.HasPrefix(d, "*") && len(d) > 1 && len(host) > len(d)-1 && strings.HasSuffix(host, d[1:]) && len(d) > best:
				vh, best = v, len(d)
			}
		}
	}
	if vh == nil {
		return outcome{status: 404}
	}
	for _, rt := range vh.Routes {
		if !envoyMatches(t, rt.Match, r) {
			continue
		}
		gr, rr, _ := strings.Cut(rt.Name, " > ")
		o := outcome{gatewayRoute: gr, route: rr}
		if d := rt.GetDirectResponse(); d != nil {
			o.status = int(d.Status)
			return o
		}
		a := rt.GetRoute()
		o.host, o.path = r.Host, r.Path
		if rw := a.GetRegexRewrite(); rw != nil {
			o.path = regexp.MustCompile(rw.Pattern.Regex).ReplaceAllLiteralString(r.Path, rw.Substitution)
		}
		if h := a.GetHostRewriteLiteral(); h != "" {
			o.host = h
		}
		return o
	}
	return outcome{status: 404}
}

func envoyMatches(t *testing.T, m *route.RouteMatch, r *router.Request) bool {
	switch {
	case m.GetPath() != "":
		if r.Path != m.GetPath() {
			return false
		}
	case m.GetSafeRegex() != nil:
		if !regexp.MustCompile(`^(?:` + m.GetSafeRegex().Regex + `)$`).MatchString(r.Path) {
			return false
		}
	default:
		if !strings.HasPrefix(r.Path, m.GetPrefix()) {
			return false
		}
	}
	for _, h := range m.Headers {
		var vals []string
		switch h.Name {
		case ":method":
			vals = []string{r.Method}
		case ":scheme":
			vals = []string{r.Scheme}
		case ":authority":
			vals = []string{r.Host}
		default:
			vals = r.Header.Values(h.Name)
		}
		if len(vals) == 0 {
			if !(h.InvertMatch && h.GetPresentMatch()) {
				return false
			}
			continue
		}
		v := strings.Join(vals, ",")
		var ok bool
		switch {
		case h.GetPresentMatch():
			ok = true
		case h.GetRangeMatch() != nil:
			n, err := strconv.ParseInt(v, 10, 64)
			ok = err == nil && n >= h.GetRangeMatch().Start && n < h.GetRangeMatch().End
		case h.GetStringMatch() != nil:
			s := h.GetStringMatch()
			switch {
			case s.GetExact() != "":
				ok = v == s.GetExact()
			case s.GetPrefix() != "":
				ok = strings.HasPrefix(v, s.GetPrefix())
			case s.GetSuffix() != "":
				ok = strings.HasSuffix(v, s.GetSuffix())
			case s.GetSafeRegex() != nil:
				ok = regexp.MustCompile(`^(?:` + s.GetSafeRegex().Regex + `)$`).MatchString(v)
			default:
				t.Fatalf("unhandled string matcher %v", s)
			}
		default:
			t.Fatalf("unhandled header matcher %v", h)
		}
		if ok == h.InvertMatch {
			return false
		}
	}
	if len(m.QueryParameters) > 0 {
		q, _ := parseQuery(r.RawQuery)
		for _, qp := range m.QueryParameters {
			v, present := q[qp.Name]
			switch {
			case !present:
				return false
			case qp.GetStringMatch() != nil && v != qp.GetStringMatch().GetExact():
				return false
			}
		}
	}
	return true
}

func parseQuery(raw string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out, nil
}

func goDecide(tb *router.Table, r *router.Request) outcome {
	d := tb.Decide(r)
	o := outcome{status: d.Status}
	if d.GatewayRoute != nil {
		o.gatewayRoute = d.GatewayRoute.Name
	}
	if d.Route != nil {
		o.route = d.Route.Name
	}
	if d.Status == 0 {
		o.host, o.path = d.Host, d.Path
	}
	return o
}

// requests builds requests from the literals of every match in cfg.
func requests(cfg *ir.Config, l *ir.Listener) []*router.Request {
	paths := map[string]bool{"/": true, "/zzz": true}
	hosts := map[string]bool{"other.invalid": true}
	headers := []http.Header{{}}
	methods := map[string]bool{"GET": true}
	add := func(m *ir.Match) {
		for _, p := range []string{m.Prefix, m.PathExact} {
			if p != "" {
				paths[p] = true
				paths[strings.TrimSuffix(p, "/")+"/x"] = true
			}
		}
		if m.PathRegex != nil {
			if re, err := regexp.Compile(`^(?:` + m.PathRegex.Source + `)$`); err == nil {
				lit, _ := re.LiteralPrefix()
				paths[lit+"1"] = true
			}
		}
		if m.ServiceName != "" {
			paths["/"+m.ServiceName+"/"+cmpOr(m.MethodName, "M")] = true
		}
		if m.Method != "" {
			methods[m.Method] = true
		}
		for _, h := range m.Headers {
			v := h.Value
			if h.Type == ir.HeaderRange {
				v = strconv.FormatInt(h.Start, 10)
			}
			headers = append(headers, http.Header{http.CanonicalHeaderKey(h.Name): {cmpOr(v, "1")}})
		}
	}
	for _, gr := range l.Routes {
		add(&gr.Match)
		if svc := cfg.Services[gr.Target.Service]; svc != nil && cfg.Routers[svc.Router] != nil {
			for _, rt := range cfg.Routers[svc.Router].Routes {
				add(&rt.Match)
				// Paths that reach a router route through the gateway route's prefix.
				if gr.Match.Prefix != "" && rt.Match.Prefix != "" {
					paths[gr.Match.Prefix+strings.TrimPrefix(rt.Match.Prefix, "/")] = true
					paths[strings.TrimSuffix(gr.Match.Prefix, "/")+"/"+strings.TrimPrefix(rt.Match.Prefix, "/")] = true
				}
			}
		}
	}
	for h := range l.Hosts {
		hosts[h] = true
	}
	for _, s := range l.Suffixes {
		hosts["x"+s.Suffix] = true
	}
	var out []*router.Request
	for _, h := range sortedKeys(hosts) {
		for _, p := range sortedKeys(paths) {
			for _, m := range sortedKeys(methods) {
				for _, hd := range headers {
					out = append(out, &router.Request{Port: l.Port, Method: m, Host: h, Path: p, Scheme: "http", Header: hd})
				}
			}
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestGatewayAgreesWithGoRouter checks, for every golden case, that the
// Envoy route configurations decide like the Go data plane's router on
// requests built from the cases' own match literals.
func TestGatewayAgreesWithGoRouter(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, in := range ins {
		cfg, _ := compileCase(t, in)
		for _, g := range cfg.Gateways {
			res, err := Gateway(cfg, g.Name)
			if err != nil {
				continue // AWS-only certificates
			}
			tb, err := router.New(cfg, g.Name)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range g.Listeners {
				rc := res.Routes[i]
				for _, r := range requests(cfg, l) {
					want, got := goDecide(tb, r), envoyDecide(t, rc, r)
					if want != got {
						t.Errorf("%s gateway %s: %s %s%s %v:\n  Go router: %+v\n  Envoy:     %+v", in, g.Name, r.Method, r.Host, r.Path, r.Header, want, got)
					}
					checked++
				}
			}
		}
	}
	t.Logf("%d requests compared", checked)
	if checked == 0 {
		t.Fatal("nothing compared")
	}
}
