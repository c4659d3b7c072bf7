package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The machines these runs happen on are shared, and their speed swings
// within minutes: the same code can take 1.6 times as long. So before each
// measurement the runner times a fixed loop on the server CPU, while the
// servers are idle, and the report says how much that time moved over the
// run. A run whose loop times spread widely compares its targets less
// well, however many rounds it has.

// calibrateArg makes the runner time the loop, print nanoseconds and exit.
const calibrateArg = "-time-cpu"

// calibrate times a fixed mix of arithmetic, map operations and memory
// traffic, the kinds of work a proxy does: the best of three.
func calibrate() time.Duration {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	m := make(map[uint64]uint64, 1<<12)
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		h := uint64(14695981039346656037)
		for range 16 {
			for i := 0; i < len(buf); i += 64 {
				h = (h ^ uint64(buf[i])) * 1099511628211
				m[h&(1<<12-1)] += h
			}
		}
		best = min(best, time.Since(start))
	}
	return best
}

// timeCPU runs the loop in a process of its own pinned to cpu, after a
// pause that lets the servers finish with the connections of the run
// before.
func timeCPU(ctx context.Context, cpu string) (time.Duration, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(100 * time.Millisecond):
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	out, err := exec.CommandContext(ctx, "taskset", "-c", cpu, self, calibrateArg).Output()
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("calibration printed %q", out)
	}
	return time.Duration(ns), nil
}

// speedLine sums up the loop times of samples, "" when none were taken.
func speedLine(samples []sample, cpu string) string {
	var ds []float64
	for _, s := range samples {
		if s.speed > 0 {
			ds = append(ds, float64(s.speed))
		}
	}
	if len(ds) == 0 {
		return ""
	}
	lo, hi := slices.Min(ds), slices.Max(ds)
	ms := func(d float64) string { return strconv.FormatFloat(d/1e6, 'f', 2, 64) }
	return fmt.Sprintf("- speed of CPU %s: a fixed loop timed before each measurement took %s ms (median), %s–%s ms (%.0f %%); the wider that spread, the less the targets compare",
		cpu, ms(median(ds)), ms(lo), ms(hi), 100*(hi-lo)/lo)
}
