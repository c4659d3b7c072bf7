package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestH1WaitsForLateReplies checks, on sockets, that a connection whose
// replies come late (as from another machine) turns to writing each
// request and waiting for its reply, that requests go on to be answered
// as before, and that a connection the upstream closed while idle is
// still found stale and replaced, not waited on.
func TestH1WaitsForLateReplies(t *testing.T) {
	const perConn = 40
	b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		for i := 1; ; i++ {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
			body := fmt.Sprintf("%s %d", r.line, i)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			if i == perConn {
				return // closes without a word, as at a server's limit of requests per connection
			}
		}
	})
	tr := newH1Transport((&net.Dialer{}).DialContext, time.Minute, &http.Transport{})
	defer tr.CloseIdleConnections()
	const requests = 2*perConn + 20
	for i := 1; i <= requests; i++ {
		// A wait that missed its reply would end only here.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/r%d", b.addr, i), nil)
		if i%5 == 0 {
			// A head longer than the connection's write buffer goes out in parts.
			req.Header.Set("X-Long", strings.Repeat("x", 6000))
		}
		got := roundTripText(t, tr, req)
		cancel()
		if want := fmt.Sprintf("GET /r%d HTTP/1.1 %d", i, (i-1)%perConn+1); got != want {
			t.Fatalf("request %d: %q; want %q", i, got, want)
		}
		if i == readAtOnceWindow+1 && !awaitingReplies(tr, b.addr) {
			t.Fatalf("after %d late replies the connection still reads at once", readAtOnceWindow)
		}
	}
	if n := b.conns.Load(); n != 3 {
		t.Errorf("%d upstream connections for %d requests, %d per connection; want 3", n, requests, perConn)
	}
}

// TestH1WaitForReplyEndsWithItsRequest checks that a connection that
// writes and waits for replies still gives up a reply that never comes
// when the request's context ends, and that the next request is answered
// on a connection of its own.
func TestH1WaitForReplyEndsWithItsRequest(t *testing.T) {
	const stallAt = readAtOnceWindow + 4
	release := make(chan struct{})
	b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		for i := 1; ; i++ {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			if r.line == fmt.Sprintf("GET /r%d HTTP/1.1", stallAt) {
				<-release
				return
			}
			time.Sleep(2 * time.Millisecond)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.line), r.line)
		}
	})
	t.Cleanup(func() { close(release) })
	tr := newH1Transport((&net.Dialer{}).DialContext, time.Minute, &http.Transport{})
	defer tr.CloseIdleConnections()
	for i := 1; i <= stallAt+2; i++ {
		timeout := 10 * time.Second
		if i == stallAt {
			if !awaitingReplies(tr, b.addr) {
				t.Fatalf("after %d late replies the connection still reads at once", i-1)
			}
			timeout = 100 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/r%d", b.addr, i), nil)
		if i == stallAt {
			res, err := tr.RoundTrip(req)
			cancel()
			if err == nil {
				res.Body.Close()
				t.Fatalf("request %d: a response, from a backend that never answered", i)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("request %d: %v; want the context's deadline", i, err)
			}
			continue
		}
		got := roundTripText(t, tr, req)
		cancel()
		if want := fmt.Sprintf("GET /r%d HTTP/1.1", i); got != want {
			t.Fatalf("request %d: %q; want %q", i, got, want)
		}
	}
	if n := b.conns.Load(); n != 2 {
		t.Errorf("%d upstream connections; want 2, the one given up and its replacement", n)
	}
}

// awaitingReplies reports whether tr's one idle connection to addr writes
// and waits for its replies.
func awaitingReplies(tr *h1Transport, addr string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	p := tr.pools[addr]
	return p != nil && len(p.idle) == 1 && p.idle[0].pace.awaitLeft > 0
}

// roundTripText sends req through tr and returns the response's body; an
// error fails the test.
func roundTripText(t *testing.T, tr *h1Transport, req *http.Request) string {
	t.Helper()
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s: %v", req.URL.Path, err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s: reading the body: %v", req.URL.Path, err)
	}
	return string(got)
}
