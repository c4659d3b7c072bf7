package dataplane

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	conns    *prometheus.GaugeVec
	res      *resMetrics

	// handles keeps the request series of each label set: looking them
	// up in the vectors (hashing and checking every label value) cost
	// more per request than the rest of the bookkeeping. The vectors
	// never delete these series, so a handle stays valid.
	mu      sync.RWMutex
	handles map[seriesKey]*series
}

type seriesKey struct {
	gateway, route, service, node string
	code                          int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_requests_total",
			Help: "Requests served by the gateway, by gateway route, virtual service, virtual node and response code.",
		}, []string{"gateway", "gateway_route", "virtual_service", "virtual_node", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meshgate_request_duration_seconds",
			Help:    "Time from receiving a request to finishing its response.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"gateway", "gateway_route", "virtual_service", "virtual_node"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshgate_upstream_connections",
			Help: "Open connections to upstream endpoints, by virtual node.",
		}, []string{"virtual_node"}),
	}
	res, resErr := newResMetrics(reg)
	if resErr != nil {
		return nil, resErr
	}
	m.res = res
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.conns, err = register(reg, m.conns); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg; when an identical collector is already there (a
// second Plane on the same registry) that one is shared instead.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// lastSeries remembers the series a connection's previous request counted
// in: the next one usually counts in the same, and comparing its labels
// costs less than the map lookup and its lock.
type lastSeries struct {
	key seriesKey
	s   *series
}

// observe counts a request; last, when not nil, is its connection's.
func (m *metrics) observe(last *lastSeries, gateway, route, service, node string, code int, elapsed time.Duration) {
	k := seriesKey{gateway, route, service, node, code}
	if last != nil && last.s != nil && last.key == k {
		last.s.requests.Inc()
		last.s.duration.Observe(elapsed.Seconds())
		return
	}
	m.mu.RLock()
	s := m.handles[k]
	m.mu.RUnlock()
	if s == nil {
		s = &series{
			requests: m.requests.WithLabelValues(gateway, route, service, node, codeLabel(code)),
			duration: m.duration.WithLabelValues(gateway, route, service, node),
		}
		m.mu.Lock()
		if m.handles == nil {
			m.handles = map[seriesKey]*series{}
		}
		m.handles[k] = s
		m.mu.Unlock()
	}
	if last != nil {
		last.key, last.s = k, s
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

// codeLabels avoids formatting the status code of every request.
var codeLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func codeLabel(code int) string {
	if code >= 0 && code < len(codeLabels) {
		return codeLabels[code]
	}
	return strconv.Itoa(code)
}
