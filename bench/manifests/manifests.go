// Package manifests generates App Mesh manifest sets of any size for the
// benchmarks: one VirtualGateway with one HTTP listener and N GatewayRoutes
// of the shapes a large multi-tenant gateway carries (per-service prefixes,
// exact and suffix hostnames, header- and query-qualified prefixes, exact
// paths, a few regular expressions, and a catch-all), all leading through
// VirtualServices to VirtualNodes that share one DNS hostname, so a single
// --resolve points every route at the benchmark backend.
//
// The same sets feed the Go benchmarks (matcher, compile, reload) and the
// side-by-side proxy benchmark, so their numbers describe one workload.
package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshgate/meshgate/internal/resource"
)

// Namespace, Gateway and Mesh name the generated objects.
const (
	Namespace = "bench"
	Gateway   = Namespace + "/bench-gw"
	Mesh      = "bench-mesh"
)

// BackendHost is the serviceDiscovery.dns.hostname of every generated
// VirtualNode; `meshgate serve --resolve BackendHost=IP:PORT` targets them all.
const BackendHost = "backend.bench.svc.cluster.local"

// services is how many VirtualServices (each with its own VirtualNode) the
// generated routes spread over.
const services = 16

// Options says what to generate.
type Options struct {
	// Routes is the number of GatewayRoutes, the catch-all included; at
	// least 1. With 1 the set is the catch-all alone.
	Routes int
	// Port is the VirtualGateway listener port.
	Port int
	// TLS, when set, makes the listener terminate TLS.
	TLS *TLS
	// AccessLog, when set, is the file the gateway logs each request to,
	// in Envoy's default format.
	AccessLog string
}

// TLS is a listener with TLS mode STRICT and a certificate from files.
type TLS struct {
	CertificateChain, PrivateKey string
}

// File is one generated manifest file.
type File struct {
	Name string
	Data []byte
}

// Shape is the kind of match a generated route has.
type Shape int

// The shapes, in the order the generator cycles through them (route i has
// shape i % 20, folded as below).
const (
	ShapePrefix     Shape = iota // prefix /svcI/, any host
	ShapeHostExact               // hostname.exact tI.example.com, prefix /
	ShapeHostPrefix              // hostname.exact api.example.com, prefix /vI/
	ShapeHostSuffix              // hostname.suffix .sI.example.net, prefix /
	ShapeHeader                  // prefix /svcI/ and header x-tenant: I
	ShapeExactPath               // path.exact /exact/I, method GET
	ShapeQuery                   // prefix /qI/ and query parameter v=I
	ShapeRegex                   // path.regex /reI/[0-9]+/items
	ShapeCatchAll                // prefix /, the last route
)

// ShapeOf is the shape of generated route i (0 ≤ i < n-1; route n-1 is the
// catch-all).
func ShapeOf(i int) Shape {
	switch i % 20 {
	case 0, 1, 2, 3, 4, 5, 6, 7:
		return ShapePrefix
	case 8, 9:
		return ShapeHostExact
	case 10, 11:
		return ShapeHostPrefix
	case 12, 13:
		return ShapeHostSuffix
	case 14, 15:
		return ShapeHeader
	case 16:
		return ShapeExactPath
	case 17, 18:
		return ShapeQuery
	default:
		return ShapeRegex
	}
}

// RouteName is the name of generated route i.
func RouteName(i int) string { return fmt.Sprintf("gr-%05d", i) }

// CatchAll is the name of the catch-all route, always generated last.
const CatchAll = "gr-catch-all"

// Request is an HTTP request that generated route Name serves.
type Request struct {
	Name   string // the GatewayRoute expected to serve it
	Method string
	Host   string
	Path   string // with the query string, if any
	Header map[string]string
}

