package router

import (
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

func TestNormalizePath(t *testing.T) {
	cases := map[string]string{
		"":                "/",
		"/":               "/",
		"*":               "/*",
		"a/b":             "/a/b",
		"/a/b":            "/a/b",
		"/a/b/":           "/a/b/",
		"//a///b//":       "/a/b/",
		"/a/./b":          "/a/b",
		"/a/.":            "/a/",
		"/a/b/..":         "/a/",
		"/a/b/../c":       "/a/c",
		"/..":             "/",
		"/../../a":        "/a",
		"/a/%2e/b":        "/a/b",
		"/a/%2E%2e/b":     "/b",
		"/a/.%2e/b":       "/b",
		"/a/%2e./b":       "/b",
		"/a/...":          "/a/...",
		"/a/.b/..c":       "/a/.b/..c",
		"/a%2Fb/c":        "/a%2Fb/c",
		"/./":             "/",
		"/a/b/../../../c": "/c",
		"/a//":            "/a/",
		"//":              "/",
	}
	for in, want := range cases {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecideAllocations keeps the hot path allocation-free for a clean path,
// a plain route and a prefix rewrite.
func TestDecideAllocations(t *testing.T) {
	tab := mustTable(t, mesh(listenerOf(8080,
		gr("plain", ir.Match{Prefix: "/plain", Headers: []ir.HeaderMatch{{Name: "x-a", Type: ir.HeaderPrefix, Value: "v"}}, Query: []ir.QueryMatch{{Name: "q"}}}),
		rewrite(gr("rewritten", ir.Match{Prefix: "/rw"}), ir.Rewrite{Prefix: "/", Hostname: "x.internal"}),
		to(gr("router", ir.Match{Prefix: "/"}), "demo/r"),
	)))
	h := http.Header{"X-A": {"v1"}}
	for path, max := range map[string]float64{"/plain/x": 0, "/rw/x": 0, "/api/x": 0} {
		r := &Request{Port: 8080, Method: "GET", Host: "Example.com:8080", Path: path, RawQuery: "q=1", Header: h}
		if d := tab.Decide(r); d.Status != 0 {
			t.Fatalf("%s: %+v", path, d)
		}
		if n := testing.AllocsPerRun(100, func() { tab.Decide(r) }); n > max {
			t.Errorf("%s: %v allocations per Decide, want <= %v", path, n, max)
		}
	}
}
