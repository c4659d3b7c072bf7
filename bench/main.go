// Command bench measures meshgate side by side with nginx, HAProxy and Caddy
// as keep-alive reverse proxies in front of one nginx backend, and the
// backend alone as the ceiling, with wrk (HTTP/1.1) and h2load (h2c, and HTTP/2
// over TLS); HTTP/1.1 over TLS too; then
// reload latency and errors under load during reloads, and a CPU profile of
// meshgate under load. bench/run.sh installs the tools and runs it; see
// BENCHMARKS.md for the method and the results.
//
// The load generators and this runner run on one CPU and the servers on
// another (taskset), each server with one worker, so the numbers compare
// per-core efficiency. Runs are interleaved (every target once per load,
// then again, for -rounds rounds, in a rotated order each round) so that a
// change in the machine's background load spreads over all targets.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	targets       []string
	loads         []load
	profileLoad   load
	routes        int
	reloadRoutes  []int
	errorRoutes   []int
	reloads       int
	reloadSamples int
	profile       time.Duration
	loadCPU       string
	serverCPU     string
	backendCPU    string // serverCPU unless -backend-cpu moves the backend
	meshgate      string
	out           string
	record        string
	smoke         bool
	command       string
}

func main() {
	log.SetFlags(0)
	if len(os.Args) == 2 && os.Args[1] == calibrateArg {
		fmt.Println(int64(calibrate()))
		return
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// allTargets are the targets there are, all measured by default.
var allTargets = []string{"direct", "meshgate", "meshgate-routes", "meshgate-standalone", "meshgate-tls", "nginx", "haproxy", "caddy", "go-floor", "go-floor-loop"}

// goBuild builds the package pkg of the module at root into bin, with the
// build tags given.
func goBuild(root, bin, pkg string, tags ...string) error {
	log.Printf("building %s into %s", pkg, bin)
	cmd := exec.Command("go", "build", "-tags", strings.Join(tags, ","), "-o", bin, pkg)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	var targets, loads, reloadRoutes, errorRoutes, profileLoad string
	smoke := os.Getenv("BENCH_SMOKE") != "" && os.Getenv("BENCH_SMOKE") != "0"
	fs.BoolVar(&smoke, "smoke", smoke, "short run for development: 1 round of 2 s, 1,000 routes, 5 reloads (also BENCH_SMOKE=1)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of one measured run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured run before each measured one")
	fs.StringVar(&targets, "targets", strings.Join(allTargets, ","), "what to measure, comma-separated (meshgate-standalone: meshgate built with -tags standalone, one route; meshgate-tls: meshgate with one route on a TLS listener, measured under the TLS loads only; go-floor: the least a Go HTTP/1.1 proxy does, bench/floor, cleartext HTTP/1.1 only; go-floor-loop: the same on coroutines of one epoll loop (bench/floor -loop); direct: cleartext only)")
	fs.StringVar(&loads, "loads", "h1-c50,h1-c200,h1b-c50,h2c-c50,tls-c50,h2tls-c50", "loads, comma-separated (h1b-c50: 50 connections sending a browser's eight request fields besides Host; tls-c50 and h2tls-c50: HTTP/1.1 and HTTP/2 over TLS)")
	fs.IntVar(&o.routes, "routes", 10000, "GatewayRoutes of the meshgate-routes target")
	fs.StringVar(&reloadRoutes, "reload-routes", "10,10000", "route counts the reload latency is measured at (empty: skip)")
	fs.StringVar(&errorRoutes, "error-routes", "10,1000", "route counts at which -reloads reloads run under load, counting errors")
	fs.IntVar(&o.reloads, "reloads", 100, "reloads under load")
	fs.IntVar(&o.reloadSamples, "reload-samples", 10, "reloads timed without load, per route count (at most 3 above 1,000 routes)")
	fs.DurationVar(&o.profile, "profile", 10*time.Second, "CPU profile length of meshgate under load (0: skip)")
	fs.StringVar(&profileLoad, "profile-load", allLoads[0].name, "the load meshgate is profiled under")
	fs.StringVar(&o.loadCPU, "load-cpu", "0", "CPU of the load generators and this runner")
	fs.StringVar(&o.serverCPU, "server-cpu", "1", "CPU of the proxies and the backend")
	fs.StringVar(&o.backendCPU, "backend-cpu", "", "CPU of the backend (default: -server-cpu's). With -load-cpu's, each proxy has its CPU to itself, as where the backend runs on machines of its own; the backend then takes its CPU from the load generator's (Finding 28)")
	fs.BoolVar(&accessLogs, "access-log", false, "every proxy logs each request to a file in the output directory (meshgate: Envoy's default format; nginx: buffer=64k flush=1s; HAProxy: option httplog to its log; Caddy: a file)")
	fs.BoolVar(&ownSessions, "sessions", false, "start each server in a session of its own (setsid), as separate services run; with the kernel's autogroup scheduling each is then a scheduling group apart")
	fs.StringVar(&o.meshgate, "meshgate", "", "meshgate binary (default: go build ./cmd/meshgate)")
	fs.StringVar(&o.out, "out", "", "output directory (default bench/out/TIMESTAMP)")
	fs.StringVar(&o.record, "record", "", "prepend the results to the History section of this file (BENCHMARKS.md)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if smoke {
		o.smoke = true
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("rounds", func() { o.rounds = 1 })
		def("duration", func() { o.duration = 2 * time.Second })
		def("warmup", func() { o.warmup = time.Second })
		def("routes", func() { o.routes = 1000 })
		def("reload-routes", func() { reloadRoutes = "10,1000" })
		def("error-routes", func() { errorRoutes = "10" })
		def("reloads", func() { o.reloads = 5 })
		def("reload-samples", func() { o.reloadSamples = 3 })
		def("profile", func() { o.profile = 3 * time.Second })
	}
	if o.backendCPU == "" {
		o.backendCPU = o.serverCPU
	}
	o.targets = splitList(targets)
	for _, t := range o.targets {
		if !slices.Contains(allTargets, t) {
			return nil, fmt.Errorf("-targets: unknown target %q", t)
		}
	}
	for _, name := range splitList(loads) {
		i := slices.IndexFunc(allLoads, func(l load) bool { return l.name == name })
		if i < 0 {
			return nil, fmt.Errorf("-loads: unknown load %q", name)
		}
		o.loads = append(o.loads, allLoads[i])
	}
	i := slices.IndexFunc(allLoads, func(l load) bool { return l.name == profileLoad })
	if i < 0 {
		return nil, fmt.Errorf("-profile-load: unknown load %q", profileLoad)
	}
	o.profileLoad = allLoads[i]
	var err error
	if o.reloadRoutes, err = ints(reloadRoutes); err != nil {
		return nil, fmt.Errorf("-reload-routes: %w", err)
	}
	if o.errorRoutes, err = ints(errorRoutes); err != nil {
		return nil, fmt.Errorf("-error-routes: %w", err)
	}
	if o.rounds < 1 || o.duration < time.Second {
		return nil, fmt.Errorf("need -rounds ≥ 1 and -duration ≥ 1s")
	}
	o.command = os.Getenv("BENCH_COMMAND")
	if o.command == "" {
		o.command = strings.Join(append([]string{"bench"}, args...), " ")
	}
	o.command = strings.TrimSpace(o.command)
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// sample is one measured run.
type sample struct {
	target, load string
	round        int
	res          result
	cpu          float64       // CPU seconds of the target's processes during the run
	backendCPU   float64       // CPU seconds of the backend during the run, for a proxy
	hasBackend   bool          // the target is a proxy in front of the backend
	oursCPU      float64       // share of the server CPU used by the target and the backend
	otherCPU     float64       // share of the server CPU used by anything else
	genCPU       float64       // share of the load CPU used by the load generator
	genOther     float64       // share of the load CPU used by anything else (this runner included)
	speed        time.Duration // the server CPU's calibration loop just before; 0: not timed
}

// report is everything a run measured, for the Markdown writer.
type report struct {
	o          *options
	start, end time.Time
	loadBefore string
	loadAfter  string
	versions   []string
	targets    []*target
	samples    []sample
	rss        map[string]rssInfo
	profile    *profileResult
	reloads    []reloadResult
	errs       []string // what failed but let the run go on
}

type rssInfo struct {
	bytes      int64 // peak
	anon, file int64 // resident at the end of the throughput rounds
	procs      int
}

func run(ctx context.Context, o *options) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "out", time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	// Servers are given absolute paths: nginx resolves relative ones
	// against its prefix.
	if o.out, err = filepath.Abs(o.out); err != nil {
		return err
	}
	if o.meshgate != "" {
		if o.meshgate, err = filepath.Abs(o.meshgate); err != nil {
			return err
		}
	}
	// Workers of servers started as root may run as nobody and still need
	// to reach their files.
	_ = os.Chmod(o.out, 0o755)
	logFile, err := os.Create(filepath.Join(o.out, "run.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log.SetOutput(io.MultiWriter(os.Stderr, logFile))
	if o.meshgate == "" {
		o.meshgate = filepath.Join(o.out, "meshgate")
		if err := goBuild(root, o.meshgate, "./cmd/meshgate"); err != nil {
			return err
		}
	}
	standalone := filepath.Join(o.out, "meshgate-standalone")
	if slices.Contains(o.targets, "meshgate-standalone") {
		if err := goBuild(root, standalone, "./cmd/meshgate", "standalone"); err != nil {
			return err
		}
	}
	floor := filepath.Join(o.out, "go-floor")
	if slices.Contains(o.targets, "go-floor") || slices.Contains(o.targets, "go-floor-loop") {
		if err := goBuild(root, floor, "./bench/floor"); err != nil {
			return err
		}
	}
	rep := &report{o: o, start: time.Now().UTC(), loadBefore: loadAvg(), versions: versions(root), rss: map[string]rssInfo{}}
	log.Printf("output in %s; load average before: %s", o.out, rep.loadBefore)

	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	backend, backendPort, err := startBackend(ctx, o.out, o.backendCPU)
	if backend != nil {
		procs = append(procs, backend.proc)
	}
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	cf, err := writeCert(o.out)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	var mg *meshgate
	for _, name := range o.targets {
		var t *target
		var err error
		switch name {
		case "direct":
			t = backend
		case "meshgate":
			mg, err = startMeshgate(ctx, o.meshgate, o.out, o.serverCPU, "meshgate", 1, backendPort, nil)
			if mg != nil {
				t = mg.target
			}
		case "meshgate-routes":
			log.Printf("starting meshgate with %d routes (compiling them may take a while)", o.routes)
			t, err = targetOf(startMeshgate(ctx, o.meshgate, o.out, o.serverCPU, routesName(o.routes), o.routes, backendPort, nil))
		case "meshgate-standalone":
			t, err = targetOf(startMeshgate(ctx, standalone, o.out, o.serverCPU, name, 1, backendPort, nil))
		case "meshgate-tls":
			t, err = targetOf(startMeshgate(ctx, o.meshgate, o.out, o.serverCPU, name, 1, backendPort, &cf))
		case "nginx":
			t, err = startNginx(ctx, o.out, o.serverCPU, backendPort, cf)
		case "haproxy":
			t, err = startHAProxy(ctx, o.out, o.serverCPU, backendPort, cf)
		case "caddy":
			t, err = startCaddy(ctx, o.out, o.serverCPU, backendPort, cf)
		case "go-floor", "go-floor-loop":
			t, err = startFloor(ctx, floor, o.out, o.serverCPU, name, backendPort)
		}
		if t != nil && t != backend {
			procs = append(procs, t.proc)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rep.targets = append(rep.targets, t)
		log.Printf("%s ready at %s (pid %d)", t.name, cmp.Or(t.h1, t.tls), t.pid())
	}

	if err := measure(ctx, o, rep, backend); err != nil {
		return err
	}
	for _, t := range rep.targets {
		rep.rss[t.name] = memoryOf(t.pid())
	}
	if o.profile > 0 && mg != nil && ctx.Err() == nil {
		p, err := profileMeshgate(o, mg)
		if err != nil {
			rep.errs = append(rep.errs, "profile: "+err.Error())
			log.Printf("profile: %v", err)
		}
		rep.profile = p
	}
	// The throughput servers are done; the reload phase starts its own.
	for _, t := range rep.targets {
		if t != backend {
			t.proc.stop()
		}
	}
	for _, n := range o.reloadRoutes {
		if ctx.Err() != nil {
			break
		}
		r, err := measureReloads(ctx, o, n, slices.Contains(o.errorRoutes, n), backendPort)
		if err != nil {
			rep.errs = append(rep.errs, fmt.Sprintf("reloads at %d routes: %v", n, err))
			log.Printf("reloads at %d routes: %v", n, err)
		}
		rep.reloads = append(rep.reloads, r)
	}
	for _, n := range o.errorRoutes {
		if !slices.Contains(o.reloadRoutes, n) && ctx.Err() == nil {
			r, err := measureReloads(ctx, o, n, true, backendPort)
			if err != nil {
				rep.errs = append(rep.errs, fmt.Sprintf("reloads at %d routes: %v", n, err))
			}
			rep.reloads = append(rep.reloads, r)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep.end = time.Now().UTC()
	rep.loadAfter = loadAvg()
	md := rep.markdown()
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println(md)
	if o.record != "" {
		if err := record(o.record, md); err != nil {
			return err
		}
		log.Printf("recorded in %s", o.record)
	}
	return nil
}

// targetOf is the target of a meshgate that startMeshgate started, if any.
func targetOf(m *meshgate, err error) (*target, error) {
	if m == nil {
		return nil, err
	}
	return m.target, err
}

func routesName(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("meshgate-%dk", n/1000)
	}
	return fmt.Sprintf("meshgate-%d", n)
}

// measure runs every load against every target, interleaved, -rounds times.
func measure(ctx context.Context, o *options, rep *report, backend *target) error {
	total := o.rounds * len(o.loads) * len(rep.targets)
	done := 0
	width := 0 // of the longest target name, to keep the progress lines aligned
	for _, t := range rep.targets {
		width = max(width, len(t.name))
	}
	for round := 0; round < o.rounds; round++ {
		for _, l := range o.loads {
			order := rotate(rep.targets, round)
			for _, t := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				base := t.base(l)
				if base == "" {
					continue
				}
				url := base + t.path
				if t.accessLog != "" {
					if err := os.Truncate(t.accessLog, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("%s: emptying its access log: %w", t.name, err)
					}
				}
				scratch := filepath.Join(o.out, fmt.Sprintf("r%d-%s-%s", round, l.name, t.name))
				if _, out, err := l.run(o.loadCPU, url, o.warmup, scratch+"-warmup"); err != nil {
					return fmt.Errorf("warm-up of %s, %s: %w\n%s", t.name, l.name, err, out)
				}
				speed, err := timeCPU(ctx, o.serverCPU)
				if err != nil {
					return fmt.Errorf("timing CPU %s: %w", o.serverCPU, err)
				}
				c0, b0 := cpuTicks(t.pid()), cpuTicks(backend.pid())
				busy0, total0 := cpuBusy(o.serverCPU)
				lbusy0, ltotal0 := cpuBusy(o.loadCPU)
				res, out, err := l.run(o.loadCPU, url, o.duration, scratch)
				c1, b1 := cpuTicks(t.pid()), cpuTicks(backend.pid())
				busy1, total1 := cpuBusy(o.serverCPU)
				lbusy1, ltotal1 := cpuBusy(o.loadCPU)
				os.WriteFile(scratch+".txt", []byte(out), 0o644)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", t.name, l.name, err)
				}
				ours := c1 - c0
				s := sample{target: t.name, load: l.name, round: round, res: res, cpu: float64(c1-c0) / clkTck, speed: speed}
				if t != backend {
					// How a proxy writes to the backend changes what the
					// backend costs (Finding 26); on the proxies' CPU, it is
					// theirs to share.
					if o.backendCPU == o.serverCPU {
						ours += b1 - b0
					}
					s.backendCPU, s.hasBackend = float64(b1-b0)/clkTck, true
				}
				if total1 > total0 {
					s.oursCPU = float64(ours) / float64(total1-total0)
					s.otherCPU = max(0, float64(busy1-busy0-ours)/float64(total1-total0))
				}
				if ltotal1 > ltotal0 {
					gen := res.genCPU.Seconds() * clkTck
					s.genCPU = min(1, gen/float64(ltotal1-ltotal0))
					s.genOther = max(0, (float64(lbusy1-lbusy0)-gen)/float64(ltotal1-ltotal0))
				}
				rep.samples = append(rep.samples, s)
				done++
				log.Printf("[%d/%d] round %d %-8s %-*s %9.0f req/s  p50 %-8v p99 %-8v cpu %.2fs/100k  errors %d  cpu%s ours %.0f%% others %.0f%%  cpu%s generator %.0f%% others %.0f%%  cpu%s loop %v",
					done, total, round+1, l.name, width, t.name, res.rps, res.p50, res.p99, s.cpu/float64(max(res.requests, 1))*1e5, res.errors, o.serverCPU, 100*s.oursCPU, 100*s.otherCPU, o.loadCPU, 100*s.genCPU, 100*s.genOther, o.serverCPU, speed.Round(10*time.Microsecond))
			}
		}
	}
	return nil
}

func rotate[T any](s []T, k int) []T {
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root (run from the repository): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// versions are the tools' own version lines.
func versions(root string) []string {
	first := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line == "" {
			return name + ": not found"
		}
		return line
	}
	commit := strings.TrimSpace(first("git", "-C", root, "rev-parse", "--short=12", "HEAD"))
	if out, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(out) > 0 {
		commit += " with uncommitted changes"
	}
	// /proc/cpuinfo rather than nproc: this runner is pinned to one CPU.
	cpu, ncpu := "?", 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
			if strings.HasPrefix(l, "processor") {
				ncpu++
			}
		}
	}
	return []string{
		"meshgate " + commit,
		first("go", "version"),
		first("nginx", "-v"),
		first("haproxy", "-v"),
		"caddy " + first("caddy", "version"),
		first("wrk", "-v"),
		first("h2load", "--version"),
		fmt.Sprintf("%d × %s, kernel %s", ncpu, cpu, first("uname", "-r")),
	}
}