// RequestFor returns a request that route i matches and that no route
// ranking before it does.
func RequestFor(i int) Request {
	r := Request{Name: RouteName(i), Method: "GET", Host: "gw.example.org"}
	switch ShapeOf(i) {
	case ShapePrefix:
		r.Path = fmt.Sprintf("/svc%d/items/42", i)
	case ShapeHostExact:
		r.Host, r.Path = fmt.Sprintf("t%d.example.com", i), "/items/42"
	case ShapeHostPrefix:
		r.Host, r.Path = "api.example.com", fmt.Sprintf("/v%d/items/42", i)
	case ShapeHostSuffix:
		r.Host, r.Path = fmt.Sprintf("www.s%d.example.net", i), "/items/42"
	case ShapeHeader:
		r.Path, r.Header = fmt.Sprintf("/svc%d/items/42", i), map[string]string{"X-Tenant": fmt.Sprint(i)}
	case ShapeExactPath:
		r.Path = fmt.Sprintf("/exact/%d", i)
	case ShapeQuery:
		r.Path = fmt.Sprintf("/q%d/items?v=%d", i, i)
	case ShapeRegex:
		r.Path = fmt.Sprintf("/re%d/42/items", i)
	}
	return r
}

// Deepest returns the largest route index below n-1 with the given shape,
// or -1: the route a "deep in the table" request targets.
func Deepest(n int, s Shape) int {
	for i := n - 2; i >= 0; i-- {
		if ShapeOf(i) == s {
			return i
		}
	}
	return -1
}

// WorstCase is a request that only the catch-all serves: a host no exact or
// suffix hostname names and a path no other route's prefix, exact path or
// regex accepts, so every candidate that can be tried is tried first.
func WorstCase() Request {
	return Request{Name: CatchAll, Method: "GET", Host: "unknown.example.org", Path: "/nothing/here/42"}
}

// Generate returns the manifest files of a set with o.Routes GatewayRoutes.
func Generate(o Options) []File {
	if o.Routes < 1 {
		o.Routes = 1
	}
	var files []File
	files = append(files, File{"00-mesh.yaml", []byte(meshYAML(o))})
	files = append(files, File{"01-services.yaml", []byte(servicesYAML())})
	// Routes go in files of at most 1,000, as a repository of many teams'
	// manifests would hold them.
	const perFile = 1000
	for start := 0; start < o.Routes-1; start += perFile {
		var b strings.Builder
		for i := start; i < min(start+perFile, o.Routes-1); i++ {
			writeRoute(&b, i)
		}
		files = append(files, File{fmt.Sprintf("10-routes-%05d.yaml", start), []byte(b.String())})
	}
	var b strings.Builder
	doc(&b, "GatewayRoute", CatchAll, `  httpRoute:
    match:
      prefix: /
    action:
      target:
        virtualService:
          virtualServiceRef:
            name: vs-default
`)
	files = append(files, File{"19-catch-all.yaml", []byte(b.String())})
	return files
}

// ReloadFile is the file the reload benchmark rewrites, generation gen of it.
// It holds a probe route whose prefix /reload-GEN/ exists only in that
// generation, so a 200 on it proves the generation is served, and the route
// /hot/ the load runs against, whose target alternates between two
// VirtualServices (two VirtualNodes, the same backend) so every reload also
// moves live traffic to another upstream.
func ReloadFile(gen int) File {
	var b strings.Builder
	doc(&b, "GatewayRoute", "reload-probe", fmt.Sprintf(`  httpRoute:
    match:
      prefix: /reload-%d/
    action:
      target:
        virtualService:
          virtualServiceRef:
            name: vs-hot-a
`, gen))
	target := "vs-hot-a"
	if gen%2 == 1 {
		target = "vs-hot-b"
	}
	doc(&b, "GatewayRoute", "hot", fmt.Sprintf(`  httpRoute:
    match:
      prefix: /hot/
    action:
      target:
        virtualService:
          virtualServiceRef:
            name: %s
`, target))
	return File{"20-reload.yaml", []byte(b.String())}
}

// ProbePath is a path only generation gen of ReloadFile serves.
func ProbePath(gen int) string { return fmt.Sprintf("/reload-%d/probe", gen) }

// HotPath is the path the reload benchmark loads.
const HotPath = "/hot/items/42"

