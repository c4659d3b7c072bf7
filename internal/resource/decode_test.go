package resource

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/api/v1beta2"
)

const seedDir = "../../../shared/examples/seed"

func seedFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(seedDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no seed manifests in %s", seedDir)
	}
	sort.Strings(files)
	return files
}

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestSeedManifests(t *testing.T) {
	s := NewSet()
	for _, f := range seedFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s.AddFile(f, data)
	}
	if len(s.Problems) > 0 {
		t.Fatalf("problems:\n%s", strings.Join(problemStrings(s.Problems), "\n"))
	}

	var keys []string
	for k := range s.Objects {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	want := []string{
		"GatewayRoute demo/api-example-gatewayroute",
		"GatewayRoute demo/backend-app-gatewayroute",
		"GatewayRoute demo/backend-app-v1-default-gatewayroute",
		"GatewayRoute demo/backend-app-v2-canary-gatewayroute",
		"GatewayRoute demo/dev-api-example-gatewayroute",
		"Mesh my-app-mesh",
		"Route demo/backend-app-default-route",
		"VirtualGateway demo/appmesh-gateway-vg",
		"VirtualNode demo/backend-app-vn",
		"VirtualRouter demo/backend-app-vr",
		"VirtualService demo/backend-app.demo.svc.cluster.local",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("objects:\n got %q\nwant %q", keys, want)
	}

	wantSkipped := []string{
		seedDir + "/01-backend-service.yaml:2: skipped apps/v1 Deployment demo/backend-app (not an App Mesh kind)",
		seedDir + "/01-backend-service.yaml:23: skipped v1 Service demo/backend-app (not an App Mesh kind)",
		seedDir + "/03-virtualgateway-k8s.yaml:2: skipped apps/v1 Deployment demo/appmesh-gateway (not an App Mesh kind)",
		seedDir + "/03-virtualgateway-k8s.yaml:27: skipped v1 Service demo/appmesh-gateway (not an App Mesh kind)",
		seedDir + "/05-ingress-alb.yaml:2: skipped networking.k8s.io/v1 Ingress demo/appmesh-gateway-ingress (not an App Mesh kind)",
	}
	if !reflect.DeepEqual(s.Skipped, wantSkipped) {
		t.Errorf("skipped:\n got %q\nwant %q", s.Skipped, wantSkipped)
	}

	// 13-backend-router.yaml re-points the VirtualService at the router.
	vs := s.Objects[Key{v1beta2.KindVirtualService, "demo", "backend-app.demo.svc.cluster.local"}]
	if p := vs.Value.(*v1beta2.VirtualService).Spec.Provider; p.VirtualRouter == nil || p.VirtualNode != nil {
		t.Errorf("VirtualService provider = %+v, want the virtual router", p)
	}
	if !strings.HasSuffix(vs.Origin.File, "13-backend-router.yaml") || vs.Origin.Line != 14 {
		t.Errorf("VirtualService origin = %s:%d", vs.Origin.File, vs.Origin.Line)
	}

	canary := s.Objects[Key{v1beta2.KindGatewayRoute, "demo", "backend-app-v2-canary-gatewayroute"}].Value.(*v1beta2.GatewayRoute)
	if got := canary.Spec.HTTPRoute.Match.Headers[0].Match.Exact; got == nil || *got != "true" {
		t.Errorf("canary header exact = %v, want \"true\"", got)
	}

	gr := s.Objects[Key{v1beta2.KindGatewayRoute, "demo", "backend-app-gatewayroute"}]
	if gr.Origin.Line != 2 {
		t.Errorf("GatewayRoute line = %d, want 2", gr.Origin.Line)
	}
	for path, line := range map[string]int{"spec.httpRoute.match.prefix": 13, "spec.virtualGateway.name": 10, "metadata.namespace": 6, "apiVersion": 2} {
		if got := gr.Origin.Fields[path]; got != line {
			t.Errorf("Fields[%q] = %d, want %d", path, got, line)
		}
	}

	route := s.Objects[Key{v1beta2.KindRoute, "demo", "backend-app-default-route"}]
	if got := route.Origin.Fields["spec.httpRoute.action.weightedTargets[1].weight"]; got != 21 {
		t.Errorf("weightedTargets[1].weight line = %d, want 21", got)
	}
	if got := route.Origin.Fields["spec.httpRoute.action.weightedTargets[1]"]; got != 19 {
		t.Errorf("weightedTargets[1] line = %d, want 19", got)
	}
	if rt := route.Value.(*v1beta2.StandaloneRoute); rt.Spec.HTTPRoute.Action.WeightedTargets[1].Weight != 10 {
		t.Errorf("weight = %d", rt.Spec.HTTPRoute.Action.WeightedTargets[1].Weight)
	}

	mesh := s.Objects[Key{Kind: v1beta2.KindMesh, Name: "my-app-mesh"}].Value.(*v1beta2.Mesh)
	if mesh.Spec.EgressFilter == nil || mesh.Spec.EgressFilter.Type != "ALLOW_ALL" || mesh.APIVersion != v1beta2.GroupVersion {
		t.Errorf("mesh = %+v", mesh)
	}
}

