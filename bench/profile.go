package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// profileResult is meshgate's CPU profile under load, summarised.
type profileResult struct {
	file       string // the .pprof file
	top        string // `go tool pprof -top` output
	total      time.Duration
	categories []category
	rps        float64 // the load's throughput while profiling
	load       load
}

type category struct {
	name  string
	value time.Duration
}

// profileMeshgate takes a CPU profile from meshgate's admin endpoint while
// o.profileLoad (wrk with 50 connections unless told) loads it.
func profileMeshgate(o *options, m *meshgate) (*profileResult, error) {
	secs := int(o.profile.Round(time.Second) / time.Second)
	l := o.profileLoad
	type loadOut struct {
		r   result
		out string
		err error
	}
	done := make(chan loadOut, 1)
	go func() {
		r, out, err := l.run(o.loadCPU, m.base(l)+m.path, time.Duration(secs+3)*time.Second, filepath.Join(o.out, "profile-load"))
		done <- loadOut{r, out, err}
	}()
	time.Sleep(time.Second)
	res, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", m.admin, secs))
	if err != nil {
		<-done
		return nil, err
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	lo := <-done
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pprof: %s: %s", res.Status, data)
	}
	if lo.err != nil {
		return nil, lo.err
	}
	p := &profileResult{file: filepath.Join(o.out, "meshgate-cpu.pprof"), rps: lo.r.rps, load: l}
	if err := os.WriteFile(p.file, data, 0o644); err != nil {
		return nil, err
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", o.meshgate, p.file).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -top: %w\n%s", err, top)
	}
	p.top = string(top)
	os.WriteFile(filepath.Join(o.out, "meshgate-cpu-top.txt"), top, 0o644)
	cum, _ := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=60", o.meshgate, p.file).CombinedOutput()
	os.WriteFile(filepath.Join(o.out, "meshgate-cpu-cum.txt"), cum, 0o644)
	traces, err := exec.Command("go", "tool", "pprof", "-traces", o.meshgate, p.file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces: %w", err)
	}
	p.categories, p.total = categorize(string(traces))
	return p, nil
}

// categories are tried in order against every sampled stack (leaf first);
// the first that matches gets the sample, so the shares add up to 100 %.
var categories = []struct {
	name  string
	match func(leaf string, stack []string) bool
}{
	{"garbage collection (background marking, sweeping, assists)", func(_ string, s []string) bool {
		return anyHas(s, "runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart", "runtime.markroot")
	}},
	{"system calls: socket read/write", func(leaf string, s []string) bool {
		return isSyscall(leaf) && anyHas(s, "internal/poll.(*FD).")
	}},
	{"system calls: scheduler, netpoll, timers (futex, epoll, ...)", func(leaf string, s []string) bool {
		return isSyscall(leaf)
	}},
	{"memory allocation (mallocgc and below)", func(_ string, s []string) bool {
		return anyHas(s, "runtime.mallocgc", "runtime.newobject", "runtime.makeslice", "runtime.growslice", "runtime.makemap", "runtime.rawstring")
	}},
	{"goroutine scheduling and netpoll (runtime, no syscall)", func(_ string, s []string) bool {
		return anyHas(s, "runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.netpoll", "runtime.mcall", "runtime.goexit0")
	}},
	{"routing (internal/router)", func(_ string, s []string) bool { return anyHas(s, "meshgate/internal/router.") }},
	{"header handling (http.Header, textproto, canonicalisation)", func(_ string, s []string) bool {
		return anyHas(s, "net/http.Header.", "net/textproto.", "net/http.CanonicalHeaderKey", "net/http.cloneOrMakeHeader", "net/http.(*http2", "httputil.removeHopByHopHeaders", "httputil.copyHeader")
	}},
	{"metrics and access log", func(_ string, s []string) bool {
		return anyHas(s, "prometheus", "meshgate/internal/dataplane.(*Plane).record", "accesslog")
	}},
	{"httputil.ReverseProxy (rest)", func(_ string, s []string) bool { return anyHas(s, "net/http/httputil.") }},
	{"net/http client Transport (rest)", func(_ string, s []string) bool {
		return anyHas(s, "net/http.(*Transport)", "net/http.(*persistConn)")
	}},
	{"net/http server (rest)", func(_ string, s []string) bool {
		return anyHas(s, "net/http.(*conn)", "net/http.(*response)", "net/http.(*Server)", "net/http.(*chunkWriter)")
	}},
	{"meshgate HTTP/1.1 server loop (request parsing, response writing, client watch)", func(_ string, s []string) bool {
		return anyHas(s, "dataplane.(*h1ServerConn).parse", "dataplane.(*h1ServerConn).readHead", "dataplane.(*h1Writer)",
			"dataplane.(*h1ServerConn).armLocked", "dataplane.(*h1ServerConn).disarm", "dataplane.(*h1ServerConn).watch")
	}},
	{"meshgate data plane (rest)", func(_ string, s []string) bool { return anyHas(s, "meshgate/internal/dataplane.") }},
	{"other", func(string, []string) bool { return true }},
}

func isSyscall(leaf string) bool {
	switch {
	case strings.HasPrefix(leaf, "syscall."), strings.Contains(leaf, "runtime/syscall"),
		strings.HasPrefix(leaf, "runtime/internal/syscall"), strings.HasPrefix(leaf, "internal/syscall/unix."):
		return true
	}
	switch leaf {
	case "runtime.futex", "runtime.epollwait", "runtime.write1", "runtime.read", "runtime.usleep", "runtime.osyield",
		"runtime.madvise", "runtime.mmap", "runtime.munmap", "runtime.tgkill", "runtime.nanotime1", "runtime.walltime",
		"runtime.sched_getaffinity", "runtime.rt_sigprocmask", "runtime.sigaltstack", "runtime.getpid":
		return true
	}
	return false
}

func anyHas(stack []string, subs ...string) bool {
	for _, f := range stack {
		for _, s := range subs {
			if strings.Contains(f, s) {
				return true
			}
		}
	}
	return false
}

// categorize reads `go tool pprof -traces` output: blocks separated by lines
// of dashes, each starting with the sample's value and the leaf function,
// followed by one caller per line.
func categorize(traces string) ([]category, time.Duration) {
	sums := make([]time.Duration, len(categories))
	var total time.Duration
	for _, block := range strings.Split(traces, "-----------+") {
		var value time.Duration
		var stack []string
		for _, line := range strings.Split(block, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "---") {
				continue
			}
			if value == 0 {
				if len(f) < 2 {
					continue
				}
				d, err := time.ParseDuration(f[0])
				if err != nil {
					continue
				}
				value = d
				stack = append(stack, f[1])
				continue
			}
			stack = append(stack, f[0])
		}
		if value == 0 || len(stack) == 0 {
			continue
		}
		total += value
		for i, c := range categories {
			if c.match(stack[0], stack) {
				sums[i] += value
				break
			}
		}
	}
	var out []category
	for i, c := range categories {
		if sums[i] > 0 {
			out = append(out, category{c.name, sums[i]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].value > out[j].value })
	return out, total
}

func pct(part, total time.Duration) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(part)/float64(total), 'f', 1, 64) + " %"
}
