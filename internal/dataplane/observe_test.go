package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logLines writes out the gateway's buffered access log lines and reads
// the file at path.
func (g *gateway) logLines(path string) []string {
	g.t.Helper()
	g.p.logs.flush()
	return readLines(g.t, path)
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func accessLogConfig(t *testing.T, log *ir.AccessLog) (*ir.Config, *backend) {
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Version", "v7")
		echoHandler("b")(w, r)
	}))
	cfg := meshConfig([]*ir.Listener{listenerOf(8080,
		withRewrite(route("demo/backend", "b", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/", Hostname: "b.demo.svc.cluster.local"}),
	)}, b)
	cfg.Gateways[0].AccessLog = log
	return cfg, b
}

func TestAccessLogText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	os.WriteFile(path, []byte("earlier line\n"), 0o644)
	cfg, b := accessLogConfig(t, &ir.AccessLog{Path: path,
		Text: `%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% ` +
			`%BYTES_RECEIVED% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME% %REQ(:AUTHORITY)% %REQ(X-CUSTOM):3% ` +
			`%RESP(X-BACKEND-VERSION)% %REQ(X-REQUEST-ID)% 100%`})
	g := startGateway(t, cfg)
	g.do(request{method: http.MethodPost, path: "/backend/items?x=1", host: "shop.example.com", body: strings.NewReader("hello"),
		header: http.Header{"X-Custom": {"abcdef"}, "X-Request-Id": {"rid-1"}}})
	g.do(request{path: "/nothing", host: "shop.example.com"})

	lines := g.logLines(path)
	want := []string{
		"earlier line",
		"POST /backend/items?x=1 /items?x=1 HTTP/1.1 200 - 5 " + b.addr + " demo/b-vn demo/backend b.demo.svc.cluster.local abc v7 rid-1 100%",
		"GET /nothing /nothing HTTP/1.1 404 NR 0 - - - shop.example.com - - - 100%",
	}
	if len(lines) != len(want) {
		t.Fatalf("log lines:\n%s", strings.Join(lines, "\n"))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

func TestAccessLogDefaultFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	cfg, b := accessLogConfig(t, &ir.AccessLog{Path: path})
	g := startGateway(t, cfg)
	g.do(request{path: "/backend/x", host: "shop.example.com", header: http.Header{"User-Agent": {"probe/1"}, "X-Forwarded-For": {"203.0.113.9"}}})
	lines := g.logLines(path)
	re := regexp.MustCompile(`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /backend/x HTTP/1\.1" 200 - 0 \d+ \d+ \d+ "203\.0\.113\.9" "probe/1" "[0-9a-f-]{36}" "b\.demo\.svc\.cluster\.local" "` + regexp.QuoteMeta(b.addr) + `"$`)
	if len(lines) != 1 || !re.MatchString(lines[0]) {
		t.Fatalf("default format line:\n%s", strings.Join(lines, "\n"))
	}
}

func TestAccessLogJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	cfg, _ := accessLogConfig(t, &ir.AccessLog{Path: path, JSON: []ir.KeyValue{
		{Key: "start", Value: "%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%"},
		{Key: "method", Value: "%REQ(:METHOD)%"},
		{Key: "code", Value: "%RESPONSE_CODE%"},
		{Key: "bytes", Value: "%BYTES_SENT%"},
		{Key: "flags", Value: "%RESPONSE_FLAGS%"},
		{Key: "route", Value: "%ROUTE_NAME%"},
		{Key: "missing", Value: "%REQ(X-NOT-SENT)%"},
		{Key: "mixed", Value: `%REQ(:METHOD)% "%REQ(X-NOT-SENT)%"`},
		{Key: "client", Value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"},
	}})
	g := startGateway(t, cfg)
	g.do(request{path: "/backend/x"})
	g.do(request{path: "/nothing"})
	lines := g.logLines(path)
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s: %v", l, err)
		}
		got = append(got, m)
	}
	if !regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}$`).MatchString(got[0]["start"].(string)) {
		t.Errorf("start = %v", got[0]["start"])
	}
	if got[0]["code"] != 200.0 || got[1]["code"] != 404.0 {
		t.Errorf("codes %v %v, want JSON numbers", got[0]["code"], got[1]["code"])
	}
	if _, ok := got[0]["bytes"].(float64); !ok {
		t.Errorf("bytes = %#v, want a number", got[0]["bytes"])
	}
	checks := map[string][2]any{
		"method":  {"GET", "GET"},
		"flags":   {nil, "NR"},
		"route":   {"demo/backend", nil},
		"missing": {nil, nil},
		"mixed":   {`GET "-"`, `GET "-"`},
		"client":  {"127.0.0.1", "127.0.0.1"},
	}
	for k, want := range checks {
		for i := range 2 {
			if got[i][k] != want[i] {
				t.Errorf("line %d %s = %#v, want %#v", i, k, got[i][k], want[i])
			}
		}
	}
	if strings.Index(lines[0], `"start"`) > strings.Index(lines[0], `"method"`) {
		t.Errorf("keys out of order: %s", lines[0])
	}
}

// TestAccessLogWrittenInBatches checks that lines reach the file on their
// own within a while, with nothing flushing them, and that a shutdown
// writes those still buffered.
func TestAccessLogWrittenInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	cfg, _ := accessLogConfig(t, &ir.AccessLog{Path: path, Text: "%REQ(:PATH)%\n"})
	g := startGateway(t, cfg)
	g.do(request{path: "/backend/first"})
	for deadline := time.Now().Add(20 * logFlushDelay); ; {
		if b, _ := os.ReadFile(path); string(b) == "/first\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the line never reached the file; it holds %q", readLines(t, path))
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.do(request{path: "/backend/second"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, path); strings.Join(lines, " ") != "/first /second" {
		t.Errorf("after shutdown the file holds %q", lines)
	}
}

// TestLogWriterKeepsLinesWhole writes lines from many goroutines, far more
// than one buffer holds: every line arrives whole, and each goroutine's in
// the order it wrote them.
func TestLogWriterKeepsLinesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	files := newLogFiles(slog.New(slog.DiscardHandler))
	w, err := files.writer(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, lines = 8, 2000
	pad := strings.Repeat("x", 100)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range lines {
				w.writeLine(fmt.Appendf(nil, "%d %d %s\n", i, n, pad))
			}
		}()
	}
	wg.Wait()
	files.close()
	got := readLines(t, path)
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	next := make([]int, writers)
	for _, l := range got {
		var i, n int
		var rest string
		if _, err := fmt.Sscanf(l, "%d %d %s", &i, &n, &rest); err != nil || rest != pad || i < 0 || i >= writers {
			t.Fatalf("broken line %q", l)
		}
		if n != next[i] {
			t.Fatalf("writer %d: line %d after line %d", i, n, next[i]-1)
		}
		next[i]++
	}
}

func TestReadsResponse(t *testing.T) {
	for format, want := range map[string]bool{
		defaultLogFormat:                          false,
		"%REQ(:PATH)% %RESPONSE_CODE%":            false,
		"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%":   false,
		"%RESP(CONTENT-TYPE)%":                    true,
		"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME?X)%": true,
		"%TRAILER(GRPC-STATUS)%":                  true,
	} {
		segs, err := parseFormat(format)
		if err != nil {
			t.Fatal(err)
		}
		if got := readsResponse(segs); got != want {
			t.Errorf("readsResponse(%q) = %v, want %v", format, got, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for format, wantErr := range map[string]string{
		"%REQ(:METHOD)% %DURATION%": "",
		"100% sure %%":              "",
		"%START_TIME(%s.%3f)%":      "",
		"%DOWNSTREAM_TLS_VERSION%":  "",
		"%REQ(X-A):10%":             "",
		"%BOGUS%":                   "unknown operator %BOGUS%",
		"%REQ%":                     "needs a header name",
		"%REQ()%":                   "needs a header name",
	} {
		_, err := parseFormat(format)
		if (err == nil) != (wantErr == "") || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseFormat(%q) = %v, want error %q", format, err, wantErr)
		}
	}
	tm := time.Date(2026, 3, 4, 5, 6, 7, 89_000_000, time.UTC)
	if got := formatTime(tm, parseTimeFormat("%Y-%m-%dT%H:%M:%E3SZ %s %6f %%")); got != "2026-03-04T05:06:07.089Z 1772600767 089000 %" {
		t.Errorf("formatTime = %q", got)
	}
}

func TestMetrics(t *testing.T) {
	b := startEcho(t, "b")
	g := startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080, route("demo/r", "b", ir.Match{Prefix: "/ok"}))}, b))
	for range 3 {
		g.get("/ok")
	}
	g.do(request{path: "/missing"})

	m := g.p.metrics
	if got := m.requests.value(seriesKey{testGateway, "demo/r", "demo/b", "demo/b-vn", 200}); got != 3 {
		t.Errorf("200s counted %v, want 3", got)
	}
	if got := m.requests.value(seriesKey{testGateway, "", "", "", 404}); got != 1 {
		t.Errorf("404s counted %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(g.reg, "meshgate_requests_total", "meshgate_request_duration_seconds", "meshgate_upstream_connections"); err != nil || n != 5 {
		t.Errorf("registry has %d series (%v), want 2 counters, 2 histograms, 1 gauge", n, err)
	}
	if got := testutil.ToFloat64(m.conns.WithLabelValues("demo/b-vn")); got != 1 {
		t.Errorf("upstream connections %v, want the one kept-alive connection", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.conns.WithLabelValues("demo/b-vn")); got != 0 {
		t.Errorf("upstream connections after Shutdown %v, want 0", got)
	}
}

func TestMetricsHTTP2UpstreamConnections(t *testing.T) {
	h2 := startH2CBackend(t, "h2", echoHandler("h2"))
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "h2", ir.Match{Prefix: "/"}))})
	addNode(cfg, "h2", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: h2.port, Protocol: "http2"}}, Endpoints: []string{h2.addr}})
	g := startGateway(t, cfg)
	for range 5 {
		if e := g.get("/"); e.Proto != "HTTP/2.0" {
			t.Fatalf("backend saw %s", e.Proto)
		}
	}
	if got := testutil.ToFloat64(g.p.metrics.conns.WithLabelValues("demo/h2-vn")); got != 1 {
		t.Errorf("HTTP/2 upstream connections %v, want 1 multiplexed connection", got)
	}
}

func TestSharedRegistry(t *testing.T) {
	g := startGateway(t, nil)
	p2, err := New(Options{Registry: g.reg, Listen: func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }})
	if err != nil {
		t.Fatalf("second Plane on one registry: %v", err)
	}
	if p2.metrics.requests != g.p.metrics.requests {
		t.Error("collectors not shared")
	}
	p2.Shutdown(context.Background())
}

// TestRequestCollector checks what a scrape shows of requests counted
// through the connection's last series and without it: each code's
// counter, and one histogram per label set whose buckets hold each
// duration at its upper bound ("le") and above.
func TestRequestCollector(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	var last lastSeries
	for _, d := range []time.Duration{500 * time.Microsecond, 700 * time.Microsecond, 3 * time.Millisecond} {
		m.observe(&last, "gw", "r", "svc", "vn", 200, d)
	}
	m.observe(nil, "gw", "r", "svc", "vn", 503, 40*time.Second)
	const want = `
