package compile

import (
	"fmt"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
)

// The IR of retry policies, timeouts, connection pools, health checks and
// outlier detection (reference §3, §4.2, §4.5-§4.7). The checks are done
// where each field is read; these functions only convert what passed them.

// maxPendingDefault is the App Mesh API's default for
// connectionPool.http.maxPendingRequests (§1.0).
const maxPendingDefault = 2147483647

// millis is an App Mesh duration in milliseconds.
func millis(d v1beta2.Duration) int64 {
	if d.Unit == v1beta2.DurationUnitS {
		return d.Value * 1000
	}
	return d.Value
}

func optMillis(d *v1beta2.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := millis(*d)
	return &ms
}

// timeoutIR is nil when neither bound is written, so that the data plane's
// defaults apply.
func timeoutIR(perRequest, idle *v1beta2.Duration) *ir.Timeout {
	if perRequest == nil && idle == nil {
		return nil
	}
	return &ir.Timeout{PerRequestMillis: optMillis(perRequest), IdleMillis: optMillis(idle)}
}

// retryIR is a written retry policy.
func retryIR(grpcEvents, httpEvents, tcpEvents []string, maxRetries int64, perRetry v1beta2.Duration) *ir.RetryPolicy {
	return &ir.RetryPolicy{
		MaxRetries:            int(maxRetries),
		PerRetryTimeoutMillis: millis(perRetry),
		HTTPEvents:            httpEvents,
		TCPEvents:             tcpEvents,
		GRPCEvents:            grpcEvents,
	}
}

// httpRouteResilience fills an httpRoute's or http2Route's retry policy and timeout.
func (c *compiler) httpRouteResilience(st *state, ri *routeInfo, r *v1beta2.HTTPRoute) {
	ri.route.Retry = ir.DefaultRetryPolicy()
	if p := r.RetryPolicy; p != nil {
		ri.route.Retry = retryIR(nil, p.HTTPRetryEvents, p.TCPRetryEvents, p.MaxRetries, p.PerRetryTimeout)
	}
	if r.Timeout != nil {
		ri.route.Timeout = timeoutIR(r.Timeout.PerRequest, r.Timeout.Idle)
	}
	noteRetryBudget(st, ri)
}

// grpcRouteResilience fills a grpcRoute's retry policy and timeout.
func (c *compiler) grpcRouteResilience(st *state, ri *routeInfo, r *v1beta2.GRPCRoute) {
	ri.route.Retry = ir.DefaultRetryPolicy()
	if p := r.RetryPolicy; p != nil {
		ri.route.Retry = retryIR(p.GRPCRetryEvents, p.HTTPRetryEvents, p.TCPRetryEvents, p.MaxRetries, p.PerRetryTimeout)
	}
	if r.Timeout != nil {
		ri.route.Timeout = timeoutIR(r.Timeout.PerRequest, r.Timeout.Idle)
	}
	noteRetryBudget(st, ri)
}

// noteRetryBudget says when the request timeout cannot fit the attempts
// the retry policy allows: App Mesh asks for a route timeout of at least
// perRetryTimeout × maxRetries (reference §3), and the request timeout spans
// every attempt, so later retries would be cut short. The route's timeout
// is compared, else App Mesh's 15 s default (the target node's listener
// timeout may raise it; it is not known here).
func noteRetryBudget(st *state, ri *routeInfo) {
	p := ri.route.Retry
	if p.Default || p.PerRetryTimeoutMillis == 0 || p.MaxRetries == 0 {
		return
	}
	timeout, what := int64(15000), "the default request timeout of 15s"
	if t := ri.route.Timeout; t != nil && t.PerRequestMillis != nil {
		timeout, what = *t.PerRequestMillis, fmt.Sprintf("timeout.perRequest (%dms)", *t.PerRequestMillis)
	}
	if budget := p.PerRetryTimeoutMillis * int64(p.MaxRetries); timeout > 0 && timeout < budget {
		st.note(fmt.Sprintf("%s: %s is shorter than perRetryTimeout × maxRetries (%dms); the request timeout spans every attempt, so later retries are cut short",
			ri.typeField, what, budget))
	}
}

// tcpRouteTimeout is a tcpRoute's idle timeout. TCP routes have no retry policy.
func tcpRouteTimeout(t *v1beta2.TCPTimeout) *ir.Timeout {
	if t == nil {
		return nil
	}
	return timeoutIR(nil, t.Idle)
}

