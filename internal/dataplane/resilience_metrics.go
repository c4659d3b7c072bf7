package dataplane

import "github.com/prometheus/client_golang/prometheus"

// Response flags of the resilience mechanisms, as Envoy writes them.
const (
	flagOverflow   = "UO" // a connection pool was full
	flagStreamIdle = "SI" // the stream was idle longer than its idle timeout
)

// resMetrics counts what retries, pools, health checks and outlier
// detection did. Endpoint labels are "IP:PORT".
type resMetrics struct {
	retries           *prometheus.CounterVec
	upstreamOverflows *prometheus.CounterVec
	listenerOverflows *prometheus.CounterVec
	ejections         *prometheus.CounterVec
	healthy           *prometheus.GaugeVec
}

func newResMetrics(reg prometheus.Registerer) (*resMetrics, error) {
	m := &resMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_upstream_retries_total",
			Help: "Upstream attempts retried, by virtual node and what the failed attempt got (connect-failure, reset, refused-stream, per-try-timeout, an HTTP status, grpc-NAME).",
		}, []string{"virtual_node", "reason"}),
		upstreamOverflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_upstream_overflows_total",
			Help: "Requests refused with 503 because the connection pool of the virtual node listener was full.",
		}, []string{"virtual_node"}),
		listenerOverflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_listener_overflows_total",
			Help: "Requests refused with 503 because the connection pool of the gateway listener was full.",
		}, []string{"gateway", "port"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_upstream_ejections_total",
			Help: "Endpoints ejected by outlier detection.",
		}, []string{"virtual_node", "endpoint"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshgate_upstream_endpoint_healthy",
			Help: "1 when the endpoint passes its active health check, 0 when it fails it; only health-checked endpoints.",
		}, []string{"virtual_node", "endpoint"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.upstreamOverflows, err = register(reg, m.upstreamOverflows); err != nil {
		return nil, err
	}
	if m.listenerOverflows, err = register(reg, m.listenerOverflows); err != nil {
		return nil, err
	}
	if m.ejections, err = register(reg, m.ejections); err != nil {
		return nil, err
	}
	if m.healthy, err = register(reg, m.healthy); err != nil {
		return nil, err
	}
	return m, nil
}