# HELP meshgate_request_duration_seconds Time from receiving a request to finishing its response.
# TYPE meshgate_request_duration_seconds histogram
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.0005"} 1
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.001"} 2
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.0025"} 2
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.005"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.01"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.025"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.05"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.1"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.25"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="0.5"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="1"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="2.5"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="5"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="10"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="30"} 3
meshgate_request_duration_seconds_bucket{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc",le="+Inf"} 4
meshgate_request_duration_seconds_sum{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc"} 40.0042
meshgate_request_duration_seconds_count{gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc"} 4
# HELP meshgate_requests_total Requests served by the gateway, by gateway route, virtual service, virtual node and response code.
# TYPE meshgate_requests_total counter
meshgate_requests_total{code="200",gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc"} 3
meshgate_requests_total{code="503",gateway="gw",gateway_route="r",virtual_node="vn",virtual_service="svc"} 1
`
	if err := testutil.CollectAndCompare(m.requests, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// promtool check metrics runs the same linter.
	if problems, err := testutil.CollectAndLint(m.requests); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestDurationCoversTheBody: the duration a direct-path exchange records
// ends with the upstream's body, whose end the transport notes when it
// pools the connection, not with the response head.
func TestDurationCoversTheBody(t *testing.T) {
	const pause = 60 * time.Millisecond
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first part, ")
		w.(http.Flusher).Flush()
		time.Sleep(pause)
		io.WriteString(w, "last part")
	}))
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("demo/r", "b", ir.Match{Prefix: "/"}))}, b)
	cfg.Gateways[0].AccessLog = &ir.AccessLog{Path: path, Text: "%DURATION%\n"}
	g := startGateway(t, cfg)
	for range 2 { // the second on a pooled connection
		if res := g.do(request{path: "/slow"}); res.status != http.StatusOK || res.body != "first part, last part" {
			t.Fatalf("status %d, body %q", res.status, res.body)
		}
	}
	for _, l := range g.logLines(path) {
		ms, err := strconv.Atoi(l)
		if err != nil || ms < int(pause/time.Millisecond) || ms > 10_000 {
			t.Errorf("duration %q ms, want at least the backend's %v pause", l, pause)
		}
	}
}
