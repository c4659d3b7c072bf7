package compile

import (
	"encoding/json"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

func mustRegexp(t *testing.T, expr string) *ir.Regexp {
	t.Helper()
	re, err := ir.CompileRegexp(expr)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

func TestPrecedes(t *testing.T) {
	exact := ir.Match{PathExact: "/a/b"}
	regex := ir.Match{PathRegex: mustRegexp(t, "/a/.*")}
	long := ir.Match{Prefix: "/a/b/c"}
	short := ir.Match{Prefix: "/a"}
	root := ir.Match{Prefix: "/"}
	hostOnly := ir.Match{Hostname: &ir.HostnameMatch{Exact: "a.example.com"}}
	withHeader := ir.Match{Prefix: "/a", Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderPresent}}}
	withTwo := ir.Match{Prefix: "/a", Method: "GET", Query: []ir.QueryMatch{{Name: "q"}}}
	withHost := ir.Match{Prefix: "/a", Hostname: &ir.HostnameMatch{Suffix: ".example.com"}}
	grpcService := ir.Match{ServiceName: "shop.Cart"}
	grpcMethod := ir.Match{ServiceName: "shop.Cart", MethodName: "Add"}
	scheme := ir.Match{Prefix: "/a", Scheme: "https"}

	tests := []struct {
		name string
		a, b RouteRank
		want bool
	}{
		{"lower priority first", RouteRank{0, &root, "z"}, RouteRank{1, &exact, "a"}, true},
		{"higher priority after", RouteRank{5, &exact, "a"}, RouteRank{4, &root, "z"}, false},
		{"priority 1000 before unset", RouteRank{1000, &root, "z"}, RouteRank{1001, &exact, "a"}, true},
		{"exact path before regex", RouteRank{1001, &exact, "z"}, RouteRank{1001, &regex, "a"}, true},
		{"regex before prefix", RouteRank{1001, &regex, "z"}, RouteRank{1001, &long, "a"}, true},
		{"prefix before no path", RouteRank{1001, &root, "z"}, RouteRank{1001, &hostOnly, "a"}, true},
		{"exact before prefix", RouteRank{7, &exact, "z"}, RouteRank{7, &long, "a"}, true},
		{"longer prefix first", RouteRank{1001, &long, "z"}, RouteRank{1001, &short, "a"}, true},
		{"shorter prefix after", RouteRank{1001, &root, "a"}, RouteRank{1001, &short, "z"}, false},
		{"prefix length before criteria", RouteRank{1001, &long, "z"}, RouteRank{1001, &withTwo, "a"}, true},
		{"more criteria first", RouteRank{1001, &withTwo, "z"}, RouteRank{1001, &withHeader, "a"}, true},
		{"a header is a criterion", RouteRank{1001, &withHeader, "z"}, RouteRank{1001, &short, "a"}, true},
		{"a hostname is a criterion", RouteRank{1001, &withHost, "z"}, RouteRank{1001, &short, "a"}, true},
		{"a scheme is a criterion", RouteRank{1001, &scheme, "z"}, RouteRank{1001, &short, "a"}, true},
		{"gRPC method is a criterion", RouteRank{1001, &grpcMethod, "z"}, RouteRank{1001, &grpcService, "a"}, true},
		{"tie broken by name", RouteRank{1001, &short, "demo/a"}, RouteRank{1001, &short, "demo/b"}, true},
		{"tie broken by name, reversed", RouteRank{1001, &short, "demo/b"}, RouteRank{1001, &short, "demo/a"}, false},
		{"not before itself", RouteRank{1001, &short, "demo/a"}, RouteRank{1001, &short, "demo/a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Precedes(tt.a, tt.b); got != tt.want {
				t.Errorf("Precedes(%+v, %+v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			// The order is strict: never both ways.
			if Precedes(tt.a, tt.b) && Precedes(tt.b, tt.a) {
				t.Errorf("Precedes holds both ways")
			}
		})
	}
}

func TestParseARN(t *testing.T) {
	tests := []struct {
		in              string
		ok              bool
		mesh, typ, name string
	}{
		{"arn:aws:appmesh:us-west-2:123456789012:mesh/m/virtualNode/n_ns", true, "m", "virtualNode", "n_ns"},
		{"arn:aws-cn:appmesh:cn-north-1:123456789012:mesh/m@210987654321/virtualService/s.ns", true, "m", "virtualService", "s.ns"},
		{"mesh/m/virtualRouter/r_ns", true, "m", "virtualRouter", "r_ns"},
		{"mesh/m/virtualRouter/r_ns/route/x", false, "", "", ""},
		{"arn:aws:s3:::mesh/m/virtualNode/n", false, "", "", ""},
		{"n_ns", false, "", "", ""},
		{"", false, "", "", ""},
	}
	for _, tt := range tests {
		a, ok := parseARN(tt.in)
		if ok != tt.ok {
			t.Errorf("parseARN(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if ok && (a.mesh != tt.mesh || a.typ != tt.typ || a.name != tt.name) {
			t.Errorf("parseARN(%q) = %+v, want mesh %q type %q name %q", tt.in, *a, tt.mesh, tt.typ, tt.name)
		}
	}
}

// TestMatchKeyEqualsJSON holds matchKey to its definition: two matches share
// a key exactly when their JSON is the same.
func TestMatchKeyEqualsJSON(t *testing.T) {
	empty, a := "", "a"
	matches := []ir.Match{
		{},
		{Prefix: "/"},
		{Prefix: "/a"},
		{PathExact: "/a"},
		{Prefix: "/", Port: 8080},
		{Hostname: &ir.HostnameMatch{}},
		{Hostname: &ir.HostnameMatch{Exact: "a"}},
		{Hostname: &ir.HostnameMatch{Suffix: "a"}},
		{PathRegex: mustRegexp(t, "/a")},
		{PathRegex: mustRegexp(t, "/b")},
		{Method: "GET"},
		{Scheme: "GET"},
		{Headers: []ir.HeaderMatch{}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderPresent}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderPresent, Invert: true}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderExact, Value: "1"}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderExact, Value: "1"}, {Name: "y", Type: ir.HeaderPresent}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderRegex, Regex: mustRegexp(t, "1")}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderRange, Start: 1, End: 2}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderRange, Start: 1, End: 3}}},
		{Headers: []ir.HeaderMatch{{Name: "x", Type: ir.HeaderRange, Start: -1, End: 2}}},
		{Query: []ir.QueryMatch{{Name: "q"}}},
		{Query: []ir.QueryMatch{{Name: "q", Exact: &empty}}},
		{Query: []ir.QueryMatch{{Name: "q", Exact: &a}}},
		{ServiceName: "s"},
		{ServiceName: "s", MethodName: "m"},
		{MethodName: "s"},
	}
	for i := range matches {
		for j := range matches {
			ji, _ := json.Marshal(&matches[i])
			jj, _ := json.Marshal(&matches[j])
			if got, want := matchKey("k", &matches[i]) == matchKey("k", &matches[j]), string(ji) == string(jj); got != want {
				t.Errorf("%s and %s: same key %v, same JSON %v", ji, jj, got, want)
			}
		}
	}
	if matchKey("http", &matches[1]) == matchKey("grpc", &matches[1]) {
		t.Error("the kind is not part of the key")
	}
}
