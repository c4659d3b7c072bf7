package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// stat is one target under one load, over the rounds.
type stat struct {
	target              string
	rps, rpsMin, rpsMax float64
	p50, p99            time.Duration
	cpuPer100k          float64 // CPU seconds per 100,000 requests
	backendPer100k      float64 // the backend's, for a proxy; 0: not a proxy
	errors, requests    int64
	oursCPU, otherCPU   float64 // median shares of the server CPU: target+backend, others
	genCPU, genOther    float64 // median shares of the load CPU: generator, others
	rounds              int
	haveCPU             bool
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) stats(loadName string) []stat {
	var out []stat
	for _, t := range r.targets {
		var rps, p50, p99, cpu, backendCPU, ours, other, gen, genOther []float64
		st := stat{target: t.name}
		for _, s := range r.samples {
			if s.load != loadName || s.target != t.name {
				continue
			}
			rps = append(rps, s.res.rps)
			p50 = append(p50, float64(s.res.p50))
			p99 = append(p99, float64(s.res.p99))
			if s.res.requests > 0 {
				cpu = append(cpu, s.cpu/float64(s.res.requests)*1e5)
				if s.hasBackend {
					backendCPU = append(backendCPU, s.backendCPU/float64(s.res.requests)*1e5)
				}
			}
			ours = append(ours, s.oursCPU)
			gen = append(gen, s.genCPU)
			genOther = append(genOther, s.genOther)
			other = append(other, s.otherCPU)
			st.errors += s.res.errors
			st.requests += s.res.requests
		}
		if len(rps) == 0 {
			continue
		}
		st.rounds = len(rps)
		st.rps, st.rpsMin, st.rpsMax = median(rps), slices.Min(rps), slices.Max(rps)
		st.p50, st.p99 = time.Duration(median(p50)), time.Duration(median(p99))
		st.cpuPer100k, st.haveCPU = median(cpu), len(cpu) > 0
		st.backendPer100k = median(backendCPU)
		st.oursCPU, st.otherCPU = median(ours), median(other)
		st.genCPU, st.genOther = median(gen), median(genOther)
		out = append(out, st)
	}
	return out
}

func find(ss []stat, name string) *stat {
	for i := range ss {
		if ss[i].target == name {
			return &ss[i]
		}
	}
	return nil
}

