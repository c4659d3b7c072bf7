package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/bench/manifests"
)

// reloadResult is what the reload phase measured at one route count.
type reloadResult struct {
	routes  int
	startup time.Duration // process start to the first route serving
	idle    []time.Duration
	// underLoad are the change-to-serving times of the reloads made while
	// the load loop ran; empty when no error test ran at this size.
	underLoad []time.Duration
	requests  int64            // requests the load loop completed
	outcomes  map[string]int64 // every outcome but 200, counted
}

func (r reloadResult) failures() int64 {
	var n int64
	for _, v := range r.outcomes {
		n += v
	}
	return n
}

// measureReloads starts a meshgate on a generated set of routes GatewayRoutes
// and times, for each new generation of the reload file, the moment of the
// rename on disk to the first 200 from the route only that generation has.
// With errorTest it then does o.reloads more while a load loop requests a
// route whose target changes at every reload, counting every answer that is
// not a 200.
func measureReloads(ctx context.Context, o *options, routes int, errorTest bool, backend int) (reloadResult, error) {
	res := reloadResult{routes: routes, outcomes: map[string]int64{}}
	t0 := time.Now()
	m, err := startMeshgate(ctx, o.meshgate, o.out, o.serverCPU, fmt.Sprintf("reload-%d", routes), routes, backend, nil, manifests.ReloadFile(0))
	if m != nil {
		defer m.proc.stop()
	}
	if err != nil {
		return res, err
	}
	res.startup = time.Since(t0)
	log.Printf("reloads at %d routes: serving after %v", routes, res.startup.Round(time.Millisecond))
	client := &http.Client{Timeout: 10 * time.Second}
	gen := 0
	samples := o.reloadSamples
	if routes > 1000 {
		samples = min(samples, 3)
	}
	for range samples {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		gen++
		d, err := reloadOnce(ctx, client, m, gen)
		if err != nil {
			return res, err
		}
		res.idle = append(res.idle, d)
		log.Printf("reloads at %d routes: generation %d served %v after the change", routes, gen, d.Round(time.Millisecond))
	}
	if !errorTest {
		return res, nil
	}
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stats := newLoadStats()
	loadLoop(lctx, &wg, m.h1+manifests.HotPath, 16, stats)
	time.Sleep(500 * time.Millisecond) // the loop's connections are up
	for i := range o.reloads {
		if ctx.Err() != nil {
			break
		}
		gen++
		d, err := reloadOnce(ctx, client, m, gen)
		if err != nil {
			stop()
			wg.Wait()
			return res, err
		}
		res.underLoad = append(res.underLoad, d)
		if (i+1)%10 == 0 {
			log.Printf("reloads at %d routes under load: %d/%d, %d requests, %d not 200", routes, i+1, o.reloads, stats.total.Load(), stats.failures())
		}
	}
	time.Sleep(500 * time.Millisecond) // requests in flight across the last swap finish
	stop()
	wg.Wait()
	res.requests = stats.total.Load()
	res.outcomes = stats.snapshot()
	return res, ctx.Err()
}

// reloadPause is the quiet spell before each timed change.
const reloadPause = 100 * time.Millisecond

// reloadOnce writes generation gen of the reload file and polls until its
// probe route answers; until then the catch-all answers with another body.
//
// Each change comes reloadPause after the previous one was served, as an
// operator's edits do: back to back, the watcher's coalescing of changes
// within 50 ms of a reload would be timed instead of the reload.
func reloadOnce(ctx context.Context, c *http.Client, m *meshgate, gen int) (time.Duration, error) {
	time.Sleep(reloadPause)
	url := m.h1 + manifests.ProbePath(gen)
	start := time.Now()
	if err := manifests.WriteDir(m.dir, manifests.ReloadFile(gen)); err != nil {
		return 0, err
	}
	deadline := start.Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		res, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK && string(b) == probeBody {
				return time.Since(start), nil
			}
		}
		if m.proc.exited() {
			return 0, fmt.Errorf("meshgate exited during a reload; see %s", m.proc.log.Name())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("generation %d not served 15 minutes after the change", gen)
}

// loadStats counts the load loop's outcomes.
type loadStats struct {
	total atomic.Int64
	mu    sync.Mutex
	other map[string]int64
}

func newLoadStats() *loadStats { return &loadStats{other: map[string]int64{}} }

func (s *loadStats) add(outcome string) {
	s.mu.Lock()
	s.other[outcome]++
	s.mu.Unlock()
}

func (s *loadStats) failures() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, v := range s.other {
		n += v
	}
	return n
}

func (s *loadStats) snapshot() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for k, v := range s.other {
		out[k] = v
	}
	return out
}

// loadLoop runs workers keep-alive clients requesting url until ctx is done.
func loadLoop(ctx context.Context, wg *sync.WaitGroup, url string, workers int, s *loadStats) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				res, err := c.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					s.total.Add(1)
					s.add(classify(err))
					continue
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				s.total.Add(1)
				switch {
				case err != nil:
					s.add("body: " + classify(err))
				case res.StatusCode != http.StatusOK:
					s.add(strconv.Itoa(res.StatusCode) + " " + http.StatusText(res.StatusCode))
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		wg.Wait()
		tr.CloseIdleConnections()
	}()
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	msg := err.Error()
	for _, k := range []string{"connection reset", "connection refused", "broken pipe"} {
		if strings.Contains(msg, k) {
			return k
		}
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
