package dataplane

import (
	"context"
	"errors"
	"testing"
	"time"
)

type testKey struct{}

func TestRequestContext(t *testing.T) {
	base := context.WithValue(context.Background(), testKey{}, "conn")

	t.Run("values and cancel", func(t *testing.T) {
		x := newH1Request(base).next()
		ctx := x.req.Context()
		if ctx != &x.ctx || ctx.Value(testKey{}) != "conn" || ctx.Err() != nil {
			t.Fatalf("request context: %v, value %v, err %v", ctx, ctx.Value(testKey{}), ctx.Err())
		}
		x.ctx.cancel()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("after cancel: err %v", ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done asked after cancel is not closed")
		}
	})

	t.Run("reused unless waited on", func(t *testing.T) {
		x := newH1Request(base).next()
		x.req.Method = "GET"
		x.ctx.cancel()
		y := x.next()
		if y != x || y.req.Context().Err() != nil || y.req.Method != "" || y.req.Context() != &y.ctx {
			t.Fatalf("next after an unwatched request: same %v, err %v, method %q", y == x, y.req.Context().Err(), y.req.Method)
		}
		done := y.req.Context().Done()
		y.ctx.cancel()
		<-done
		z := y.next()
		if z == y || z.req.Context().Err() != nil {
			t.Fatalf("next after a request whose context was waited on: same %v, err %v", z == y, z.req.Context().Err())
		}
	})

	t.Run("derived contexts and AfterFunc", func(t *testing.T) {
		x := newH1Request(base).next()
		child, cancelChild := context.WithCancel(x.req.Context())
		defer cancelChild()
		ran := make(chan struct{})
		context.AfterFunc(x.req.Context(), func() { close(ran) })
		stopped := false
		stop := context.AfterFunc(x.req.Context(), func() { stopped = true })
		if !stop() {
			t.Fatal("stop before cancel reported false")
		}
		x.ctx.cancel()
		for _, c := range []<-chan struct{}{child.Done(), ran} {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				t.Fatal("not told of the request's end")
			}
		}
		if stopped {
			t.Fatal("a stopped AfterFunc ran")
		}
		late := make(chan struct{})
		context.AfterFunc(x.req.Context(), func() { close(late) })
		<-late
	})
}