// ratio formats a/b as "1.23×", or "–" when b is missing.
func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func (r *report) markdown() string {
	o := r.o
	var b strings.Builder
	mode := "full"
	if o.smoke {
		mode = "smoke (development; not comparable to full runs)"
	}
	fmt.Fprintf(&b, "### %s — %s run\n\n", r.start.Format("2006-01-02 15:04 UTC"), mode)
	fmt.Fprintf(&b, "Command: `%s`\n\n", o.command)
	fmt.Fprintf(&b, "- %s\n", strings.Join(r.versions, "\n- "))
	fmt.Fprintf(&b, "- load average (1, 5, 15 min) before: %s; after: %s; run took %s\n",
		r.loadBefore, r.loadAfter, r.end.Sub(r.start).Round(time.Second))
	fmt.Fprintf(&b, "- %s; %d interleaved round(s) of %s per target and load, each after a %s warm-up\n", pinningLine(o), o.rounds, o.duration, o.warmup)
	fmt.Fprintf(&b, "- %s\n", sessionLine())
	if accessLogs {
		b.WriteString("- access logs on (`-access-log`): every proxy logs each request to a file in the output directory, as its line below says\n")
	}
	for _, t := range r.targets {
		if t.notes != "" {
			fmt.Fprintf(&b, "- %s: %s\n", t.name, t.notes)
		}
	}
	if line := speedLine(r.samples, o.serverCPU); line != "" {
		b.WriteString(line + "\n")
	}
	b.WriteString("\n")
	for _, l := range o.loads {
		ss := r.stats(l.name)
		if len(ss) == 0 {
			continue
		}
		ng, direct := find(ss, "nginx"), find(ss, "direct")
		fmt.Fprintf(&b, "#### %s\n\n", l.title)
		b.WriteString("| server | req/s (median) | min–max | × nginx | × direct | p50 ms | p99 ms | p99 × nginx | CPU s / 100k req | × nginx | × direct | backend's CPU s / 100k req | both × nginx's | errors | CPU " + o.serverCPU + ": servers / others | CPU " + o.loadCPU + ": generator / others |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range ss {
			var ngRPS, ngP99, ngCPU, ngBoth, dRPS, dCPU float64
			if ng != nil {
				ngRPS, ngP99, ngCPU, ngBoth = ng.rps, float64(ng.p99), ng.cpuPer100k, ng.cpuPer100k+ng.backendPer100k
			}
			if direct != nil {
				dRPS, dCPU = direct.rps, direct.cpuPer100k
			}
			backend, both := "–", "–"
			if s.backendPer100k > 0 {
				backend = fmt.Sprintf("%.2f", s.backendPer100k)
				if ng != nil && ng.backendPer100k > 0 {
					both = ratio(s.cpuPer100k+s.backendPer100k, ngBoth)
				}
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.0f–%.0f (%.0f %%) | %s | %s | %s | %s | %s | %.2f | %s | %s | %s | %s | %d | %.0f / %.0f %% | %.0f / %.0f %% |\n",
				s.target, s.rps, s.rpsMin, s.rpsMax, 100*(s.rpsMax-s.rpsMin)/s.rps, ratio(s.rps, ngRPS), ratio(s.rps, dRPS),
				ms(s.p50), ms(s.p99), ratio(float64(s.p99), ngP99), s.cpuPer100k, ratio(s.cpuPer100k, ngCPU), ratio(s.cpuPer100k, dCPU),
				backend, both, s.errors, 100*s.oursCPU, 100*s.otherCPU, 100*s.genCPU, 100*s.genOther)
		}
		b.WriteString("\n")
	}
	if len(r.rss) > 0 {
		b.WriteString("#### Memory (summed over the server's processes: the peak over the whole run, and what was resident after the last round, anonymous memory apart from pages of files such as the binary, which the page cache shares and can drop)\n\n")
		b.WriteString("| server | processes | peak RSS MiB | × nginx | × direct | resident after: anonymous MiB | × nginx | files MiB |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
		ng, direct := float64(r.rss["nginx"].bytes), float64(r.rss["direct"].bytes)
		ngAnon := float64(r.rss["nginx"].anon)
		for _, t := range r.targets {
			m := r.rss[t.name]
			fmt.Fprintf(&b, "| %s | %d | %.1f | %s | %s | %.1f | %s | %.1f |\n", t.name, m.procs, mib(m.bytes), ratio(float64(m.bytes), ng), ratio(float64(m.bytes), direct),
				mib(m.anon), ratio(float64(m.anon), ngAnon), mib(m.file))
		}
		b.WriteString("\n")
	}
	if len(r.reloads) > 0 {
		sort.SliceStable(r.reloads, func(i, j int) bool { return r.reloads[i].routes < r.reloads[j].routes })
		b.WriteString("#### Reloads (a manifest file renamed into place → the first 200 from the route only the new version has; each change 100 ms after the previous one served)\n\n")
		b.WriteString("| GatewayRoutes | startup to serving | reloads timed idle | median | max | reloads under load | median | max | requests under load | not 200 |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, rl := range r.reloads {
			under, reqs, fails := "–", "–", "–"
			if len(rl.underLoad) > 0 {
				under = fmt.Sprint(len(rl.underLoad))
				reqs = fmt.Sprint(rl.requests)
				fails = fmt.Sprint(rl.failures())
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", rl.routes, rl.startup.Round(time.Millisecond),
				len(rl.idle), dur(percentile(rl.idle, 0.5)), dur(percentile(rl.idle, 1)),
				under, dur(percentile(rl.underLoad, 0.5)), dur(percentile(rl.underLoad, 1)), reqs, fails)
		}
		b.WriteString("\n")
		for _, rl := range r.reloads {
			if len(rl.outcomes) == 0 {
				continue
			}
			keys := make([]string, 0, len(rl.outcomes))
			for k := range rl.outcomes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(&b, "Failures under load at %d routes:", rl.routes)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s ×%d;", k, rl.outcomes[k])
			}
			b.WriteString("\n\n")
		}
	}
	if p := r.profile; p != nil {
		fmt.Fprintf(&b, "#### Where meshgate's CPU goes (%s, %.0f req/s while profiled; %s of samples)\n\n", p.load.title, p.rps, p.total)
		b.WriteString("| category (first match wins, in the order of bench/profile.go) | share |\n|---|--:|\n")
		for _, c := range p.categories {
			fmt.Fprintf(&b, "| %s | %s |\n", c.name, pct(c.value, p.total))
		}
		file := p.file
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, file); err == nil && !strings.HasPrefix(rel, "..") {
				file = rel
			}
		}
		fmt.Fprintf(&b, "\nProfile: `%s` (`go tool pprof -top`, `-top -cum` next to it; bench/out is not committed).\n\n", file)
	}
	if len(r.errs) > 0 {
		b.WriteString("Problems during the run:\n\n")
		for _, e := range r.errs {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func dur(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	if d < time.Second {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// historyMarker is the line of BENCHMARKS.md under which runs are recorded,
// newest first.
const historyMarker = "<!-- bench/run.sh -record inserts runs below this line, newest first -->"

func record(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, historyMarker)
	if i < 0 {
		return fmt.Errorf("%s has no line %q", path, historyMarker)
	}
	i += len(historyMarker)
	s = s[:i] + "\n\n" + strings.TrimSpace(md) + "\n" + s[i:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// pinningLine says which CPU ran what.
func pinningLine(o *options) string {
	gen := fmt.Sprintf("load generators (wrk -t1, h2load -t1) and the runner pinned to CPU %s", o.loadCPU)
	switch o.backendCPU {
	case o.serverCPU:
		return gen + fmt.Sprintf("; every proxy and the backend pinned to CPU %s", o.serverCPU)
	case o.loadCPU:
		return fmt.Sprintf("load generators (wrk -t1, h2load -t1), the runner and the backend pinned to CPU %s (`-backend-cpu`; \"others\" there includes the backend); every proxy pinned to CPU %s, alone", o.loadCPU, o.serverCPU)
	}
	return gen + fmt.Sprintf("; every proxy pinned to CPU %s; the backend to CPU %s (`-backend-cpu`)", o.serverCPU, o.backendCPU)
}

// sessionLine says how the servers were grouped for the kernel's scheduler.
func sessionLine() string {
	auto := "off"
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err == nil && strings.TrimSpace(string(b)) == "1" {
		auto = "on"
	}
	if ownSessions {
		return "each server in a session of its own (`-sessions`); the kernel's autogroup scheduling is " + auto
	}
	return "every server in the runner's session; the kernel's autogroup scheduling is " + auto
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
