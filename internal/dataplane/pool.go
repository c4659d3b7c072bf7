package dataplane

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/ir"
)

// Connection pools (reference §4.5). A pool bounds the requests in flight
// through it and, optionally, how many more may wait for a slot; a request
// beyond both gets 503 (gRPC: UNAVAILABLE) at once, never an unbounded queue.
//
// Toward a VirtualNode listener (upstream), counted across its endpoints:
// http: maxConnections requests in flight (an HTTP/1.1 connection carries one
// request at a time, so this bounds the connections in use), up to
// maxPendingRequests more waiting; http2/grpc: maxRequests in flight, none
// waiting. Each attempt of a retried request takes a slot of its own.
//
// At a VirtualGateway listener (downstream) the same limits count the
// requests the port serves at once, across all its client connections, so
// that one limit means the same for HTTP/1.1 and multiplexed HTTP/2 clients.
//
// A tcp pool (maxConnections) can only belong to a tcp listener, which a
// gateway never sends to; it is kept in the IR for the xDS sink.

// limiter is one pool's counters. It outlives configs: a reload that keeps
// the pool changes its limits in place, so requests in flight stay counted.
type limiter struct {
	limited atomic.Bool // false: admit without counting

	mu         sync.Mutex
	max        int // requests in flight; 0 is no limit
	maxPending int // requests waiting for a slot
	active     int
	waiters    []chan struct{} // FIFO; a closed channel hands its waiter a slot
}

// setLimits applies a pool of the config (nil: unlimited) and wakes waiters
// that now fit.
func (l *limiter) setLimits(max, maxPending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.maxPending = max, maxPending
	l.limited.Store(max > 0)
	for len(l.waiters) > 0 && (l.max == 0 || l.active < l.max) {
		l.active++
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
	}
	for len(l.waiters) > l.maxPending && l.max > 0 {
		// Fewer may wait now: the newest waiters are refused.
		last := len(l.waiters) - 1
		l.waiters[last] <- struct{}{}
		l.waiters = l.waiters[:last]
	}
}

// acquire takes a slot, waiting while a pending place is free; ok is false
// when the pool is full or ctx ended while waiting. release gives the slot
// back and may be called any number of times.
func (l *limiter) acquire(ctx context.Context) (release func(), ok bool) {
	if !l.limited.Load() {
		return func() {}, true
	}
	l.mu.Lock()
	if l.max == 0 || l.active < l.max {
		l.active++
		l.mu.Unlock()
		return l.releaser(), true
	}
	if len(l.waiters) >= l.maxPending {
		l.mu.Unlock()
		return nil, false
	}
	// Buffered so that setLimits can refuse a waiter without blocking.
	ch := make(chan struct{}, 1)
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case _, open := <-ch:
		if !open {
			return l.releaser(), true
		}
		return nil, false
	case <-ctx.Done():
		l.mu.Lock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				l.mu.Unlock()
				return nil, false
			}
		}
		l.mu.Unlock()
		// Handed a slot (or refused) just as ctx ended.
		if _, open := <-ch; !open {
			l.releaser()()
		}
		return nil, false
	}
}

func (l *limiter) releaser() func() {
	var once sync.Once
	return func() { once.Do(l.release) }
}

func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waiters) > 0 && (l.max == 0 || l.active <= l.max) {
		// The slot passes to the oldest waiter: active stays the same.
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
		return
	}
	l.active--
}

// poolLimits is a pool's in-flight and pending limits for a listener protocol.
func poolLimits(p *ir.ConnectionPool) (max, maxPending int) {
	if p == nil {
		return 0, 0
	}
	if p.MaxRequests > 0 {
		return p.MaxRequests, 0
	}
	return p.MaxConnections, p.MaxPendingRequests
}

// listenerPools are the gateway listeners' pools by port, outside any config.
type listenerPools struct {
	mu    sync.Mutex // serialises update
	pools atomic.Pointer[map[int]*limiter]
}

// update applies the pools of gw's listeners; ports without one admit
// everything, and pools of ports that went away are forgotten.
func (lp *listenerPools) update(gw *ir.Gateway) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	old := lp.pools.Load()
	next := map[int]*limiter{}
	for _, l := range gw.Listeners {
		if l.Pool == nil {
			continue
		}
		var lim *limiter
		if old != nil {
			lim = (*old)[l.Port]
		}
		if lim == nil {
			lim = &limiter{}
		}
		lim.setLimits(poolLimits(l.Pool))
		next[l.Port] = lim
	}
	if old != nil {
		for port, lim := range *old {
			if next[port] == nil {
				lim.setLimits(0, 0) // lets its waiters through
			}
		}
	}
	lp.pools.Store(&next)
}

func (lp *listenerPools) get(port int) *limiter {
	if m := lp.pools.Load(); m != nil {
		return (*m)[port]
	}
	return nil
}

// admit takes a slot of the pool of the listener the request arrived on.
// When the pool is full it answers 503 itself and ok is false.
func (p *Plane) admit(e *exchange) (release func(), ok bool) {
	lim := p.up.listenerPools.get(e.port)
	if lim == nil {
		return func() {}, true
	}
	release, ok = lim.acquire(e.r.Context())
	if !ok {
		gateway := ""
		if e.snap != nil {
			gateway = e.snap.gateway
		}
		p.metrics.res.listenerOverflows.WithLabelValues(gateway, strconv.Itoa(e.port)).Inc()
		p.localReply(e, http.StatusServiceUnavailable, flagOverflow, "gateway listener overflow: port "+strconv.Itoa(e.port)+" is serving as many requests as its connectionPool allows")
		return nil, false
	}
	return release, true
}
