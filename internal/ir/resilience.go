package ir

import "fmt"

// Durations in this file are milliseconds, as App Mesh's health checks are written.

// RetryPolicy retries failed upstream attempts.
type RetryPolicy struct {
	MaxRetries int `json:"maxRetries"`
	// PerRetryTimeoutMillis bounds each attempt, the first included; 0 is none.
	PerRetryTimeoutMillis int64 `json:"perRetryTimeoutMillis"`
	// HTTPEvents are server-error, gateway-error, client-error, stream-error.
	HTTPEvents []string `json:"httpRetryEvents,omitempty"`
	// TCPEvents are connection-error.
	TCPEvents []string `json:"tcpRetryEvents,omitempty"`
	// GRPCEvents are cancelled, deadline-exceeded, internal,
	// resource-exhausted, unavailable.
	GRPCEvents []string `json:"grpcRetryEvents,omitempty"`
	// Default marks App Mesh's implicit policy (the route had none). It
	// retries what no event name describes on its own: HTTP 503, gRPC
	// UNAVAILABLE, a failed connect, a refused stream and a reset; its
	// event lists are empty.
	Default bool `json:"default,omitempty"`
}

// DefaultRetryPolicy is App Mesh's policy for a route that has none, and for
// the implicit route of a VirtualService whose provider is a VirtualNode
// (reference §3): two retries, no per-try timeout of its own.
func DefaultRetryPolicy() *RetryPolicy {
	return &RetryPolicy{MaxRetries: 2, Default: true}
}

// Timeout bounds a request; nil fields mean App Mesh's defaults.
type Timeout struct {
	// PerRequestMillis: default 15000, 0 disables.
	PerRequestMillis *int64 `json:"perRequestMillis,omitempty"`
	// IdleMillis: default none (routes), 300000 (listeners).
	IdleMillis *int64 `json:"idleMillis,omitempty"`
}

// ConnectionPool limits connections and requests; 0 is no limit.
type ConnectionPool struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
}

// HealthCheck is an active health check of an endpoint.
type HealthCheck struct {
	// Protocol is http, http2, grpc or tcp.
	Protocol           string `json:"protocol"`
	Path               string `json:"path,omitempty"`
	Port               int    `json:"port,omitempty"`
	IntervalMillis     int64  `json:"intervalMillis"`
	TimeoutMillis      int64  `json:"timeoutMillis"`
	HealthyThreshold   int    `json:"healthyThreshold"`
	UnhealthyThreshold int    `json:"unhealthyThreshold"`
}

// OutlierDetection ejects endpoints that keep answering 5xx.
type OutlierDetection struct {
	MaxServerErrors            int   `json:"maxServerErrors"`
	IntervalMillis             int64 `json:"intervalMillis"`
	BaseEjectionDurationMillis int64 `json:"baseEjectionDurationMillis"`
	MaxEjectionPercent         int   `json:"maxEjectionPercent"`
}

// NodeListenerPolicy is what a VirtualNode listener says about how its
// endpoints are called.
type NodeListenerPolicy struct {
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	Pool             *ConnectionPool   `json:"connectionPool,omitempty"`
	Timeout          *Timeout          `json:"timeout,omitempty"`
	TLS              *ListenerTLS      `json:"tls,omitempty"`
}

// validateResilience checks the values the data plane relies on: a health
// check with a zero interval would probe in a busy loop, a negative limit
// would refuse everything. Compile enforces App Mesh's tighter bounds.
func (c *Config) validateResilience(bad func(format string, a ...any)) {
	for _, g := range c.Gateways {
		for _, l := range g.Listeners {
			where := fmt.Sprintf("gateway %s port %d", g.Name, l.Port)
			l.Pool.validate(where, bad)
			l.HealthCheck.validate(where, bad)
		}
	}
	for name, r := range c.Routers {
		for _, rt := range r.Routes {
			where := fmt.Sprintf("virtual router %s route %s", name, rt.Name)
			if p := rt.Retry; p != nil && (p.MaxRetries < 0 || p.PerRetryTimeoutMillis < 0) {
				bad("%s: negative retry setting", where)
			}
			rt.Timeout.validate(where, bad)
		}
	}
	for name, n := range c.Nodes {
		for port, p := range n.Policies {
			if p == nil {
				continue
			}
			where := fmt.Sprintf("virtual node %s port %d", name, port)
			p.Pool.validate(where, bad)
			p.HealthCheck.validate(where, bad)
			p.Timeout.validate(where, bad)
			if o := p.OutlierDetection; o != nil {
				if o.MaxServerErrors < 1 || o.IntervalMillis <= 0 || o.BaseEjectionDurationMillis < 0 || o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
					bad("%s: outlier detection needs maxServerErrors >= 1, an interval > 0, a base ejection >= 0 and a percent 0..100", where)
				}
			}
		}
	}
}

func (p *ConnectionPool) validate(where string, bad func(string, ...any)) {
	if p != nil && (p.MaxConnections < 0 || p.MaxPendingRequests < 0 || p.MaxRequests < 0) {
		bad("%s: negative connection pool limit", where)
	}
}

func (h *HealthCheck) validate(where string, bad func(string, ...any)) {
	if h != nil && (h.IntervalMillis <= 0 || h.TimeoutMillis <= 0 || h.HealthyThreshold < 1 || h.UnhealthyThreshold < 1) {
		bad("%s: health check needs an interval and a timeout > 0 and thresholds >= 1", where)
	}
}

func (t *Timeout) validate(where string, bad func(string, ...any)) {
	if t == nil {
		return
	}
	if (t.PerRequestMillis != nil && *t.PerRequestMillis < 0) || (t.IdleMillis != nil && *t.IdleMillis < 0) {
		bad("%s: negative timeout", where)
	}
}
