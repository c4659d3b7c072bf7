package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Active health checks (reference §4.2): each endpoint of a VirtualNode
// listener with a healthCheck is probed every interval, each probe bounded
// by the timeout. unhealthyThreshold failures in a row take the endpoint out
// of rotation and healthyThreshold successes in a row bring it back; a new
// endpoint is out until its first success, as in Envoy (one success suffices
// until it has been healthy once). While no endpoint of the listener is
// available every endpoint is used (cluster.pick).
//
// Probes go to the endpoint's own address: the healthCheck port must be the
// listener's port (compile checks it), and an endpoint given with --resolve
// is where that port is served. http and http2 probes GET the path ("/" when
// none is given) with the node's DNS hostname as Host, over HTTP/1.1 or
// cleartext HTTP/2, and pass on 200 only (Envoy's default); grpc probes call
// grpc.health.v1.Health/Check for the server as a whole ("" service) over
// cleartext HTTP/2 and pass on SERVING; tcp probes pass when a connection opens.

type checker struct {
	cancel context.CancelFunc
}

// restartCheck (re)starts the endpoint's health check with the cluster's
// current config, or stops it when there is none. A fresh endpoint starts
// out of rotation; one whose check only changed keeps its verdict. c.mu is held.
func (c *cluster) restartCheck(e *endpoint, fresh bool) {
	c.stopCheck(e)
	cfg := c.config()
	if cfg == nil || cfg.policy.HealthCheck == nil {
		e.healthy.Store(true)
		return
	}
	hc := *cfg.policy.HealthCheck
	ctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	e.checkGen++
	gen := e.checkGen
	if fresh {
		e.healthy.Store(false)
	}
	e.mu.Unlock()
	e.checker = &checker{cancel: cancel}
	go c.up.runCheck(ctx, c.node, cfg.hostname, cfg.tls, e, hc, gen, fresh)
}

// stopCheck stops the endpoint's health check; c.mu is held.
func (c *cluster) stopCheck(e *endpoint) {
	if e.checker == nil {
		return
	}
	e.checker.cancel()
	e.checker = nil
	e.mu.Lock()
	e.checkGen++ // a probe finishing now must not record its verdict
	e.mu.Unlock()
	c.up.metrics.res.healthy.DeleteLabelValues(c.node, e.addr)
}

func (u *upstreams) runCheck(ctx context.Context, node, host string, tlsCfg *tls.Config, e *endpoint, hc ir.HealthCheck, gen uint64, initial bool) {
	probe, closeProbe := u.prober(hc, host, e.addr, tlsCfg)
	defer closeProbe()
	interval := time.Duration(hc.IntervalMillis) * time.Millisecond
	timeout := time.Duration(hc.TimeoutMillis) * time.Millisecond
	gauge := u.metrics.res.healthy.WithLabelValues(node, e.addr)
	successes, failures := 0, 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		e.mu.Lock()
		if e.checkGen != gen {
			e.mu.Unlock()
			return
		}
		was := e.healthy.Load()
		now := was
		if err == nil {
			successes, failures = successes+1, 0
			if initial || successes >= hc.HealthyThreshold {
				now, initial = true, false
			}
		} else {
			successes, failures = 0, failures+1
			if failures >= hc.UnhealthyThreshold {
				now = false
			}
		}
		e.healthy.Store(now)
		if now {
			gauge.Set(1)
		} else {
			gauge.Set(0)
		}
		e.mu.Unlock()
		switch {
		case was && !now:
			u.log.Warn("endpoint failed its health check", "node", node, "endpoint", e.addr, "error", err)
		case !was && now:
			u.log.Info("endpoint passed its health check", "node", node, "endpoint", e.addr)
		}
		t.Reset(interval)
	}
}

// prober returns the probe of one endpoint and what releases its resources.
// With tlsCfg set, http, http2 and grpc probes speak TLS, as the proxied
// traffic does.
func (u *upstreams) prober(hc ir.HealthCheck, host, addr string, tlsCfg *tls.Config) (probe func(context.Context) error, release func()) {
	switch hc.Protocol {
	case "tcp":
		return func(ctx context.Context) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		}, func() {}
	case "grpc":
		return grpcProber(hc, host, addr, tlsCfg)
	}
	tr, scheme, release := u.checkH1, "http", func() {}
	switch {
	case tlsCfg != nil:
		tr, scheme = checkTLSTransport(hc.Protocol == "http2", tlsCfg), "https"
		release = tr.CloseIdleConnections
	case hc.Protocol == "http2":
		tr = u.checkH2
	}
	path := hc.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if host == "" {
		host = addr
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
		if err != nil {
			return err
		}
		req.Host = host
		req.Header.Set("User-Agent", "meshgate-health-check")
		res, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("health check answered %d", res.StatusCode)
		}
		return nil
	}, release
}

// grpcProber keeps one client connection per endpoint, reconnecting at
// least once an interval so that a recovered server is seen at the next probe.
func grpcProber(hc ir.HealthCheck, host, addr string, tlsCfg *tls.Config) (func(context.Context) error, func()) {
	interval := time.Duration(hc.IntervalMillis) * time.Millisecond
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: min(interval, time.Second), Multiplier: 1.6, MaxDelay: interval},
			MinConnectTimeout: time.Duration(hc.TimeoutMillis) * time.Millisecond,
		}),
	}
	if host != "" {
		opts = append(opts, grpc.WithAuthority(host))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return func(context.Context) error { return err }, func() {}
	}
	client := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		res, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return errors.New("health check answered " + res.GetStatus().String())
		}
		return nil
	}, func() { conn.Close() }
}

// checkTransports are the health checks' own HTTP transports, apart from
// the proxy's so that probes neither count as upstream connections nor
// queue behind a full pool.
func checkTransports() (h1, h2 *http.Transport) {
	var p1, p2 http.Protocols
	p1.SetHTTP1(true)
	p2.SetUnencryptedHTTP2(true)
	mk := func(p *http.Protocols) *http.Transport {
		return &http.Transport{Protocols: p, MaxIdleConnsPerHost: 1, IdleConnTimeout: 5 * time.Minute, DisableCompression: true}
	}
	return mk(&p1), mk(&p2)
}

// checkTLSTransport is the transport of one endpoint's health check over TLS.
func checkTLSTransport(h2 bool, tlsCfg *tls.Config) *http.Transport {
	var p http.Protocols
	if h2 {
		p.SetHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	return &http.Transport{Protocols: &p, TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 1, IdleConnTimeout: 5 * time.Minute, DisableCompression: true}
}
