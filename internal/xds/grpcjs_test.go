package xds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// grpcJS installs testdata/grpcjs/package.json (pinned @grpc/grpc-js and
// @grpc/grpc-js-xds) into the user cache once and returns the directory
// holding client.js and node_modules.
func grpcJS(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (Debian packages nodejs and npm): %v", tool, err)
		}
	}
	pkg, err := os.ReadFile(filepath.Join("testdata", "grpcjs", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "meshgate-test", "grpcjs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js-xds")); err != nil || !bytes.Equal(old, pkg) {
		if err := os.WriteFile(filepath.Join(dir, "package.json"), pkg, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--no-package-lock")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install: %v\n%s", err, out)
		}
	}
	script, err := os.ReadFile(filepath.Join("testdata", "grpcjs", "client.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.js"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type jsPlan struct {
	Method   string            `json:"method"`
	Metadata map[string]string `json:"metadata,omitempty"`
	N        int               `json:"n"`
	Until    string            `json:"until,omitempty"`
	Ready    bool              `json:"ready,omitempty"`
}

type jsResult struct {
	Backend string `json:"backend"`
	Code    int    `json:"code"`
	Details string `json:"details"`
}

// runJS runs the grpc-js-xds client with plan against target; onReady is
// called when the client prints READY.
func runJS(t *testing.T, dir, bootstrap, target string, plan []jsPlan, onReady func()) []jsResult {
	t.Helper()
	p, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.js", target, string(p))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP_CONFIG="+bootstrap)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last []byte
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if sc.Text() == "READY" && onReady != nil {
			onReady()
			continue
		}
		last = append(last[:0], sc.Bytes()...)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node client.js: %v\n%s", err, stderr.Bytes())
	}
	var res []jsResult
	if err := json.Unmarshal(last, &res); err != nil {
		t.Fatalf("client output %q: %v\n%s", last, err, stderr.Bytes())
	}
	return res
}

// TestGRPCJSXDS drives the second independent xDS client,
// @grpc/grpc-js-xds, through meshgate's ADS server: path and header
// routing, the weighted split, a timeout, a retry and a live weight change.
func TestGRPCJSXDS(t *testing.T) {
	dir := grpcJS(t)
	m := startMesh(t)
	version := m.publish(1, 1)
	bootstrap := bootstrapJSON(m.addr)
	target := "xds:///" + m.host

	res := runJS(t, dir, bootstrap, target, []jsPlan{
		{Method: "EmptyCall", N: 3},
		{Method: "UnaryCall", Metadata: map[string]string{"x-canary": "1"}, N: 3},
		{Method: "UnaryCall", N: 100},
		{Method: "UnaryCall", Metadata: map[string]string{"x-slow": "1"}, N: 1},
		{Method: "UnaryCall", Metadata: map[string]string{"x-flaky": "js1"}, N: 1},
	}, nil)
	if len(res) != 108 {
		t.Fatalf("%d results, want 108", len(res))
	}
	for i, r := range res[:6] {
		if r.Code != 0 || r.Backend != "v2" {
			t.Fatalf("call %d (path or header route): %+v; want v2", i, r)
		}
	}
	counts := map[string]int{}
	for _, r := range res[6:106] {
		if r.Code != 0 {
			t.Fatalf("split call: %+v", r)
		}
		counts[r.Backend]++
	}
	if counts["v1"] < 10 || counts["v2"] < 10 {
		t.Fatalf("split 1:1 served %v; want both backends", counts)
	}
	// The route's 300ms timeout becomes the call's deadline, which the
	// backend receives as grpc-timeout (the client asked for 30s). grpc-go
	// servers reset the stream with CANCEL when that deadline passes, and
	// grpc-js reports such a reset as CANCELLED if it arrives before its
	// own timer fires, so either code is the timeout at work.
	const cancelled, deadlineExceeded, ok = 1, 4, 0
	if r := res[106]; r.Code != deadlineExceeded && !(r.Code == cancelled && r.Details == "Call cancelled") {
		t.Fatalf("slow call: %+v; want DEADLINE_EXCEEDED", r)
	}
	m.v1.mu.Lock()
	budgets := append([]time.Duration(nil), m.v1.slowBudgets...)
	m.v1.mu.Unlock()
	if len(budgets) != 1 || budgets[0] <= 0 || budgets[0] > 300*time.Millisecond {
		t.Fatalf("slow call reached the backend with deadlines %v; want one within the route's 300ms", budgets)
	}
	if r := res[107]; r.Code != ok || r.Backend != "v1" {
		t.Fatalf("flaky call: %+v; want v1 after a retry", r)
	}
	m.waitAcked(t, version)

	// Live weight change while a client runs: once it has made a call,
	// everything moves to v2.
	var next string
	res = runJS(t, dir, bootstrap, target, []jsPlan{
		{Method: "UnaryCall", N: 1, Ready: true},
		{Method: "UnaryCall", N: 30, Until: "v2"},
	}, func() {
		next = m.publish(0, 1)
		m.waitAcked(t, next)
	})
	if next == "" || next == version {
		t.Fatalf("the weight change published version %q after %q", next, version)
	}
	if len(res) < 31 {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	for i, r := range res[len(res)-30:] {
		if r.Code != 0 || r.Backend != "v2" {
			t.Fatalf("call %d of the last 30 after the weight change: %+v; want v2", i, r)
		}
	}
	if n := testutil.CollectAndCount(m.srv.nacks); n != 0 {
		t.Fatalf("NACKs were counted for %d resource types", n)
	}
}

// TestGRPCJSXDSNamePort dials the service as "xds:///<hostname>:<port>"
// with @grpc/grpc-js-xds: the client asks for the listener of that name
// and matches the virtual host on it, and the router's routes apply as
// through the name without a port.
func TestGRPCJSXDSNamePort(t *testing.T) {
	dir := grpcJS(t)
	m := startMesh(t)
	version := m.publish(1, 0)
	res := runJS(t, dir, bootstrapJSON(m.addr), "xds:///"+m.host+":50051", []jsPlan{
		{Method: "EmptyCall", N: 3},
		{Method: "UnaryCall", Metadata: map[string]string{"x-canary": "1"}, N: 3},
		{Method: "UnaryCall", N: 5},
	}, nil)
	if len(res) != 11 {
		t.Fatalf("%d results, want 11", len(res))
	}
	for i, r := range res {
		want := "v2"
		if i >= 6 {
			want = "v1" // the split's weights are 1:0
		}
		if r.Code != 0 || r.Backend != want {
			t.Fatalf("call %d: %+v; want %s", i, r, want)
		}
	}
	m.waitAcked(t, version)
	if n := testutil.CollectAndCount(m.srv.nacks); n != 0 {
		t.Fatalf("NACKs were counted for %d resource types", n)
	}
}
