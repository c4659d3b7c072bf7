package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/echo"
)

// seedDir is the guide's manifests, which must work as written.
const seedDir = "../../../shared/examples/seed"

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEcho starts an echo backend on loopback and returns its address.
func startEcho(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: echo.Handler(name)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// runCLI runs meshgate with args and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	code := 0
	if err := cmd.Execute(); err != nil {
		var ee exitError
		if ok := asExit(err, &ee); ok {
			code = ee.code
		} else {
			errOut.WriteString(err.Error())
			code = 2
		}
	}
	return out.String(), errOut.String(), code
}

func asExit(err error, ee *exitError) bool {
	e, ok := err.(exitError)
	if ok {
		*ee = e
	}
	return ok
}

// gateway is a running `meshgate serve`.
type gateway struct {
	url   string // http://127.0.0.1:PORT of the VirtualGateway listener
	admin string // http://127.0.0.1:PORT of the admin endpoint
	done  chan error
}

// startServe runs `meshgate serve` with args until the test ends and waits
// until /ready answers 200.
func startServe(t *testing.T, listenerPort int, args ...string) *gateway {
	t.Helper()
	adminPort := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{
		url:   fmt.Sprintf("http://127.0.0.1:%d", listenerPort),
		admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		done:  make(chan error, 1),
	}
	cmd := newRootCommand()
	cmd.SetArgs(append([]string{"serve", "--listen-address", "127.0.0.1", "--admin-address", fmt.Sprintf("127.0.0.1:%d", adminPort), "--log-level", "warn"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	go func() { g.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-g.done:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		resp, err := http.Get(g.admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("gateway never became ready")
	return nil
}

// get sends a request through the gateway and decodes the echo reply.
func (g *gateway) get(t *testing.T, host, path string, header ...string) (int, echo.Reply, string) {
	t.Helper()
	req, err := http.NewRequest("GET", g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r echo.Reply
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("not an echo reply: %s", body)
		}
	}
	return resp.StatusCode, r, string(body)
}

// copySeed copies the guide's manifests into a temporary directory with the
// VirtualGateway listener moved to port, plus the objects the guide leaves
// undefined (so every route has a backend).
func copySeed(t *testing.T, port int) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(seedDir)
	if err != nil {
		t.Fatalf("the guide's manifests are missing: %v", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(seedDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "04-virtualgateway-appmesh.yaml" {
			data = bytes.Replace(data, []byte("port: 8080"), []byte(fmt.Sprintf("port: %d", port)), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "20-undefined-in-guide.yaml"), seedExtras)
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// seedExtras defines what the guide references but never defines.
const seedExtras = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: backend-app-v2-vn, namespace: demo}
spec:
  mesh: my-app-mesh
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: backend-app-v2.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: backend-app-v2.demo.svc.cluster.local, namespace: demo}
spec:
  mesh: my-app-mesh
  provider: {virtualNode: {virtualNodeRef: {name: backend-app-v2-vn}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: production-api-vn, namespace: demo}
spec:
  mesh: my-app-mesh
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: production-api.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: production-api.demo.svc.cluster.local, namespace: demo}
spec:
  mesh: my-app-mesh
  provider: {virtualNode: {virtualNodeRef: {name: production-api-vn}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: development-api-vn, namespace: demo}
spec:
  mesh: my-app-mesh
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: development-api.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: development-api.demo.svc.cluster.local, namespace: demo}
spec:
  mesh: my-app-mesh
  provider: {virtualNode: {virtualNodeRef: {name: development-api-vn}}}
`

// seedResolve starts one echo backend per node of the seed and returns the
// --resolve flags for them.
func seedResolve(t *testing.T) []string {
	var args []string
	for _, n := range []string{"backend-app", "backend-app-v2", "production-api", "development-api"} {
		args = append(args, "--resolve", fmt.Sprintf("%s.demo.svc.cluster.local=%s", n, startEcho(t, n+"-vn")))
	}
	return args
}

func TestSeedScenarios(t *testing.T) {
	port := freePort(t)
	dir := copySeed(t, port)
	g := startServe(t, port, append([]string{"-f", dir}, seedResolve(t)...)...)

	t.Run("path based, prefix stripped, host rewritten", func(t *testing.T) {
		// backend-app is behind the 90/10 router; retry until v1 answers.
		for i := 0; i < 200; i++ {
			code, r, body := g.get(t, "", "/backend/items?x=1")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if r.Backend != "backend-app-vn" {
				continue
			}
			if r.Path != "/items" || r.Query != "x=1" {
				t.Fatalf("forwarded %s?%s, want /items?x=1", r.Path, r.Query)
			}
			if !strings.HasPrefix(r.Host, "backend-app.demo.svc.cluster.local") {
				t.Fatalf("Host %q, want the virtual service name", r.Host)
			}
			return
		}
		t.Fatal("v1 never answered")
	})
	t.Run("host based", func(t *testing.T) {
		for host, want := range map[string]string{"api.example.com": "production-api-vn", "DEV-API.example.com:8080": "development-api-vn"} {
			code, r, body := g.get(t, host, "/v1/orders")
			if code != 200 || r.Backend != want || r.Path != "/v1/orders" {
				t.Errorf("%s: %d %s %s, want %s /v1/orders", host, code, r.Backend, body, want)
			}
		}
	})
	t.Run("header canary", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			code, r, body := g.get(t, "", "/backend/x", "X-Canary-User", "true")
			if code != 200 || r.Backend != "backend-app-v2-vn" || r.Path != "/x" {
				t.Fatalf("%d %s %s, want backend-app-v2-vn /x", code, r.Backend, body)
			}
		}
	})
	t.Run("weighted 90/10", func(t *testing.T) {
		const n = 2000
		v2 := 0
		for i := 0; i < n; i++ {
			code, r, body := g.get(t, "", "/backend/", "X-Canary-User", "false")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if r.Backend == "backend-app-v2-vn" {
				v2++
			}
		}
		// Binomial(2000, 0.1): mean 200, sd 13.4; 5 sd either side.
		if v2 < 133 || v2 > 267 {
			t.Fatalf("v2 got %d of %d requests, want about 200", v2, n)
		}
	})
	t.Run("no route is 404", func(t *testing.T) {
		code, _, _ := g.get(t, "", "/nothing")
		if code != 404 {
			t.Fatalf("status %d, want 404", code)
		}
	})
}

func TestCheckSeedAsWritten(t *testing.T) {
	out, errOut, code := runCLI(t, "check", "-f", seedDir)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the guide leaves services undefined)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"production-api.demo.svc.cluster.local", "development-api.demo.svc.cluster.local", "backend-app-v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not mention %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, seedDir+"/") {
			t.Errorf("problem line does not start with FILE:LINE: %q", line)
		}
	}
	if !strings.Contains(errOut, "skipped apps/v1 Deployment demo/backend-app") {
		t.Errorf("no note for the skipped Deployment:\n%s", errOut)
	}

	dir := copySeed(t, 8080)
	out, errOut, code = runCLI(t, "check", "-f", dir)
	if code != 0 {
		t.Fatalf("complete seed: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCheckExamples(t *testing.T) {
	out, errOut, code := runCLI(t, "check", "-f", "../../examples")
	if code != 0 {
		t.Fatalf("examples do not pass check: exit %d\n%s%s", code, out, errOut)
	}
}

func TestRouteCommand(t *testing.T) {
	dir := copySeed(t, 8080)
	out, errOut, code := runCLI(t, "route", "-f", dir, "-H", "X-Canary-User: true", "http://api.example.com/backend/items")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"demo/api-example-gatewayroute", "production-api.demo.svc.cluster.local", "demo/production-api-vn", "/backend/items"} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runCLI(t, "route", "-f", dir, "-o", "json", "http://example.com/backend/items")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	_, _, code = runCLI(t, "route", "-f", dir, "http://example.com/nothing")
	if code != 1 {
		t.Fatalf("no match: exit %d, want 1", code)
	}
}

const reloadGateway = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: ns}
spec:
  namespaceSelector: {}
  listeners: [{portMapping: {port: %d, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: a, namespace: ns}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  serviceDiscovery: {dns: {hostname: a.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: b, namespace: ns}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  serviceDiscovery: {dns: {hostname: b.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: a, namespace: ns}
spec: {provider: {virtualNode: {virtualNodeRef: {name: a}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: b, namespace: ns}
spec: {provider: {virtualNode: {virtualNodeRef: {name: b}}}}
`

const reloadRoute = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: r, namespace: ns}
spec:
  priority: %d
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: %s}}}}
`

// adminJSON fetches an admin endpoint as JSON.
func adminJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type configView struct {
	AppliedAt string `json:"appliedAt"`
	Config    struct {
		Statuses []struct {
			Kind, Name, Reason, Message string
			Active                      bool
		} `json:"statuses"`
	} `json:"config"`
	Problems []struct{ Message string } `json:"problems"`
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestReloadUnderLoadAndBrokenEdit(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gateway.yaml"), fmt.Sprintf(reloadGateway, port))
	writeFile(t, filepath.Join(dir, "route.yaml"), fmt.Sprintf(reloadRoute, 1, "a"))
	g := startServe(t, port, "-f", dir,
		"--resolve", "a.local="+startEcho(t, "a"), "--resolve", "b.local="+startEcho(t, "b"))

	var failures, total atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(g.url+"/x", "text/plain", strings.NewReader("payload"))
				total.Add(1)
				if err != nil {
					failures.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
					lastErr.Store(resp.Status)
				}
			}
		}()
	}
	backendIs := func(want string) func() bool {
		return func() bool {
			_, r, _ := g.get(t, "", "/y")
			return r.Backend == want
		}
	}
	for i := 0; i < 20; i++ {
		target := []string{"a", "b"}[i%2]
		writeFile(t, filepath.Join(dir, "route.yaml"), fmt.Sprintf(reloadRoute, i, target))
		waitFor(t, "route to "+target, backendIs(target))
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; last: %v", failures.Load(), total.Load(), lastErr.Load())
	}
	t.Logf("%d requests, 20 reloads, 0 failures", total.Load())

	// A broken edit keeps the last good version serving and says why.
	writeFile(t, filepath.Join(dir, "route.yaml"), fmt.Sprintf(reloadRoute, 2000, "a"))
	var cv configView
	waitFor(t, "the broken edit to be reported", func() bool {
		adminJSON(t, g.admin+"/config", &cv)
		return len(cv.Problems) > 0
	})
	if !strings.Contains(cv.Problems[0].Message, "1000") {
		t.Errorf("problem does not give the bound: %+v", cv.Problems)
	}
	found := false
	for _, st := range cv.Config.Statuses {
		if st.Kind == "GatewayRoute" && st.Name == "r" {
			found = true
			if !st.Active || !strings.Contains(st.Message, "last good") {
				t.Errorf("route status %+v, want active on its last good version", st)
			}
		}
	}
	if !found {
		t.Error("no status for the route")
	}
	if code, r, body := g.get(t, "", "/z"); code != 200 || r.Backend != "b" {
		t.Fatalf("after a broken edit: %d %s %s, want the last good route to b", code, r.Backend, body)
	}
	resp, err := http.Get(g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"meshgate_config_stale_objects 1", `meshgate_config_reloads_total{result="applied"}`, "meshgate_requests_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
