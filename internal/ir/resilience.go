package ir

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
	// Default marks App Mesh's implicit policy (the route had none).
	Default bool `json:"default,omitempty"`
}

// Timeout bounds a request; nil fields mean App Mesh's defaults.
type Timeout struct {
	// PerRequestMillis: default 15000, 0 disables.
	PerRequestMillis *int64 `json:"perRequestMillis,omitempty"`
	// IdleMillis: default none (routes), 300000 (listeners).
	IdleMillis *int64 `json:"idleMillis,omitempty"`
}

// ConnectionPool limits connections and requests.
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