// WriteDir writes files into dir, each by write-then-rename so that a
// watching gateway never reads half a file.
func WriteDir(dir string, files ...File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		// A leading dot keeps the temporary file out of the watched set.
		tmp := filepath.Join(dir, "."+f.Name+".tmp")
		if err := os.WriteFile(tmp, f.Data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.Name)); err != nil {
			return err
		}
	}
	return nil
}

func doc(b *strings.Builder, kind, name, spec string) {
	fmt.Fprintf(b, "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: %s\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s", kind, name, Namespace, spec)
}

func meshYAML(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: %[1]s
spec:
  namespaceSelector:
    matchLabels:
      mesh: %[1]s
---
apiVersion: v1
kind: Namespace
metadata:
  name: %[2]s
  labels:
    mesh: %[1]s
    gateway: bench-gw
`, Mesh, Namespace)
	doc(&b, "VirtualGateway", "bench-gw", fmt.Sprintf(`  namespaceSelector:
    matchLabels:
      gateway: bench-gw
  podSelector:
    matchLabels:
      app: bench-gw
%s  listeners:
    - portMapping:
        port: %d
        protocol: http
%s`, accessLogYAML(o.AccessLog), o.Port, tlsYAML(o.TLS)))
	return b.String()
}

func accessLogYAML(path string) string {
	if path == "" {
		return ""
	}
	return fmt.Sprintf(`  logging:
    accessLog:
      file:
        path: %s
`, path)
}

func tlsYAML(t *TLS) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf(`      tls:
        mode: STRICT
        certificate:
          file:
            certificateChain: %s
            privateKey: %s
`, t.CertificateChain, t.PrivateKey)
}

func servicesYAML() string {
	var b strings.Builder
	names := []string{"default", "hot-a", "hot-b"}
	for k := 0; k < services; k++ {
		names = append(names, fmt.Sprint(k))
	}
	for _, n := range names {
		doc(&b, "VirtualNode", "vn-"+n, fmt.Sprintf(`  podSelector:
    matchLabels:
      app: backend-%s
  listeners:
    - portMapping:
        port: 8080
        protocol: http
  serviceDiscovery:
    dns:
      hostname: %s
`, n, BackendHost))
		doc(&b, "VirtualService", "vs-"+n, fmt.Sprintf(`  awsName: vs-%s.%s.svc.cluster.local
  provider:
    virtualNode:
      virtualNodeRef:
        name: vn-%s
`, n, Namespace, n))
	}
	return b.String()
}

func writeRoute(b *strings.Builder, i int) {
	var match string
	switch ShapeOf(i) {
	case ShapePrefix:
		match = fmt.Sprintf("      prefix: /svc%d/\n", i)
	case ShapeHostExact:
		match = fmt.Sprintf("      hostname:\n        exact: t%d.example.com\n      prefix: /\n", i)
	case ShapeHostPrefix:
		match = fmt.Sprintf("      hostname:\n        exact: api.example.com\n      prefix: /v%d/\n", i)
	case ShapeHostSuffix:
		match = fmt.Sprintf("      hostname:\n        suffix: .s%d.example.net\n      prefix: /\n", i)
	case ShapeHeader:
		match = fmt.Sprintf("      prefix: /svc%d/\n      headers:\n        - name: x-tenant\n          match:\n            exact: \"%d\"\n", i, i)
	case ShapeExactPath:
		match = fmt.Sprintf("      path:\n        exact: /exact/%d\n      method: GET\n", i)
	case ShapeQuery:
		match = fmt.Sprintf("      prefix: /q%d/\n      queryParameters:\n        - name: v\n          match:\n            exact: \"%d\"\n", i, i)
	case ShapeRegex:
		match = fmt.Sprintf("      path:\n        regex: /re%d/[0-9]+/items\n", i)
	}
	doc(b, "GatewayRoute", RouteName(i), fmt.Sprintf(`  httpRoute:
    match:
%s    action:
      target:
        virtualService:
          virtualServiceRef:
            name: vs-%d
`, match, i%services))
}

// Set decodes files into a resource set, as the file source would.
func Set(files []File) *resource.Set {
	s := resource.NewSet()
	for _, f := range files {
		s.AddFile(f.Name, f.Data)
	}
	return s
}
