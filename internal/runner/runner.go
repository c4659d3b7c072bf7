// Package runner owns the serve loop between a source and the data plane: it
// compiles each new resource set, keeps the last good version of every object
// whose edit is broken, publishes the result, and remembers what is active for
// /config.
package runner

import (
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/prometheus/client_golang/prometheus"
)

// Publisher is the sink the runner feeds: the data plane.
type Publisher interface {
	Apply(cfg *ir.Config, gateway string) error
}

// Options configures a Runner.
type Options struct {
	// Gateway is "namespace/name"; empty means the only VirtualGateway.
	Gateway string
	// Endpoints are fixed endpoints by DNS hostname (--resolve), added to every set.
	Endpoints map[string][]string
	Sink      Publisher
	Registry  prometheus.Registerer
	Logger    *slog.Logger
}

// Runner compiles and publishes resource sets. Its methods are safe for
// concurrent use; updates are applied one at a time.
type Runner struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	lastGood map[resource.Key]*resource.Object
	active   *State
	lastErr  string

	reloads  *prometheus.CounterVec
	rejected prometheus.Gauge
	stale    prometheus.Gauge
}

// State is the active configuration as /config shows it.
type State struct {
	Gateway   string             `json:"gateway"`
	AppliedAt time.Time          `json:"appliedAt"`
	Config    *ir.Config         `json:"config"`
	Problems  []resource.Problem `json:"problems"`
	// LastError is the error of the latest update that was not applied, if
	// it came after the active one.
	LastError string `json:"lastError,omitempty"`
}

// New returns a Runner; nothing is published until Update.
func New(opts Options) *Runner {
	r := &Runner{opts: opts, log: opts.Logger, lastGood: map[resource.Key]*resource.Object{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_config_reloads_total",
		Help: "Configuration updates, by result (applied or failed).",
	}, []string{"result"})
	r.rejected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_config_rejected_objects",
		Help: "Objects of the latest configuration that are not served because they are invalid.",
	})
	r.stale = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_config_stale_objects",
		Help: "Objects served in their last good version because their latest edit is invalid.",
	})
	if opts.Registry != nil {
		opts.Registry.MustRegister(r.reloads, r.rejected, r.stale)
	}
	return r
}

// Update compiles set and publishes it. On error the previously active
// configuration keeps serving.
func (r *Runner) Update(set *resource.Set) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.update(set)
	if err != nil {
		r.reloads.WithLabelValues("failed").Inc()
		r.lastErr = err.Error()
		r.log.Error("configuration not applied; the previous one keeps serving", "err", err)
		return err
	}
	r.reloads.WithLabelValues("applied").Inc()
	r.lastErr = ""
	return nil
}

func (r *Runner) update(set *resource.Set) error {
	set = withEndpoints(set, r.opts.Endpoints)
	cfg, problems := compile.Compile(set)
	merged, stale := r.keepLastGood(set, cfg, problems)
	if len(stale) > 0 {
		cfg, _ = compile.Compile(merged)
		markStale(cfg, stale, problems)
	}
	g, err := cfg.SelectGateway(r.opts.Gateway)
	if err != nil {
		return err
	}
	gw := g.Name
	if err := r.opts.Sink.Apply(cfg, gw); err != nil {
		return fmt.Errorf("gateway %s: %w", gw, err)
	}
	for _, p := range problems {
		r.log.Warn("configuration problem", "problem", p.String())
	}
	r.lastGood = validObjects(merged, cfg)
	r.active = &State{Gateway: gw, AppliedAt: time.Now().UTC(), Config: cfg, Problems: problems}
	invalid := 0
	for _, st := range cfg.Statuses {
		if st.Reason == ir.ReasonInvalid {
			invalid++
		}
	}
	r.rejected.Set(float64(invalid + decodeFailures(set)))
	r.stale.Set(float64(len(stale)))
	r.log.Info("configuration applied", "gateway", gw, "objects", len(cfg.Statuses), "problems", len(problems), "stale", len(stale))
	return nil
}

// Snapshot returns the active state for /config (nil before the first update).
func (r *Runner) Snapshot() *State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active == nil {
		return nil
	}
	s := *r.active
	s.LastError = r.lastErr
	return &s
}

// keepLastGood returns set with every rejected object that had a good
// version in the previous update replaced by that version, and the keys
// replaced. Rejected means invalid, or a document that no longer decodes.
func (r *Runner) keepLastGood(set *resource.Set, cfg *ir.Config, problems []resource.Problem) (*resource.Set, []resource.Key) {
	if len(r.lastGood) == 0 {
		return set, nil
	}
	rejected := map[resource.Key]bool{}
	for _, st := range cfg.Statuses {
		if st.Reason == ir.ReasonInvalid {
			rejected[resource.Key{Kind: st.Kind, Namespace: st.Namespace, Name: st.Name}] = true
		}
	}
	for _, p := range set.Problems {
		if p.Key.Name != "" && set.Objects[p.Key] == nil {
			rejected[p.Key] = true
		}
	}
	var stale []resource.Key
	merged := *set
	merged.Objects = maps.Clone(set.Objects)
	for k := range rejected {
		if old, ok := r.lastGood[k]; ok {
			merged.Objects[k] = old
			stale = append(stale, k)
		}
	}
	sort.Slice(stale, func(i, j int) bool { return stale[i].String() < stale[j].String() })
	return &merged, stale
}

// markStale says on each kept object's status that its latest edit was rejected.
func markStale(cfg *ir.Config, stale []resource.Key, problems []resource.Problem) {
	why := map[resource.Key][]string{}
	for _, p := range problems {
		why[p.Key] = append(why[p.Key], p.String())
	}
	isStale := map[resource.Key]bool{}
	for _, k := range stale {
		isStale[k] = true
	}
	for i := range cfg.Statuses {
		st := &cfg.Statuses[i]
		k := resource.Key{Kind: st.Kind, Namespace: st.Namespace, Name: st.Name}
		if !isStale[k] {
			continue
		}
		st.Reason = ReasonLastGoodKept
		st.Message = "serving the last good version; the latest edit is rejected: " + strings.Join(why[k], "; ")
	}
}

// ReasonLastGoodKept marks an object served in its previous version.
const ReasonLastGoodKept = "LastGoodVersionKept"

func validObjects(set *resource.Set, cfg *ir.Config) map[resource.Key]*resource.Object {
	out := maps.Clone(set.Objects)
	for _, st := range cfg.Statuses {
		if st.Reason == ir.ReasonInvalid {
			delete(out, resource.Key{Kind: st.Kind, Namespace: st.Namespace, Name: st.Name})
		}
	}
	return out
}

func decodeFailures(set *resource.Set) int {
	seen := map[string]bool{}
	for _, p := range set.Problems {
		seen[p.File+"\x00"+p.Key.String()] = true
	}
	return len(seen)
}

func withEndpoints(set *resource.Set, eps map[string][]string) *resource.Set {
	if len(eps) == 0 {
		return set
	}
	out := *set
	out.Endpoints = maps.Clone(set.Endpoints)
	if out.Endpoints == nil {
		out.Endpoints = map[string][]string{}
	}
	maps.Copy(out.Endpoints, eps)
	return &out
}
