package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// load is one kind of traffic.
type load struct {
	name  string // short key, as in -loads
	title string
	h2    bool // HTTP/2 with h2load (else HTTP/1.1 with wrk)
	tls   bool // to the target's TLS port (HTTP/2 by ALPN); else cleartext (h2c with prior knowledge)
	conns int
	// streams is h2load's concurrent streams per connection.
	streams int
	// fields are request header fields sent besides Host.
	fields []string
}

// browserFields are eight fields a browser sends with a page request: wrk
// sends none but Host, and a gateway's cost per field shows only with them.
var browserFields = []string{
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"Accept-Language: en-US,en;q=0.9",
	"Accept-Encoding: gzip, deflate, br",
	"Cookie: session=abcdef0123456789; theme=dark",
	"Referer: http://bench.example.com/index.html",
	"Cache-Control: no-cache",
	"Sec-Fetch-Mode: navigate",
}

var allLoads = []load{
	{name: "h1-c50", title: "HTTP/1.1 keep-alive, 50 connections", conns: 50},
	{name: "h1-c200", title: "HTTP/1.1 keep-alive, 200 connections", conns: 200},
	{name: "h1b-c50", title: "HTTP/1.1 keep-alive, 50 connections, a browser's request (8 more fields)", conns: 50, fields: browserFields},
	{name: "h2c-c50", title: "h2c (prior knowledge), 50 connections × 10 streams", h2: true, conns: 50, streams: 10},
	{name: "tls-c50", title: "HTTP/1.1 over TLS, keep-alive, 50 connections", tls: true, conns: 50},
	{name: "h2tls-c50", title: "HTTP/2 over TLS, 50 connections × 10 streams", h2: true, tls: true, conns: 50, streams: 10},
}

// result is what one load run measured.
type result struct {
	requests int64   // completed requests
	rps      float64 // as the load generator reports it
	p50, p99 time.Duration
	errors   int64 // socket errors, timeouts and non-2xx responses
	// genCPU is the CPU time the load generator itself used.
	genCPU time.Duration
}

// argv is the load generator's command line, pinned to cpu.
func (l load) argv(cpu, url string, d time.Duration, logFile string) []string {
	secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
	if l.h2 {
		return []string{"taskset", "-c", cpu, "h2load", "-t1", fmt.Sprintf("-c%d", l.conns), fmt.Sprintf("-m%d", l.streams),
			"-D", secs, "--log-file=" + logFile, url}
	}
	argv := []string{"taskset", "-c", cpu, "wrk", "-t1", fmt.Sprintf("-c%d", l.conns), "-d" + secs + "s", "--latency"}
	for _, f := range l.fields {
		argv = append(argv, "-H", f)
	}
	return append(argv, url)
}

// run drives url for d and parses what the generator printed.
func (l load) run(cpu, url string, d time.Duration, scratch string) (result, string, error) {
	logFile := scratch + ".h2load.tsv"
	argv := l.argv(cpu, url, d, logFile)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	var r result
	if l.h2 {
		defer os.Remove(logFile)
		if r, err = parseH2load(string(out)); err != nil {
			return r, string(out), err
		}
		f, err := os.ReadFile(logFile)
		if err != nil {
			return r, string(out), err
		}
		if r.p50, r.p99, err = h2loadPercentiles(f); err != nil {
			return r, string(out), err
		}
	} else if r, err = parseWrk(string(out)); err != nil {
		return r, string(out), err
	}
	// taskset execs the generator in place, so this is the generator's time.
	r.genCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, string(out), nil
}

var (
	wrkLatencyLine = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkRequests    = regexp.MustCompile(`(?m)^\s+(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkRPS         = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkSocket      = regexp.MustCompile(`(?m)Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx      = regexp.MustCompile(`(?m)Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk --latency output.
func parseWrk(out string) (result, error) {
	var r result
	m := wrkRequests.FindStringSubmatch(out)
	rps := wrkRPS.FindStringSubmatch(out)
	if m == nil || rps == nil {
		return r, fmt.Errorf("wrk output not understood:\n%s", out)
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.rps, _ = strconv.ParseFloat(rps[1], 64)
	for _, l := range wrkLatencyLine.FindAllStringSubmatch(out, -1) {
		d := duration(l[2], l[3])
		if l[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("wrk output has no latency distribution:\n%s", out)
	}
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for _, v := range s[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.errors += n
		}
	}
	if s := wrkNon2xx.FindStringSubmatch(out); s != nil {
		n, _ := strconv.ParseInt(s[1], 10, 64)
		r.errors += n
	}
	return r, nil
}

// duration is wrk's "4.18ms": rounded to the nanosecond, so that the
// float's error does not print as 4.179999ms.
func duration(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	scale := time.Second
	switch unit {
	case "us":
		scale = time.Microsecond
	case "ms":
		scale = time.Millisecond
	case "m":
		scale = time.Minute
	}
	return time.Duration(math.Round(f * float64(scale)))
}

var (
	h2Finished = regexp.MustCompile(`(?m)^finished in [0-9.]+\w+, ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2load reads h2load's summary; latency comes from its log file.
func parseH2load(out string) (result, error) {
	var r result
	f := h2Finished.FindStringSubmatch(out)
	q := h2Requests.FindStringSubmatch(out)
	if f == nil || q == nil {
		return r, fmt.Errorf("h2load output not understood:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(f[1], 64)
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	r.requests = n(q[3])
	r.errors = n(q[5]) + n(q[6]) + n(q[7])
	if s := h2Status.FindStringSubmatch(out); s != nil {
		r.errors += n(s[3]) + n(s[4])
	}
	return r, nil
}

// h2loadPercentiles computes p50 and p99 of the successful requests from
// h2load's --log-file: one line per request, tab-separated: start time (µs
// since the epoch), status, duration in µs.
func h2loadPercentiles(log []byte) (p50, p99 time.Duration, err error) {
	var ds []int64
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 || !strings.HasPrefix(f[1], "2") {
			continue
		}
		us, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		if err != nil {
			continue
		}
		ds = append(ds, us)
	}
	if len(ds) == 0 {
		return 0, 0, fmt.Errorf("h2load log has no requests")
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		return time.Duration(ds[min(len(ds)-1, int(q*float64(len(ds))))]) * time.Microsecond
	}
	return at(0.50), at(0.99), nil
}
