package dataplane

import (
	"errors"
	"testing"
	"time"
)

type recordCancel struct{ got chan error }

func newRecordCancel() recordCancel { return recordCancel{got: make(chan error, 1)} }

func (r recordCancel) cancelWith(err error) { r.got <- err }

// cancelled waits up to 10 s for rc to be cancelled with want.
func (r recordCancel) cancelled(t *testing.T, want error) {
	t.Helper()
	select {
	case err := <-r.got:
		if !errors.Is(err, want) {
			t.Fatalf("cancelled with %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("not cancelled with %v", want)
	}
}

func (r recordCancel) notCancelled(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.got:
		t.Fatalf("a released call was cancelled: %v", err)
	default:
	}
}

// TestWatchdog: a watchdog cancels its call when the call's timeout
// passes, also when it was released by an earlier call with its timer
// still running; it never cancels a call released before its timeout, nor
// one whose timeout has not passed; and it is reused only when it did not
// cancel its call, whose context may otherwise be about to be cancelled
// (forward).
func TestWatchdog(t *testing.T) {
	t.Run("released before its timeout", func(t *testing.T) {
		rc := newRecordCancel()
		w := newWatchdog(rc, 30*time.Millisecond, 0, time.Now(), true)
		if !w.release() {
			t.Fatal("release() = false for a watchdog that never fired")
		}
		time.Sleep(100 * time.Millisecond) // its timer fires, and must not cancel
		rc.notCancelled(t)
	})
	t.Run("timed out", func(t *testing.T) {
		rc := newRecordCancel()
		w := newWatchdog(rc, time.Millisecond, 0, time.Now(), true)
		rc.cancelled(t, errRequestTimeout)
		if w.recycle() {
			t.Fatal("recycle() = true for a watchdog that cancelled its call")
		}
	})
	t.Run("reused with a shorter timeout", func(t *testing.T) {
		w := newWatchdog(newRecordCancel(), time.Hour, 0, time.Now(), true)
		w.release()
		rc := newRecordCancel()
		w.start(rc, 20*time.Millisecond, 0, time.Now(), true)
		rc.cancelled(t, errRequestTimeout)
	})
	t.Run("reused with a longer timeout", func(t *testing.T) {
		first := newRecordCancel()
		w := newWatchdog(first, 20*time.Millisecond, 0, time.Now(), true)
		w.release()
		rc := newRecordCancel()
		start := time.Now()
		w.start(rc, 80*time.Millisecond, 0, start, true)
		rc.cancelled(t, errRequestTimeout)
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("cancelled after %v, before its 80ms timeout", d)
		}
		first.notCancelled(t)
	})
	t.Run("idle", func(t *testing.T) {
		rc := newRecordCancel()
		newWatchdog(rc, time.Hour, 20*time.Millisecond, time.Now(), true)
		rc.cancelled(t, errStreamIdle)
	})
	// Activity is noted only while the idle limit can come first.
	for _, c := range []struct {
		timeout, idle time.Duration
		armed, want   bool
	}{
		{15 * time.Second, 5 * time.Minute, true, false}, // the defaults: the deadline comes first
		{time.Minute, time.Minute, true, false},
		{time.Minute, time.Second, true, true},
		{15 * time.Second, 5 * time.Minute, false, true}, // a body still to come: the deadline is not armed
		{0, 5 * time.Minute, true, true},
		{15 * time.Second, 0, true, false},
	} {
		w := newWatchdog(newRecordCancel(), c.timeout, c.idle, time.Now().Add(-time.Second), c.armed)
		w.touch()
		if noted := w.last.Load() != 0; noted != c.want {
			t.Errorf("timeout %v, idle %v, armed %v: activity noted %v, want %v", c.timeout, c.idle, c.armed, noted, c.want)
		}
		w.release()
	}
}