const gatewayRouteHead = `apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata:
  name: gr
  namespace: demo
spec:
`

func TestAddFile(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		problems []string
		skipped  []string
		objects  []string // keys, sorted
		check    func(t *testing.T, s *Set)
	}{
		{
			name: "scalar where a string is meant becomes its text",
			input: gatewayRouteHead + `  httpRoute:
    match:
      headers:
        - name: X-Canary
          match:
            exact: true
        - name: X-Port
          match:
            exact: 0080
        - name: X-Ratio
          match:
            prefix: 1.50
    action:
      target:
        virtualService:
          virtualServiceRef:
            name: svc
`,
			objects: []string{"GatewayRoute demo/gr"},
			check: func(t *testing.T, s *Set) {
				h := s.Objects[Key{"GatewayRoute", "demo", "gr"}].Value.(*v1beta2.GatewayRoute).Spec.HTTPRoute.Match.Headers
				if *h[0].Match.Exact != "true" || *h[1].Match.Exact != "0080" || *h[2].Match.Prefix != "1.50" {
					t.Errorf("headers = %q %q %q", *h[0].Match.Exact, *h[1].Match.Exact, *h[2].Match.Prefix)
				}
			},
		},
		{
			name: "unknown field with suggestion",
			input: gatewayRouteHead + `  mesh: m
  http:
    match:
      prefix: /
`,
			problems: []string{`f.yaml:8: GatewayRoute demo/gr: spec.http: unknown field "http"; expected one of: awsName, grpcRoute, http2Route, httpRoute, mesh, meshRef, priority, virtualGateway, virtualGatewayRef (did you mean "httpRoute"?)`},
		},
		{
			name: "unknown field without suggestion",
			input: gatewayRouteHead + `  httpRoute:
    match:
      http: /
`,
			problems: []string{`f.yaml:9: GatewayRoute demo/gr: spec.httpRoute.match.http: unknown field "http"; expected one of: headers, hostname, method, path, port, prefix, queryParameters`},
		},
		{
			name: "unknown field differing in case",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn, namespace: demo}
spec:
  listeners:
    - portmapping: {port: 80, protocol: http}
`,
			problems: []string{`f.yaml:6: VirtualNode demo/vn: spec.listeners[0].portmapping: unknown field "portmapping"; expected one of: connectionPool, healthCheck, outlierDetection, portMapping, timeout, tls (did you mean "portMapping"?)`},
		},
		{
			name: "unknown top-level and metadata fields",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: m
  lables: {a: b}
specs: {}
`,
			problems: []string{
				`f.yaml:5: Mesh m: metadata.lables: unknown field "lables"; expected one of: annotations, creationTimestamp, deletionGracePeriodSeconds, deletionTimestamp, finalizers, generateName, generation, labels, managedFields, name, namespace, ownerReferences, resourceVersion, selfLink, uid (did you mean "labels"?)`,
				`f.yaml:6: Mesh m: specs: unknown field "specs"; expected one of: apiVersion, kind, metadata, spec, status (did you mean "spec"?)`,
			},
		},
		{
			name: "wrong types",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata:
  name: vn
spec:
  listeners:
    - portMapping:
        port: abc
        protocol: http
    - portMapping:
        port: "8080"
        protocol: [http]
  backends:
    virtualService: {}
  serviceDiscovery: dns
  logging:
    accessLog:
      file:
        path: /dev/stdout
        format:
          json:
            - key: a
              value: {b: c}
  backendDefaults:
    clientPolicy:
      tls:
        enforce: maybe
        ports: [1, 99999999999999999999]
        validation: {trust: {}}
`,
			problems: []string{
				`f.yaml:8: VirtualNode default/vn: spec.listeners[0].portMapping.port: expected an integer, got "abc"`,
				`f.yaml:11: VirtualNode default/vn: spec.listeners[1].portMapping.port: expected an integer, got the quoted string "8080"`,
				`f.yaml:12: VirtualNode default/vn: spec.listeners[1].portMapping.protocol: expected a string, got a list`,
				`f.yaml:13: VirtualNode default/vn: spec.backends: expected a list, got a mapping`,
				`f.yaml:15: VirtualNode default/vn: spec.serviceDiscovery: expected a mapping, got "dns"`,
				`f.yaml:23: VirtualNode default/vn: spec.logging.accessLog.file.format.json[0].value: expected a string, got a mapping`,
				`f.yaml:27: VirtualNode default/vn: spec.backendDefaults.clientPolicy.tls.enforce: expected true or false, got "maybe"`,
				`f.yaml:28: VirtualNode default/vn: spec.backendDefaults.clientPolicy.tls.ports[1]: expected an integer, got "99999999999999999999"`,
			},
		},
		{
			name: "later document replaces earlier",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: svc, namespace: demo}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: vn}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: svc, namespace: demo}
spec:
  provider: {virtualRouter: {virtualRouterRef: {name: vr}}}
`,
			objects: []string{"VirtualService demo/svc"},
			check: func(t *testing.T, s *Set) {
				o := s.Objects[Key{"VirtualService", "demo", "svc"}]
				if o.Origin.Line != 7 || o.Value.(*v1beta2.VirtualService).Spec.Provider.VirtualRouter == nil {
					t.Errorf("got line %d, %+v", o.Origin.Line, o.Value)
				}
			},
		},
		{
			name: "a document that fails keeps the earlier one",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: svc, namespace: demo}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: vn}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: svc, namespace: demo}
