package kube

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the field manager of meshgate's status writes.
const FieldOwner = "meshgate"

// StatusWriter writes compile's verdict on every App Mesh object as App Mesh
// did (appmesh-behaviour.md §5): status.observedGeneration and one condition
// of the kind's type (MeshActive, VirtualGatewayActive, ...), True or False
// with compile's reason and message. It patches the status subresource only
// when something changed, and only while it runs, which a manager does only
// on the elected leader. Objects that do not decode get False with reason
// Invalid and the decoder's messages. The guide's Route kind has no status.
type StatusWriter struct {
	client client.Client
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	latest *Snapshot
	wake   chan struct{}

	writes atomic.Int64
}

// NewStatusWriter returns a writer that patches through c.
func NewStatusWriter(c client.Client, log *slog.Logger) *StatusWriter {
	if log == nil {
		log = slog.Default()
	}
	return &StatusWriter{client: c, log: log, now: time.Now, wake: make(chan struct{}, 1)}
}

// Update hands the writer the latest snapshot; it may be called on every
// replica, leader or not, and never blocks.
func (w *StatusWriter) Update(s *Snapshot) {
	w.mu.Lock()
	w.latest = s
	w.mu.Unlock()
	w.signal()
}

func (w *StatusWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Writes is the number of status patches this writer has sent.
func (w *StatusWriter) Writes() int64 { return w.writes.Load() }

// NeedLeaderElection makes a controller-runtime manager run the writer on
// the elected leader only.
func (w *StatusWriter) NeedLeaderElection() bool { return true }

// Start writes statuses for every snapshot until ctx is done.
func (w *StatusWriter) Start(ctx context.Context) error {
	w.log.Info("status writer started")
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-retry.C:
		}
		w.mu.Lock()
		snap := w.latest
		w.mu.Unlock()
		if snap == nil {
			continue
		}
		if failed := w.write(ctx, snap); failed && ctx.Err() == nil {
			// A conflict means a newer snapshot is on its way; anything
			// else is retried even if nothing changes meanwhile.
			retry.Reset(2 * time.Second)
		}
	}
}

// desired is the condition compile wants on one object.
type desired struct {
	condType, status, reason, message string
}

// write patches every object whose status differs from what compile says;
// it reports whether a patch failed for a reason other than a conflict.
func (w *StatusWriter) write(ctx context.Context, snap *Snapshot) (failed bool) {
	cfg, _ := compile.Compile(snap.Set)
	want := map[resource.Key]desired{}
	for _, st := range cfg.Statuses {
		want[resource.Key{Kind: st.Kind, Namespace: st.Namespace, Name: st.Name}] = fromStatus(st)
	}
	undecoded := map[resource.Key][]string{}
	for _, p := range snap.Set.Problems {
		if snap.Set.Objects[p.Key] == nil {
			msg := p.Message
			if p.Field != "" {
				msg = p.Field + ": " + msg
			}
			undecoded[p.Key] = append(undecoded[p.Key], msg)
		}
	}
	keys := make([]resource.Key, 0, len(snap.Objects))
	for k := range snap.Objects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b resource.Key) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, k := range keys {
		if k.Kind == v1beta2.KindRoute {
			continue
		}
		d, ok := want[k]
		if !ok {
			msgs, bad := undecoded[k]
			if !bad {
				continue
			}
			d = desired{condType: k.Kind + "Active", status: "False", reason: ir.ReasonInvalid, message: strings.Join(msgs, "; ")}
		}
		if ctx.Err() != nil {
			return false
		}
		if err := w.patch(ctx, snap.Objects[k], d); err != nil {
			switch {
			case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			default:
				w.log.Error("writing status failed", "object", k.String(), "err", err)
				failed = true
			}
		}
	}
	if w.releaseFinalizers(ctx, snap, cfg.Statuses) {
		failed = true
	}
	return failed
}

func fromStatus(st ir.ObjectStatus) desired {
	d := desired{condType: st.Condition, status: "True", reason: st.Reason, message: st.Message}
	if !st.Active {
		d.status = "False"
	}
	return d
}

// patch writes d and the object's generation into its status with a merge
// patch on the status subresource, unless they are already there. The patch
// carries the resourceVersion it was computed from, so a status that changed
// meanwhile is not overwritten.
func (w *StatusWriter) patch(ctx context.Context, u *unstructured.Unstructured, d desired) error {
	var cur v1beta2.Status
	if raw, ok := u.Object["status"]; ok {
		// A status this writer cannot read is replaced.
		if b, err := json.Marshal(raw); err == nil {
			_ = json.Unmarshal(b, &cur)
		}
	}
	gen := u.GetGeneration()
	conds, changed := merge(cur.Conditions, d, w.now())
	if !changed && cur.ObservedGeneration != nil && *cur.ObservedGeneration == gen {
		return nil
	}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": u.GetResourceVersion()},
		"status":   map[string]any{"observedGeneration": gen, "conditions": conds},
	})
	if err != nil {
		return err
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(u.GroupVersionKind())
	target.SetNamespace(u.GetNamespace())
	target.SetName(u.GetName())
	if err := w.client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldOwner)); err != nil {
		return err
	}
	w.writes.Add(1)
	return nil
}

// merge returns conds with the condition of d's type set to d, and whether
// that changed anything. Conditions of other types are kept; the transition
// time moves only when the status flips.
func merge(conds []v1beta2.Condition, d desired, now time.Time) ([]v1beta2.Condition, bool) {
	next := v1beta2.Condition{Type: d.condType, Status: d.status}
	if d.reason != "" {
		next.Reason = &d.reason
	}
	if d.message != "" {
		next.Message = &d.message
	}
	out := make([]v1beta2.Condition, 0, len(conds)+1)
	found, changed := false, false
	for _, c := range conds {
		if c.Type != d.condType {
			out = append(out, c)
			continue
		}
		if found {
			changed = true // a duplicate of our type is dropped
			continue
		}
		found = true
		next.LastTransitionTime = c.LastTransitionTime
		if c.Status != next.Status || next.LastTransitionTime == nil {
			t := metav1.NewTime(now)
			next.LastTransitionTime = &t
			changed = true
		}
		if deref(c.Reason) != d.reason || deref(c.Message) != d.message {
			changed = true
		}
		out = append(out, next)
	}
	if !found {
		t := metav1.NewTime(now)
		next.LastTransitionTime = &t
		out = append(out, next)
		changed = true
	}
	return out, changed
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