func healthCheckIR(hc *v1beta2.HealthCheckPolicy) *ir.HealthCheck {
	if hc == nil {
		return nil
	}
	out := &ir.HealthCheck{
		Protocol:           string(hc.Protocol),
		IntervalMillis:     hc.IntervalMillis,
		TimeoutMillis:      hc.TimeoutMillis,
		HealthyThreshold:   int(hc.HealthyThreshold),
		UnhealthyThreshold: int(hc.UnhealthyThreshold),
	}
	if hc.Path != nil {
		out.Path = *hc.Path
	}
	if hc.Port != nil {
		out.Port = int(*hc.Port)
	}
	return out
}

func poolIR(tcp *v1beta2.TCPConnectionPool, http *v1beta2.HTTPConnectionPool, http2 *v1beta2.HTTP2ConnectionPool, grpc *v1beta2.GRPCConnectionPool) *ir.ConnectionPool {
	switch {
	case tcp != nil:
		return &ir.ConnectionPool{MaxConnections: int(tcp.MaxConnections)}
	case http != nil:
		p := &ir.ConnectionPool{MaxConnections: int(http.MaxConnections), MaxPendingRequests: maxPendingDefault}
		if http.MaxPendingRequests != nil {
			p.MaxPendingRequests = int(*http.MaxPendingRequests)
		}
		return p
	case http2 != nil:
		return &ir.ConnectionPool{MaxRequests: int(http2.MaxRequests)}
	case grpc != nil:
		return &ir.ConnectionPool{MaxRequests: int(grpc.MaxRequests)}
	}
	return nil
}

// nodeListenerResilience fills the health check, outlier detection,
// connection pool and timeout of one VirtualNode listener into the node's
// policy for that port, creating the policy only when there is something
// to say.
func nodeListenerResilience(n *ir.VirtualNode, l *v1beta2.Listener) {
	hc := healthCheckIR(l.HealthCheck)
	var od *ir.OutlierDetection
	if o := l.OutlierDetection; o != nil {
		od = &ir.OutlierDetection{
			MaxServerErrors:            int(o.MaxServerErrors),
			IntervalMillis:             millis(o.Interval),
			BaseEjectionDurationMillis: millis(o.BaseEjectionDuration),
			MaxEjectionPercent:         int(o.MaxEjectionPercent),
		}
	}
	var pool *ir.ConnectionPool
	if p := l.ConnectionPool; p != nil {
		pool = poolIR(p.TCP, p.HTTP, p.HTTP2, p.GRPC)
	}
	var t *ir.Timeout
	if lt := l.Timeout; lt != nil {
		switch {
		case lt.TCP != nil:
			t = timeoutIR(nil, lt.TCP.Idle)
		case lt.HTTP != nil:
			t = timeoutIR(lt.HTTP.PerRequest, lt.HTTP.Idle)
		case lt.HTTP2 != nil:
			t = timeoutIR(lt.HTTP2.PerRequest, lt.HTTP2.Idle)
		case lt.GRPC != nil:
			t = timeoutIR(lt.GRPC.PerRequest, lt.GRPC.Idle)
		}
	}
	if hc == nil && od == nil && pool == nil && t == nil {
		return
	}
	p := listenerPolicy(n, int(l.PortMapping.Port))
	p.HealthCheck, p.OutlierDetection, p.Pool, p.Timeout = hc, od, pool, t
}

// listenerPolicy returns the policy of n's listener on port, adding an empty
// one when the listener has none yet (resilience and TLS fill it in turn).
func listenerPolicy(n *ir.VirtualNode, port int) *ir.NodeListenerPolicy {
	if n.Policies == nil {
		n.Policies = map[int]*ir.NodeListenerPolicy{}
	}
	p := n.Policies[port]
	if p == nil {
		p = &ir.NodeListenerPolicy{}
		n.Policies[port] = p
	}
	return p
}

// gatewayListenerResilience fills the connection pool and health check of
// a VirtualGateway listener into the compiled listener of the same port.
func gatewayListenerResilience(g *ir.Gateway, l *v1beta2.VirtualGatewayListener) {
	for _, out := range g.Listeners {
		if out.Port != int(l.PortMapping.Port) {
			continue
		}
		if p := l.ConnectionPool; p != nil {
			out.Pool = poolIR(nil, p.HTTP, p.HTTP2, p.GRPC)
		}
		out.HealthCheck = healthCheckIR(l.HealthCheck)
		return
	}
}