spec:
  provider: {virtualRouter: {virtualRouterRef: {nmae: vr}}}
`,
			problems: []string{`f.yaml:11: VirtualService demo/svc: spec.provider.virtualRouter.virtualRouterRef.nmae: unknown field "nmae"; expected one of: name, namespace (did you mean "name"?)`},
			objects:  []string{"VirtualService demo/svc"},
			check: func(t *testing.T, s *Set) {
				o := s.Objects[Key{"VirtualService", "demo", "svc"}]
				if o.Origin.Line != 1 || o.Value.(*v1beta2.VirtualService).Spec.Provider.VirtualNode == nil {
					t.Errorf("got line %d, %+v", o.Origin.Line, o.Value)
				}
			},
		},
		{
			name: "List items are documents",
			input: `apiVersion: v1
kind: List
items:
  - apiVersion: appmesh.k8s.aws/v1beta2
    kind: Mesh
    metadata: {name: m, namespace: ignored}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: d}
  - apiVersion: v1
    kind: List
    items:
      - apiVersion: appmesh.k8s.aws/v1beta2
        kind: VirtualRouter
        metadata: {name: vr}
        spec: {listeners: [{portMapping: {port: 80, protocol: http}}]}
`,
			objects: []string{"Mesh m", "VirtualRouter default/vr"},
			skipped: []string{"f.yaml:7: skipped apps/v1 Deployment d (not an App Mesh kind)"},
			check: func(t *testing.T, s *Set) {
				o := s.Objects[Key{Kind: "Mesh", Name: "m"}]
				if o.Origin.Line != 4 || o.Value.(*v1beta2.Mesh).Namespace != "" {
					t.Errorf("mesh line %d namespace %q", o.Origin.Line, o.Value.(*v1beta2.Mesh).Namespace)
				}
				vr := s.Objects[Key{"VirtualRouter", "default", "vr"}]
				if vr.Origin.Line != 13 || vr.Origin.Fields["spec.listeners[0].portMapping.port"] != 16 || vr.Value.(*v1beta2.VirtualRouter).Namespace != "default" {
					t.Errorf("router %+v", vr.Origin)
				}
			},
		},
		{
			name: "Namespace labels",
			input: `apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    mesh: my-app-mesh
    tier: 1
    appmesh.k8s.aws/sidecarInjectorWebhook: enabled
spec:
  finalizers: [kubernetes]
status:
  phase: Active
`,
			check: func(t *testing.T, s *Set) {
				want := Namespace{Name: "demo", Labels: map[string]string{"mesh": "my-app-mesh", "tier": "1", "appmesh.k8s.aws/sidecarInjectorWebhook": "enabled"}}
				if got := s.Namespaces["demo"]; !reflect.DeepEqual(got, want) {
					t.Errorf("namespace = %+v", got)
				}
			},
		},
		{
			name: "Namespace with bad labels",
			input: `apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels: [a]
`,
			problems: []string{`f.yaml:5: Namespace demo: metadata.labels: expected a mapping, got a list`},
		},
		{
			name: "skipped kinds",
			input: `apiVersion: apps/v1
