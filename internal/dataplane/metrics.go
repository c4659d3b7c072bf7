package dataplane

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *requestCollector
	conns    *prometheus.GaugeVec
	res      *resMetrics
}

// durationBuckets are the upper bounds of meshgate_request_duration_seconds.
var durationBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// requestCollector holds meshgate_requests_total and
// meshgate_request_duration_seconds. A request counts with two atomic adds
// and a bucket's: client_golang's Counter and Histogram took ~100 ns per
// request together (a compare-and-swap loop for the float sum, a hot and
// a cold copy of the counts so that a scrape reads them consistently),
// several per cent of the proxy's own work. A scrape reads each count once,
// so a histogram's buckets and count agree, and its sum may lack a request
// being counted meanwhile.
type requestCollector struct {
	requestsDesc, durationDesc *prometheus.Desc

	mu        sync.RWMutex
	series    map[seriesKey]*series
	durations map[durationKey]*durationSeries
}

type seriesKey struct {
	gateway, route, service, node string
	code                          int
}

// durationKey is a seriesKey without the code: the histogram's labels.
type durationKey struct{ gateway, route, service, node string }

// series counts the requests of one label set, and times them in the
// histogram it shares with the set's other codes.
type series struct {
	requests atomic.Uint64
	duration *durationSeries
}

type durationSeries struct {
	buckets [len(durationBuckets) + 1]atomic.Uint64 // the last: above every bound
	sum     atomic.Int64                            // nanoseconds
}

func (d *durationSeries) observe(elapsed time.Duration) {
	s := elapsed.Seconds()
	i := 0
	for i < len(durationBuckets) && s > durationBuckets[i] {
		i++
	}
	d.buckets[i].Add(1)
	d.sum.Add(int64(elapsed))
}

func newRequestCollector() *requestCollector {
	return &requestCollector{
		requestsDesc: prometheus.NewDesc("meshgate_requests_total",
			"Requests served by the gateway, by gateway route, virtual service, virtual node and response code.",
			[]string{"gateway", "gateway_route", "virtual_service", "virtual_node", "code"}, nil),
		durationDesc: prometheus.NewDesc("meshgate_request_duration_seconds",
			"Time from receiving a request to finishing its response.",
			[]string{"gateway", "gateway_route", "virtual_service", "virtual_node"}, nil),
		series:    map[seriesKey]*series{},
		durations: map[durationKey]*durationSeries{},
	}
}

func (c *requestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requestsDesc
	ch <- c.durationDesc
}

func (c *requestCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, s := range c.series {
		ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(s.requests.Load()),
			k.gateway, k.route, k.service, k.node, codeLabel(k.code))
	}
	for k, d := range c.durations {
		buckets := make(map[float64]uint64, len(durationBuckets))
		var count uint64
		for i, bound := range durationBuckets {
			count += d.buckets[i].Load()
			buckets[bound] = count
		}
		count += d.buckets[len(durationBuckets)].Load()
		ch <- prometheus.MustNewConstHistogram(c.durationDesc, count, time.Duration(d.sum.Load()).Seconds(), buckets,
			k.gateway, k.route, k.service, k.node)
	}
}

// get returns the series of k, made when new.
func (c *requestCollector) get(k seriesKey) *series {
	c.mu.RLock()
	s := c.series[k]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s = c.series[k]; s != nil {
		return s
	}
	dk := durationKey{k.gateway, k.route, k.service, k.node}
	d := c.durations[dk]
	if d == nil {
		d = new(durationSeries)
		c.durations[dk] = d
	}
	s = &series{duration: d}
	c.series[k] = s
	return s
}

// value is the count of requests of k, for tests.
func (c *requestCollector) value(k seriesKey) uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if s := c.series[k]; s != nil {
		return s.requests.Load()
	}
	return 0
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: newRequestCollector(),
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
	s := (*series)(nil)
	if last != nil && last.s != nil && last.key == k {
		s = last.s
	} else {
		s = m.requests.get(k)
		if last != nil {
			last.key, last.s = k, s
		}
	}
	s.requests.Add(1)
	s.duration.observe(elapsed)
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
