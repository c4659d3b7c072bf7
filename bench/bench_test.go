package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const wrkOut = `Running 2s test @ http://127.0.0.1:19071/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.00ms    1.05ms   9.19ms   85.34%
    Req/Sec    55.81k     6.04k   66.87k    85.00%
  Latency Distribution
     50%  503.00us
     75%    1.07ms
     90%    2.62ms
     99%    1.20s
  111136 requests in 2.01s, 16.22MB read
  Socket errors: connect 0, read 3, write 0, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  55410.25
Transfer/sec:      8.08MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := result{requests: 111136, rps: 55410.25, p50: 503 * time.Microsecond, p99: 1200 * time.Millisecond, errors: 12}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("wrk's connection error was not reported")
	}
}

const h2loadOut = `finished in 2.00s, 5000.00 req/s, 356.77KB/s
requests: 10039 total, 10090 started, 10039 done, 10000 succeeded, 39 failed, 38 errored, 1 timeout
status codes: 10000 2xx, 0 3xx, 2 4xx, 3 5xx
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 5000 || r.requests != 10039 || r.errors != 39+38+1+2+3 {
		t.Errorf("got %+v", r)
	}
	log := "1\t200\t100\n2\t200\t300\n3\t-1\t999999\n4\t200\t200\n5\t503\t7\n"
	p50, p99, err := h2loadPercentiles([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	if p50 != 200*time.Microsecond || p99 != 300*time.Microsecond {
		t.Errorf("p50 %v p99 %v, want 200µs and 300µs (failed requests left out)", p50, p99)
	}
}

const traces = `File: meshgate
Type: cpu
Duration: 3s, Total samples = 2.29s (76.30%)
-----------+-------------------------------------------------------
      10ms   internal/runtime/syscall/linux.Syscall6
             syscall.Syscall
             internal/poll.(*FD).Read
             net.(*conn).Read
-----------+-------------------------------------------------------
      20ms   runtime.memclrNoHeapPointers
             runtime.mallocgc
             net/http.Header.Clone
-----------+-------------------------------------------------------
      30ms   runtime.scanSpan
             runtime.gcDrain
             runtime.gcBgMarkWorker
-----------+-------------------------------------------------------
     1.01s   internal/runtime/syscall/linux.Syscall6
             runtime.netpoll
-----------+-------------------------------------------------------
`

func TestCategorize(t *testing.T) {
	cs, total := categorize(traces)
	if total != 1070*time.Millisecond {
		t.Errorf("total %v, want 1.07s", total)
	}
	got := map[string]time.Duration{}
	for _, c := range cs {
		got[c.name] = c.value
	}
	for name, want := range map[string]time.Duration{
		"system calls: socket read/write":                              10 * time.Millisecond,
		"memory allocation (mallocgc and below)":                       20 * time.Millisecond,
		"garbage collection (background marking, sweeping, assists)":   30 * time.Millisecond,
		"system calls: scheduler, netpoll, timers (futex, epoll, ...)": 1010 * time.Millisecond,
	} {
		if got[name] != want {
			t.Errorf("%s: %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	if cs[0].value != 1010*time.Millisecond {
		t.Errorf("categories not sorted by share: %v", cs)
	}
}

func TestRecordPrependsUnderMarker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	os.WriteFile(p, []byte("# B\n\n## History\n\n"+historyMarker+"\n\n### old run\n"), 0o644)
	if err := record(p, "### new run\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	s := string(b)
	if i, j := strings.Index(s, "### new run"), strings.Index(s, "### old run"); i < 0 || j < 0 || i > j || i < strings.Index(s, historyMarker) {
		t.Errorf("new run not inserted first under the marker:\n%s", s)
	}
	if err := record(filepath.Join(t.TempDir(), "none.md"), "x"); err == nil {
		t.Error("missing file accepted")
	}
}

func TestStatsAndMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-smoke", "-targets", "direct,nginx,meshgate", "-loads", "h1-c50"})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 1 || o.duration != 2*time.Second || o.routes != 1000 {
		t.Errorf("smoke defaults not applied: %+v", o)
	}
	rep := &report{o: o, targets: []*target{{name: "direct"}, {name: "nginx", notes: "worker_processes 1"}, {name: "meshgate"}}, rss: map[string]rssInfo{}}
	for round, rps := range []float64{100, 300, 200} {
		rep.samples = append(rep.samples,
			sample{target: "nginx", load: "h1-c50", round: round, res: result{requests: 1000, rps: rps, p99: time.Millisecond}, cpu: 0.5, backendCPU: 0.25, hasBackend: true},
			sample{target: "meshgate", load: "h1-c50", round: round, res: result{requests: 1000, rps: rps / 2, p99: 2 * time.Millisecond}, cpu: 1, backendCPU: 0.5, hasBackend: true})
	}
	ss := rep.stats("h1-c50")
	if len(ss) != 2 {
		t.Fatalf("stats for %d targets, want 2 (direct has no samples)", len(ss))
	}
	ng := find(ss, "nginx")
	if ng.rps != 200 || ng.rpsMin != 100 || ng.rpsMax != 300 || ng.cpuPer100k != 50 || ng.backendPer100k != 25 {
		t.Errorf("nginx stats %+v", ng)
	}
	rep.rss["nginx"] = rssInfo{bytes: 20 << 20, anon: 8 << 20, file: 4 << 20, procs: 2}
	rep.rss["meshgate"] = rssInfo{bytes: 60 << 20, anon: 16 << 20, file: 40 << 20, procs: 1}
	md := rep.markdown()
	// meshgate: 100 + 50 s of CPU per 100k requests for itself and the
	// backend, against nginx's 50 + 25.
	for _, want := range []string{"| meshgate | 100 | 50–150 (100 %) | 0.50× |", "| 2.00× |", "| 100.00 | 2.00× | – | 50.00 | 2.00× | 0 |",
		"| meshgate | 1 | 60.0 | 3.00× | – | 16.0 | 2.00× | 40.0 |",
		"\n- nginx: worker_processes 1\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if _, err := parseFlags([]string{"-targets", "envoy"}); err == nil {
		t.Error("unknown target accepted")
	}
}

// TestMemoryOf reads this test's own process: resident memory splits into
// anonymous memory and pages of files, and the peak is at least both.
func TestMemoryOf(t *testing.T) {
	m := memoryOf(os.Getpid())
	if m.procs < 1 || m.anon <= 0 || m.file <= 0 || m.bytes < m.anon+m.file {
		t.Errorf("memoryOf(self) = %+v", m)
	}
}

// TestTargetWithoutH2C: go-floor is a valid target; it has no h2c URL, so
// the h2c load skips it and the h2c table leaves it out.
func TestTargetWithoutH2C(t *testing.T) {
	o, err := parseFlags([]string{"-targets", "go-floor,nginx", "-loads", "h1-c50,h2c-c50"})
	if err != nil {
		t.Fatal(err)
	}
	floor := &target{name: "go-floor", h1: "http://a"}
	ng := &target{name: "nginx", h1: "http://b", h2c: "http://c", tls: "https://d"}
	mgTLS := &target{name: "meshgate-tls", tls: "https://e"}
	byName := map[string]load{}
	for _, l := range allLoads {
		byName[l.name] = l
	}
	for _, tc := range []struct {
		t    *target
		load load
		want string
	}{
		{floor, o.loads[0], "http://a"},
		{floor, o.loads[1], ""},
		{floor, byName["tls-c50"], ""},
		{ng, o.loads[0], "http://b"},
		{ng, o.loads[1], "http://c"},
		{ng, byName["tls-c50"], "https://d"},
		{ng, byName["h2tls-c50"], "https://d"},
		{mgTLS, o.loads[0], ""},
		{mgTLS, o.loads[1], ""},
		{mgTLS, byName["h2tls-c50"], "https://e"},
	} {
		if got := tc.t.base(tc.load); got != tc.want {
			t.Errorf("%s under %s: %q, want %q", tc.t.name, tc.load.name, got, tc.want)
		}
	}
	rep := &report{o: o, targets: []*target{floor, ng}, rss: map[string]rssInfo{}}
	for _, l := range o.loads {
		for _, tg := range rep.targets {
			if tg.base(l) != "" {
				rep.samples = append(rep.samples, sample{target: tg.name, load: l.name, res: result{requests: 1000, rps: 100}, cpu: 1})
			}
		}
	}
	md := rep.markdown()
	h1, h2c, ok := strings.Cut(md, "#### h2c")
	if !ok || !strings.Contains(h1, "| go-floor | 100 |") || strings.Contains(h2c, "go-floor") || !strings.Contains(h2c, "| nginx | 100 |") {
		t.Errorf("go-floor should be in the h1 table only:\n%s", md)
	}
}

func TestLoadArgv(t *testing.T) {
	byName := map[string]load{}
	for _, l := range allLoads {
		byName[l.name] = l
	}
	for _, tc := range []struct {
		load string
		want string
	}{
		{"h1-c50", "taskset -c 0 wrk -t1 -c50 -d10s --latency http://x/"},
		{"h1b-c50", "taskset -c 0 wrk -t1 -c50 -d10s --latency -H " + strings.Join(browserFields, " -H ") + " http://x/"},
		{"h2c-c50", "taskset -c 0 h2load -t1 -c50 -m10 -D 10 --log-file=log http://x/"},
		{"tls-c50", "taskset -c 0 wrk -t1 -c50 -d10s --latency http://x/"},
		{"h2tls-c50", "taskset -c 0 h2load -t1 -c50 -m10 -D 10 --log-file=log http://x/"},
	} {
		if got := strings.Join(byName[tc.load].argv("0", "http://x/", 10*time.Second, "log"), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.load, got, tc.want)
		}
	}
	if n := len(browserFields); n != 8 {
		t.Errorf("%d browser fields, the load's title says 8", n)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		v, unit string
		want    time.Duration
	}{
		{"4.18", "ms", 4180 * time.Microsecond},
		{"812.33", "us", 812330 * time.Nanosecond},
		{"1.01", "s", 1010 * time.Millisecond},
		{"2.5", "m", 150 * time.Second},
	} {
		if got := duration(tc.v, tc.unit); got != tc.want {
			t.Errorf("duration(%s%s) = %v, want %v", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestSpeedLine(t *testing.T) {
	if got := speedLine([]sample{{}}, "1"); got != "" {
		t.Errorf("no timings: %q", got)
	}
	samples := []sample{{speed: 12 * time.Millisecond}, {speed: 10 * time.Millisecond}, {}, {speed: 15 * time.Millisecond}}
	want := "- speed of CPU 1: a fixed loop timed before each measurement took 12.00 ms (median), 10.00–15.00 ms (50 %); the wider that spread, the less the targets compare"
	if got := speedLine(samples, "1"); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
