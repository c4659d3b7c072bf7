package dataplane

import (
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

// Outlier detection (reference §4.6), as Envoy's consecutive-5xx detector:
// an endpoint whose last maxServerErrors attempts all failed is ejected for
// baseEjectionDuration times the number of times it has been ejected. A
// failure is a 5xx status, a gRPC status Envoy maps to 5xx, or an attempt
// that got no response at all (connect failure, reset, timeout). Ejection is
// refused while it would put more than maxEjectionPercent of the listener's
// endpoints out, except that one endpoint may always be ejected. The
// multiplier decays by one for every interval the endpoint spends back in
// rotation. Ejections end on their own when their time is up, so no sweep
// goroutine is needed.

type outlierState struct {
	consecutive  int
	timesEjected int
	// returned is when the last ejection ended.
	returned time.Time
}

// report records the outcome of one attempt to e. eps are the endpoints of
// the listener e belongs to, for the ejection limit.
func (c *cluster) report(e *endpoint, eps []*endpoint, failed bool) {
	cfg := c.config()
	if cfg == nil || cfg.policy.OutlierDetection == nil {
		return
	}
	od := cfg.policy.OutlierDetection
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &e.outlier
	if until := e.ejectedUntil.Load(); until != 0 {
		if now.UnixNano() < until {
			return // an attempt that was in flight when the endpoint was ejected
		}
		e.ejectedUntil.Store(0)
		st.returned = time.Unix(0, until)
		st.consecutive = 0
	}
	if !failed {
		st.consecutive = 0
		return
	}
	st.consecutive++
	if st.consecutive < od.MaxServerErrors || !mayEject(od, eps, e, now.UnixNano()) {
		return
	}
	if st.timesEjected > 0 && od.IntervalMillis > 0 {
		decay := int(now.Sub(st.returned) / (time.Duration(od.IntervalMillis) * time.Millisecond))
		st.timesEjected = max(0, st.timesEjected-decay)
	}
	st.timesEjected++
	st.consecutive = 0
	d := time.Duration(od.BaseEjectionDurationMillis) * time.Millisecond * time.Duration(st.timesEjected)
	e.ejectedUntil.Store(now.Add(d).UnixNano())
	c.up.metrics.res.ejections.WithLabelValues(c.node, e.addr).Inc()
	c.up.log.Warn("endpoint ejected", "node", c.node, "endpoint", e.addr, "for", d.String(), "consecutiveErrors", od.MaxServerErrors)
}

// mayEject applies maxEjectionPercent: one more ejection must keep the
// ejected share within it, unless none is ejected yet.
func mayEject(od *ir.OutlierDetection, eps []*endpoint, e *endpoint, now int64) bool {
	ejected := 0
	for _, o := range eps {
		if o != e && o.ejectedUntil.Load() > now {
			ejected++
		}
	}
	return ejected == 0 || (ejected+1)*100 <= od.MaxEjectionPercent*len(eps)
}

// grpcServerError reports whether a gRPC status counts as a server error
// for outlier detection: the codes Envoy maps to a 5xx HTTP status
// (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
func grpcServerError(code int) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}
