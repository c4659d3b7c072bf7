package xds

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/meshgate/meshgate/internal/ir"
)

// pathCond is one condition on the request path (without query). Regex
// sources match the whole path.
type pathCond struct {
	kind  string // prefix, exact or regex
	value string
}

// pathSpec is the conjunction of path conditions reduced to the single
// path specifier an Envoy route has; never marks an unsatisfiable one.
type pathSpec struct {
	pathCond
	never bool
}

// conds lists the path conditions of a match, gRPC service and method
// included (reference §2.2: a serviceName is a ":path" prefix "/<service>/").
func conds(m *ir.Match) []pathCond {
	var out []pathCond
	if m.Prefix != "" {
		out = append(out, pathCond{"prefix", m.Prefix})
	}
	if m.PathExact != "" {
		out = append(out, pathCond{"exact", m.PathExact})
	}
	if m.PathRegex != nil {
		out = append(out, pathCond{"regex", m.PathRegex.Source})
	}
	switch {
	case m.ServiceName != "" && m.MethodName != "":
		out = append(out, pathCond{"exact", "/" + m.ServiceName + "/" + m.MethodName})
	case m.ServiceName != "":
		out = append(out, pathCond{"prefix", "/" + m.ServiceName + "/"})
	case m.MethodName != "":
		out = append(out, pathCond{"regex", ".*" + regexp.QuoteMeta("/"+m.MethodName)})
	}
	return out
}

func (c pathCond) holds(path string) bool {
	switch c.kind {
	case "prefix":
		return strings.HasPrefix(path, c.value)
	case "exact":
		return path == c.value
	}
	re, err := ir.CompileRegexp(c.value)
	return err == nil && re.MatchString(path)
}

// conjoin reduces conditions to one Envoy path specifier. An empty spec
// (kind "") means prefix "/". It fails when two regexes, or a regex and a
// real prefix, must both hold: RE2 has no intersection.
func conjoin(cs []pathCond) (pathSpec, error) {
	var exact *pathCond
	var prefixes, regexes []pathCond
	for i := range cs {
		switch c := cs[i]; {
		case c.kind == "exact":
			if exact != nil && exact.value != c.value {
				return pathSpec{never: true}, nil
			}
			exact = &cs[i]
		case c.kind == "prefix" && (c.value == "" || c.value == "/"):
		case c.kind == "prefix":
			prefixes = append(prefixes, c)
		default:
			regexes = append(regexes, c)
		}
	}
	if exact != nil {
		for _, c := range cs {
			if !c.holds(exact.value) {
				return pathSpec{never: true}, nil
			}
		}
		return pathSpec{pathCond: *exact}, nil
	}
	var longest pathCond
	for _, p := range prefixes {
		switch {
		case strings.HasPrefix(p.value, longest.value):
			longest = p
		case strings.HasPrefix(longest.value, p.value):
		default:
			return pathSpec{never: true}, nil
		}
	}
	switch {
	case len(regexes) == 0:
		return pathSpec{pathCond: longest}, nil
	case len(regexes) == 1 && longest.kind == "":
		return pathSpec{pathCond: regexes[0]}, nil
	case len(regexes) == 1:
		// Every path the regex matches starts with its literal prefix: when
		// that already has the prefix the regex implies it, when neither
		// extends the other nothing matches both.
		re, err := regexp.Compile(`^(?:` + regexes[0].value + `)$`)
		if err != nil {
			return pathSpec{}, err
		}
		lit, _ := re.LiteralPrefix()
		switch {
		case strings.HasPrefix(lit, longest.value):
			return pathSpec{pathCond: regexes[0]}, nil
		case !strings.HasPrefix(longest.value, lit):
			return pathSpec{never: true}, nil
		}
	}
	return pathSpec{}, fmt.Errorf("cannot express %v as one Envoy path match", cs)
}

// forwarded describes the path a gateway route forwards as a function of
// the received (normalised) path, so that the target router's path
// conditions can be turned into conditions on the received path.
type forwarded struct {
	constant string // Rewrite.Path: every request forwards this path
	// fromPrefix/toPrefix: Rewrite.Prefix (reference §2.3): the received
	// path is fromPrefix + "/"* + rest and rest is forwarded after toPrefix.
	fromPrefix, toPrefix string
	rewrites             bool
}

func forwardOf(gr *ir.GatewayRoute) forwarded {
	switch {
	case gr.Rewrite.Path != "":
		return forwarded{constant: withSlash(gr.Rewrite.Path), rewrites: true}
	case gr.Rewrite.Prefix != "":
		return forwarded{fromPrefix: gr.Match.Prefix, toPrefix: withSlash(gr.Rewrite.Prefix), rewrites: true}
	}
	return forwarded{}
}

// onReceived turns a condition on the forwarded path into conditions on
// the received path; ok is false when no received path can satisfy it, and
// err says it cannot be expressed.
func (f forwarded) onReceived(c pathCond) (out []pathCond, ok bool, err error) {
	switch {
	case !f.rewrites:
		return []pathCond{c}, true, nil
	case f.constant != "":
		return nil, c.holds(f.constant), nil
	}
	// The forwarded path is toPrefix + rest, rest not starting with "/".
	from := regexp.QuoteMeta(f.fromPrefix) + "/*"
	switch c.kind {
	case "prefix":
		if strings.HasPrefix(f.toPrefix, c.value) {
			return nil, true, nil
		}
		x, found := strings.CutPrefix(c.value, f.toPrefix)
		if !found || strings.HasPrefix(x, "/") {
			return nil, false, nil
		}
		return []pathCond{{"regex", from + regexp.QuoteMeta(x) + ".*"}}, true, nil
	case "exact":
		x, found := strings.CutPrefix(c.value, f.toPrefix)
		if !found || strings.HasPrefix(x, "/") {
			return nil, false, nil
		}
		return []pathCond{{"regex", from + regexp.QuoteMeta(x)}}, true, nil
	}
	return nil, false, fmt.Errorf("a regex path match of the target router cannot be combined with the gateway route's prefix rewrite")
}

func withSlash(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}