kind: Deployment
metadata: {name: backend-app, namespace: demo}
spec: {anything: goes}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: BackendGroup
metadata: {name: bg, namespace: demo}
---
apiVersion: appmesh.k8s.aws/v1beta1
kind: VirtualNode
metadata: {name: vn, namespace: demo}
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [a.yaml]
`,
			skipped: []string{
				"f.yaml:1: skipped apps/v1 Deployment demo/backend-app (not an App Mesh kind)",
				"f.yaml:6: skipped appmesh.k8s.aws/v1beta2 BackendGroup demo/bg (BackendGroup is not supported)",
				"f.yaml:10: skipped appmesh.k8s.aws/v1beta1 VirtualNode demo/vn (appmesh.k8s.aws/v1beta1 is not supported; use v1beta2)",
				"f.yaml:14: skipped kustomize.config.k8s.io/v1beta1 Kustomization (unnamed) (not an App Mesh kind)",
			},
		},
		{
			name: "kind typo",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: Virtualnode
metadata: {name: vn}
`,
			problems: []string{`f.yaml:1: kind: unknown App Mesh kind "Virtualnode" (did you mean "VirtualNode"?)`},
		},
		{
			name: "missing apiVersion, kind, name",
			input: `metadata: {name: x}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {namespace: demo}
spec: {}
---
apiVersion: v1
kind: Namespace
---
apiVersion: [v1]
kind: Namespace
`,
			problems: []string{
				"f.yaml:1: missing apiVersion",
				"f.yaml:1: missing kind",
				"f.yaml:3: missing metadata.name in VirtualGateway",
				"f.yaml:8: missing metadata.name in Namespace",
				`f.yaml:11: apiVersion: expected a string, got a list`,
			},
		},
		{
			name: "empty and comment-only documents",
			input: `# just a comment
---
---
# another
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
---
`,
			objects: []string{"Mesh m"},
		},
		{
			name:     "a document that is not an object",
			input:    "- a\n- b\n",
			problems: []string{"f.yaml:1: expected a Kubernetes object (a mapping), got a list"},
		},
		{
			name: "JSON",
			input: `{
	"apiVersion": "appmesh.k8s.aws/v1beta2",
	"kind": "VirtualNode",
	"metadata": {"name": "vn", "namespace": "demo"},
	"spec": {
		"listeners": [
			{"portMapping": {"port": 8080, "protocol": "http"}}
		],
		"serviceDiscovery": {"dns": {"hostname": "vn.demo.svc.cluster.local"}}
	}
}
`,
			objects: []string{"VirtualNode demo/vn"},
			check: func(t *testing.T, s *Set) {
				o := s.Objects[Key{"VirtualNode", "demo", "vn"}]
				if got := o.Origin.Fields["spec.listeners[0].portMapping.port"]; got != 7 {
					t.Errorf("port line = %d", got)
				}
				if o.Origin.Line != 2 {
					t.Errorf("line = %d", o.Origin.Line)
				}
				if p := o.Value.(*v1beta2.VirtualNode).Spec.Listeners[0].PortMapping.Port; p != 8080 {
					t.Errorf("port = %d", p)
				}
			},
		},
		{
			name: "syntax error",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: name: m2
`,
			objects:  []string{"Mesh m"},
			problems: []string{"f.yaml:7: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name:     "control character",
			input:    "apiVersion: v1\nkind: Namespace\nmetadata: {name: \x01}\n",
			problems: []string{"f.yaml:3: invalid YAML: control characters are not allowed"},
		},
		{
			name: "exported object with status and server metadata",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata:
  name: vr
  namespace: demo
  creationTimestamp: "2024-05-01T10:00:00Z"
  generation: not-a-number
  uid: 0f2e5c4e-0000-0000-0000-000000000000
  managedFields:
    - manager: kubectl
      fieldsType: FieldsV1
      fieldsV1: {"f:spec": {".": {}}}
      time: "2024-05-01T10:00:00Z"
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
status:
  virtualRouterARN: arn:aws:appmesh:eu-west-1:111122223333:mesh/m/virtualRouter/vr_demo
  routeARNs: {r1: arn}
  conditions:
    - type: VirtualRouterActive
      status: "True"
      lastTransitionTime: "2024-05-01T10:00:01Z"
      somethingNew: 1
  observedGeneration: many
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Route
metadata: {name: r, namespace: demo, creationTimestamp: null}
spec: {virtualRouter: {name: vr}}
status: {anything: 1}
`,
			objects: []string{"Route demo/r", "VirtualRouter demo/vr"},
			check: func(t *testing.T, s *Set) {
				vr := s.Objects[Key{"VirtualRouter", "demo", "vr"}].Value.(*v1beta2.VirtualRouter)
				if vr.CreationTimestamp.IsZero() || vr.Generation != 0 || len(vr.ManagedFields) != 1 {
					t.Errorf("metadata = %+v", vr.ObjectMeta)
				}
				if len(vr.Status.Conditions) != 1 || vr.Status.Conditions[0].LastTransitionTime == nil || vr.Status.RouteARNs["r1"] != "arn" || vr.Status.ObservedGeneration != nil {
					t.Errorf("status = %+v", vr.Status)
				}
			},
		},
		{
			name: "bad timestamp in metadata is dropped, in spec fields it is a problem",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: m
  creationTimestamp: yesterday
spec:
  namespaceSelector:
    matchLabels: {mesh: m}
    matchExpressions:
      - {key: a, operator: In, values: [x, 1]}
`,
			objects: []string{"Mesh m"},
			check: func(t *testing.T, s *Set) {
				sel := s.Objects[Key{Kind: "Mesh", Name: "m"}].Value.(*v1beta2.Mesh).Spec.NamespaceSelector
				if sel.MatchLabels["mesh"] != "m" || sel.MatchExpressions[0].Values[1] != "1" {
					t.Errorf("selector = %+v", sel)
				}
			},
		},
		{
			name: "duplicate keys",
			input: `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec:
  egressFilter: {type: ALLOW_ALL}
  egressFilter: {type: DROP_ALL}
`,
			problems: []string{`f.yaml:6: Mesh m: spec.egressFilter: duplicate key "egressFilter" (first at line 5)`},
		},
		{
			name: "anchors and merge keys",
			input: `apiVersion: v1
kind: List
items:
  - &vn
    apiVersion: appmesh.k8s.aws/v1beta2
    kind: VirtualNode
    metadata: {name: a, namespace: demo}
    spec:
      listeners: &listeners [{portMapping: {port: 80, protocol: http}}]
  - <<: *vn
    metadata: {name: b, namespace: demo}
    spec:
      listeners: *listeners
      serviceDiscovery: {dns: {hostname: b}}
`,
			objects: []string{"VirtualNode demo/a", "VirtualNode demo/b"},
			check: func(t *testing.T, s *Set) {
				b := s.Objects[Key{"VirtualNode", "demo", "b"}].Value.(*v1beta2.VirtualNode)
				if len(b.Spec.Listeners) != 1 || b.Spec.ServiceDiscovery == nil {
					t.Errorf("b = %+v", b.Spec)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet()
			s.AddFile("f.yaml", []byte(tc.input))
			if got := problemStrings(s.Problems); !reflect.DeepEqual(got, tc.problems) {
				t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.problems, "\n     "))
			}
			if !reflect.DeepEqual(s.Skipped, tc.skipped) {
				t.Errorf("skipped:\n got %q\nwant %q", s.Skipped, tc.skipped)
			}
			var keys []string
			for k := range s.Objects {
				keys = append(keys, k.String())
			}
			sort.Strings(keys)
			if !reflect.DeepEqual(keys, tc.objects) {
				t.Errorf("objects: got %q, want %q", keys, tc.objects)
			}
			if tc.check != nil && !t.Failed() {
				tc.check(t, s)
			}
		})
	}
}

func TestAddFileZeroSet(t *testing.T) {
	var s Set
	s.AddFile("f.yaml", []byte("apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m}\n"))
	if len(s.Objects) != 1 || len(s.Problems) != 0 {
		t.Fatalf("objects %v problems %v", s.Objects, s.Problems)
	}
}

func TestSuggest(t *testing.T) {
	allowed := []string{"grpcRoute", "http2Route", "httpRoute", "mesh", "meshRef", "priority"}
	for name, want := range map[string]string{
		"http":       "httpRoute",
		"HTTPRoute":  "httpRoute",
		"httpRoutes": "httpRoute",
		"priorty":    "priority",
		"mesh_ref":   "meshRef",
		"xyz":        "",
		"weight":     "",
		"mehs":       "mesh",
	} {
		if got := suggest(name, allowed, true); got != want {
			t.Errorf("suggest(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	s := NewSet()
	s.AddFile("f.yaml", []byte(`apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: m
  managedFields:
    - fieldsV1:
        a: &a [x, x, x, x, x, x, x, x, x, x]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
`))
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0].Message, "too large after expanding YAML aliases") || len(s.Objects) != 0 {
		t.Fatalf("problems %v, objects %v", problemStrings(s.Problems), s.Objects)
	}
}
