package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clkTck = 100

// process is a server the runner started, pinned to the server CPU.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed once the process has exited and been reaped
}

// ownSessions starts each server in a session of its own (-sessions), as
// separate services run. Where the kernel groups tasks by session for
// scheduling (autogroup), the servers are then scheduled as groups apart
// instead of as one, and a server and its backend on one CPU take turns
// differently (BENCHMARKS.md, Finding 25).
var ownSessions bool

// start runs argv pinned to cpu with taskset, in a process group of its own
// so that stop reaches its workers too, with stdout and stderr in logPath.
func start(name, cpu, logPath string, env []string, argv ...string) (*process, error) {
	// Appended to, so that the runner may empty it while it is written.
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpu}, argv...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if ownSessions {
		// A session leader leads its process group too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// pid is the server's own PID: taskset execs the command in place.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop ends the process group this runner created: SIGTERM, then SIGKILL
// after a grace period.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// exited reports whether the process has already ended (a startup failure).
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tree returns pid and all its descendants (an nginx master and its workers).
func tree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(p)
		if err != nil {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name:
// [0] is state, [1] ppid, [11] utime, [12] stime.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// cpuTicks is utime+stime of pid and its descendants, all threads included.
func cpuTicks(pid int) int64 {
	var sum int64
	for _, p := range tree(pid) {
		f, err := statFields(p)
		if err != nil {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		sum += u + s
	}
	return sum
}

// memoryOf sums, over pid and its descendants, the peak resident memory
// (VmHWM) and what is resident now, apart: anonymous memory (heap, stacks)
// and pages of files (the binary and its libraries), which the page cache
// shares and can drop.
func memoryOf(pid int) rssInfo {
	var m rssInfo
	for _, p := range tree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		m.procs++
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name, v, _ := strings.Cut(sc.Text(), ":")
			var sum *int64
			switch name {
			case "VmHWM":
				sum = &m.bytes
			case "RssAnon":
				sum = &m.anon
			case "RssFile":
				sum = &m.file
			default:
				continue
			}
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			*sum += kb << 10
		}
		f.Close()
	}
	return m
}

// cpuBusy is the busy and total jiffies of one CPU from /proc/stat.
func cpuBusy(cpu string) (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "cpu"+cpu {
			continue
		}
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
	}
	return busy, total
}

// freePort returns a loopback TCP port nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var ps []int
	for len(ps) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// writeFile writes a server's config into the run directory.
func writeFile(dir, name, content string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(content), 0o644)
}
