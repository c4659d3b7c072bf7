package dataplane

import (
	"errors"
	"testing"
	"time"
)

type recordCancel struct{ got chan error }

func (r recordCancel) cancelWith(err error) { r.got <- err }

// TestWatchdogRecycle: a watchdog is reused only when its timer can no
// longer fire; one that fired may still be about to cancel its call, so
// the call must not be reused either (forward).
func TestWatchdogRecycle(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		wait    bool // until the timer has fired
		want    bool
	}{
		{"stopped before its timeout", time.Hour, false, true},
		{"timed out", time.Millisecond, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := recordCancel{got: make(chan error, 1)}
			w := newWatchdog(rc, tc.timeout, 0, time.Now(), true)
			if tc.wait {
				select {
				case err := <-rc.got:
					if !errors.Is(err, errRequestTimeout) {
						t.Fatalf("cancelled with %v", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the timeout never fired")
				}
			}
			w.stop()
			if got := w.recycle(); got != tc.want {
				t.Fatalf("recycle() = %v, want %v", got, tc.want)
			}
		})
	}
}
