package xds

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/meshgate/meshgate/internal/ir"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// defaultRequestTimeout is App Mesh's perRequest default (reference §3).
const defaultRequestTimeout = 15 * time.Second

// routeMatch is spec AND-ed with the non-path criteria of every match in ms.
func routeMatch(spec pathSpec, ms ...*ir.Match) *route.RouteMatch {
	rm := &route.RouteMatch{}
	switch spec.kind {
	case "exact":
		rm.PathSpecifier = &route.RouteMatch_Path{Path: spec.value}
	case "regex":
		rm.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: spec.value}}
	case "prefix":
		rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: spec.value}
	default:
		rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: "/"}
	}
	for _, m := range ms {
		if m.Method != "" {
			rm.Headers = append(rm.Headers, exactHeader(":method", m.Method))
		}
		if m.Scheme != "" {
			rm.Headers = append(rm.Headers, exactHeader(":scheme", strings.ToLower(m.Scheme)))
		}
		for _, h := range m.Headers {
			rm.Headers = append(rm.Headers, headerMatcher(h))
		}
		for _, q := range m.Query {
			qm := &route.QueryParameterMatcher{Name: q.Name}
			if q.Exact != nil {
				qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
					MatchPattern: &matcher.StringMatcher_Exact{Exact: *q.Exact},
				}}
			} else {
				qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}
			}
			rm.QueryParameters = append(rm.QueryParameters, qm)
		}
	}
	return rm
}

func exactHeader(name, value string) *route.HeaderMatcher {
	return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{
		StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: value}},
	}}
}

// headerMatcher keeps the IR's rule for absent headers: Envoy, too, fails
// every matcher on an absent header except an inverted present match.
func headerMatcher(h ir.HeaderMatch) *route.HeaderMatcher {
	name := h.Name
	if name == "host" {
		name = ":authority"
	}
	hm := &route.HeaderMatcher{Name: name, InvertMatch: h.Invert}
	str := func(p *matcher.StringMatcher) {
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: p}
	}
	switch h.Type {
	case ir.HeaderExact:
		str(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: h.Value}})
	case ir.HeaderPrefix:
		str(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: h.Value}})
	case ir.HeaderSuffix:
		str(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: h.Value}})
	case ir.HeaderRegex:
		src := h.Value
		if h.Regex != nil {
			src = h.Regex.Source
		}
		str(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: src}}})
	case ir.HeaderRange:
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: h.Start, End: h.End}}
	default:
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return hm
}

// httpStatusEvents are the status codes of App Mesh's HTTP retry events
// that Envoy has no single retry_on word for (reference §3).
var httpStatusEvents = map[string][]uint32{
	"server-error": {500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511},
	"client-error": {409},
}

// retryPolicy maps App Mesh retry events to Envoy's retry_on words.
func retryPolicy(p *ir.RetryPolicy) *route.RetryPolicy {
	if p == nil || p.MaxRetries == 0 {
		return nil
	}
	on := map[string]bool{}
	codes := map[uint32]bool{}
	if p.Default {
		for _, w := range []string{"connect-failure", "refused-stream", "reset", "unavailable"} {
			on[w] = true
		}
		codes[503] = true
	}
	for _, e := range p.HTTPEvents {
		switch e {
		case "server-error":
			on["reset"] = true
		case "gateway-error":
			on["gateway-error"] = true
			on["reset"] = true
		case "stream-error":
			on["refused-stream"] = true
		}
		for _, c := range httpStatusEvents[e] {
			codes[c] = true
		}
	}
	for _, e := range p.TCPEvents {
		if e == "connection-error" {
			on["connect-failure"] = true
		}
	}
	for _, e := range p.GRPCEvents {
		on[e] = true
	}
	rp := &route.RetryPolicy{NumRetries: wrapperspb.UInt32(uint32(min(p.MaxRetries, math.MaxUint32)))}
	for c := range codes {
		rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, c)
	}
	sort.Slice(rp.RetriableStatusCodes, func(i, j int) bool { return rp.RetriableStatusCodes[i] < rp.RetriableStatusCodes[j] })
	if len(codes) > 0 {
		on["retriable-status-codes"] = true
	}
	words := make([]string, 0, len(on))
	for w := range on {
		words = append(words, w)
	}
	sort.Strings(words)
	rp.RetryOn = strings.Join(words, ",")
	if p.PerRetryTimeoutMillis > 0 {
		rp.PerTryTimeout = millis(p.PerRetryTimeoutMillis)
	}
	return rp
}

func millis(ms int64) *durationpb.Duration {
	return durationpb.New(time.Duration(ms) * time.Millisecond)
}

// applyTimeout sets App Mesh's per-request and idle timeouts. Proxyless
// gRPC reads only max_stream_duration, Envoy's HTTP routes timeout.
func (t *translator) applyTimeout(a *route.RouteAction, to *ir.Timeout) {
	per := durationpb.New(defaultRequestTimeout)
	if to != nil && to.PerRequestMillis != nil {
		per = millis(*to.PerRequestMillis)
	}
	if t.proxyless {
		if per.AsDuration() > 0 {
			a.MaxStreamDuration = &route.RouteAction_MaxStreamDuration{MaxStreamDuration: per}
		}
		return
	}
	a.Timeout = per
	if to != nil && to.IdleMillis != nil {
		a.IdleTimeout = millis(*to.IdleMillis)
	}
}

// target is one weighted upstream: a cluster and its weight.
type target struct {
	cluster string
	weight  uint32
}

// forward builds a route that sends to the targets, or answers 503 with
// reason when there are none (as the Go data plane does).
func (t *translator) forward(name string, m *route.RouteMatch, targets []target, retry *ir.RetryPolicy, to *ir.Timeout, reason string, rw func(*route.RouteAction)) *route.Route {
	r := &route.Route{Name: name, Match: m}
	if len(targets) == 0 {
		r.Action = &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 503}}
		if !t.proxyless {
			r.GetDirectResponse().Body = inlineString(reason + "\n")
		}
		return r
	}
	a := &route.RouteAction{}
	wc := &route.WeightedCluster{}
	for _, tg := range targets {
		wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{Name: tg.cluster, Weight: wrapperspb.UInt32(tg.weight)})
	}
	a.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: wc}
	a.RetryPolicy = retryPolicy(retry)
	t.applyTimeout(a, to)
	if rw != nil {
		rw(a)
	}
	r.Action = &route.Route_Route{Route: a}
	return r
}

// routerTargets resolves a router route's weighted targets to clusters,
// skipping weight 0 as the Go data plane does; a missing node keeps its
// share (its cluster has no endpoints) so that share fails visibly.
func (t *translator) routerTargets(rt *ir.Route, routerPort int) []target {
	var out []target
	for _, wt := range rt.Targets {
		if wt.Weight <= 0 {
			continue
		}
		out = append(out, target{cluster: t.nodeCluster(wt.Node, wt.Port, routerPort), weight: uint32(wt.Weight)})
	}
	return out
}

func routeName(parts ...string) string { return strings.Join(parts, " > ") }

func noRouteReason(router string) string {
	return fmt.Sprintf("no route of virtual router %s matched", router)
}
