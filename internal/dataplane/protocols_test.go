package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/net/websocket"
)

// protocolsYAML is a gateway with an http listener on 8080 and an http2
// listener on 8443, each with one route to a virtual service (h1 and h2).
const protocolsYAML = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: http}
    - portMapping: {port: 8443, protocol: http2}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: h1, namespace: demo}
spec:
  virtualGateway: {name: gw}
  httpRoute:
    match: {prefix: /, port: 8080}
    action:
      target: {virtualService: {virtualServiceRef: {name: h1}}}
      rewrite: {prefix: {defaultPrefix: DISABLED}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: h2, namespace: demo}
spec:
  virtualGateway: {name: gw}
  http2Route:
    match: {prefix: /, port: 8443}
    action:
      target: {virtualService: {virtualServiceRef: {name: h2}}}
      rewrite: {prefix: {defaultPrefix: DISABLED}}
`

// startProtocolsGateway serves protocolsYAML with h1 as the http virtual
// node and h2 as the other, whose listener protocol is h2proto.
func startProtocolsGateway(t *testing.T, h1, h2 *backend, h2proto string) *gateway {
	t.Helper()
	cfg := compiled(t, protocolsYAML+nodeYAML("h1", "http", h1.port)+nodeYAML("h2", h2proto, h2.port),
		map[string]string{hostOf("h1"): h1.addr, hostOf("h2"): h2.addr})
	return startGateway(t, cfg)
}

func h2cClient(t *testing.T) *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestCleartextProtocols sends HTTP/1.1 and prior-knowledge HTTP/2 to
// http and http2 listeners and checks what the client and the upstream
// spoke: the upstream always gets its node listener's protocol.
func TestCleartextProtocols(t *testing.T) {
	h1 := startEcho(t, "h1")
	h2 := startH2CBackend(t, "h2", echoHandler("h2"))
	g := startProtocolsGateway(t, h1, h2, "http2")
	h1c := &http.Client{Timeout: 30 * time.Second}
	cases := []struct {
		name               string
		client             *http.Client
		port               int
		wantClient, wantUp string
		wantBackend        string
	}{
		{"HTTP/1.1 to http", h1c, 8080, "HTTP/1.1", "HTTP/1.1", "h1"},
		{"h2c to http", h2cClient(t), 8080, "HTTP/2.0", "HTTP/1.1", "h1"},
		{"HTTP/1.1 to http2", h1c, 8443, "HTTP/1.1", "HTTP/2.0", "h2"},
		{"h2c to http2", h2cClient(t), 8443, "HTTP/2.0", "HTTP/2.0", "h2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Repeat("x", 100<<10)
			res, err := c.client.Post(g.url(c.port, "/p?q=1"), "text/plain", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var e echoed
			if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if res.Proto != c.wantClient || e.Proto != c.wantUp || e.Backend != c.wantBackend || e.BodyLen != len(body) || e.Path != "/p" {
				t.Fatalf("client spoke %s, %s got %s %s with %d bytes; want %s, %s %s", res.Proto, e.Backend, e.Proto, e.Path, e.BodyLen, c.wantClient, c.wantBackend, c.wantUp)
			}
		})
	}
}

// h2cUpgradeConn is a client that switched a connection to HTTP/2 with
// Upgrade: h2c (RFC 7540 §3.2), driven frame by frame.
type h2cUpgradeConn struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	host string
	// goaway is set once the server announced a graceful shutdown.
	goaway bool
}

type h2Response struct {
	status string
	body   []byte
}

// dialH2CUpgrade sends an upgrade request; when the server answers 101 it
// returns the connection with stream 1 open, else the HTTP/1.1 response.
func dialH2CUpgrade(t *testing.T, addr, method, path, body string) (*h2cUpgradeConn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// One setting: SETTINGS_MAX_CONCURRENT_STREAMS = 100.
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: %d\r\n\r\n%s",
		method, path, addr, len(body), body)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil, res
	}
	if res.Header.Get("Upgrade") != "h2c" {
		t.Fatalf("101 with Upgrade %q", res.Header.Get("Upgrade"))
	}
	c := &h2cUpgradeConn{t: t, conn: conn, fr: http2.NewFramer(conn, br), host: addr}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	// Real clients repeat in the frame what HTTP2-Settings said.
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// get sends a GET on a new stream.
func (c *h2cUpgradeConn) get(stream uint32, path string) {
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", c.host}, {":path", path}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: c.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the response of a stream, answering the server's settings
// and pings on the way.
func (c *h2cUpgradeConn) read(stream uint32) h2Response {
	c.t.Helper()
	var res h2Response
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("reading stream %d: %v", stream, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				c.t.Fatalf("GOAWAY %v", f.ErrCode)
			}
			c.goaway = true
		case *http2.RSTStreamFrame:
			c.t.Fatalf("RST_STREAM %d %v", f.StreamID, f.ErrCode)
		case *http2.MetaHeadersFrame:
			if f.StreamID == stream && res.status == "" {
				res.status = f.PseudoValue("status")
			}
			if f.StreamID == stream && f.StreamEnded() {
				return res
			}
		case *http2.DataFrame:
			if f.StreamID == stream {
				res.body = append(res.body, f.Data()...)
				if len(f.Data()) > 0 {
					c.fr.WriteWindowUpdate(0, uint32(len(f.Data())))
				}
				if f.StreamEnded() {
					return res
				}
			}
		}
	}
}

func decodeEcho(t *testing.T, b []byte) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%v in %q", err, b)
	}
	return e
}

// TestH2CUpgrade upgrades HTTP/1.1 connections to HTTP/2 on an http2
// listener, and checks that an http listener serves the same request as
// HTTP/1.1 without passing the upgrade on.
func TestH2CUpgrade(t *testing.T) {
	h1 := startEcho(t, "h1")
	h2 := startH2CBackend(t, "h2", echoHandler("h2"))
	g := startProtocolsGateway(t, h1, h2, "http2")

	t.Run("http2 listener switches", func(t *testing.T) {
		c, res := dialH2CUpgrade(t, g.p.Addrs()[8443].String(), "POST", "/first", "hello")
		if c == nil {
			t.Fatalf("no upgrade: %s", res.Status)
		}
		// The upgrade request is stream 1; the connection then carries more.
		r1 := c.read(1)
		e := decodeEcho(t, r1.body)
		if r1.status != "200" || e.Path != "/first" || e.Body != "hello" || e.Proto != "HTTP/2.0" || e.Header.Get("Upgrade") != "" || e.Header.Get("Http2-Settings") != "" {
			t.Fatalf("stream 1: %s %+v", r1.status, e)
		}
		for _, stream := range []uint32{3, 5} {
			c.get(stream, fmt.Sprintf("/next/%d", stream))
			r := c.read(stream)
			if e := decodeEcho(t, r.body); r.status != "200" || e.Path != fmt.Sprintf("/next/%d", stream) {
				t.Fatalf("stream %d: %s %+v", stream, r.status, e)
			}
		}
	})
	t.Run("http listener ignores it", func(t *testing.T) {
		c, res := dialH2CUpgrade(t, g.p.Addrs()[8080].String(), "GET", "/plain", "")
		if c != nil {
			t.Fatal("an http listener switched to h2c")
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		e := decodeEcho(t, b)
		if res.StatusCode != 200 || e.Proto != "HTTP/1.1" || e.Header.Get("Upgrade") != "" || e.Header.Get("Http2-Settings") != "" {
			t.Fatalf("%s %+v", res.Status, e)
		}
	})
	t.Run("a body too large to upgrade with", func(t *testing.T) {
		body := strings.Repeat("b", maxUpgradeBody+1)
		c, res := dialH2CUpgrade(t, g.p.Addrs()[8443].String(), "POST", "/big", body)
		if c != nil {
			t.Fatal("switched with a body over the limit")
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if e := decodeEcho(t, b); res.StatusCode != 200 || e.BodyLen != len(body) || e.Header.Get("Upgrade") != "" {
			t.Fatalf("%s %+v", res.Status, e)
		}
	})
}

// TestH2CUpgradeDrainsOnShutdown shuts the gateway down while a request is
// in flight on an upgraded connection: the client is told (GOAWAY), the
// request completes, and only then does Shutdown return.
func TestH2CUpgradeDrainsOnShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := startH2CBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "done")
	}))
	g := startProtocolsGateway(t, startEcho(t, "h1"), slow, "http2")
	c, res := dialH2CUpgrade(t, g.p.Addrs()[8443].String(), "GET", "/slow", "")
	if c == nil {
		t.Fatalf("no upgrade: %s", res.Status)
	}
	<-arrived
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- g.p.Shutdown(ctx)
	}()
	// Read until the GOAWAY: the shutdown has begun.
	for !c.goaway {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok && g.ErrCode == http2.ErrCodeNo {
			c.goaway = true
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if r := c.read(1); r.status != "200" || string(r.body) != "done" {
		t.Fatalf("in-flight request: %s %q", r.status, r.body)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestWebSocket passes a WebSocket through an http listener to a real
// WebSocket echo server, and checks that an http2 listener does not pass
// the upgrade on.
func TestWebSocket(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/echo", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	mux.Handle("/", echoHandler("ws"))
	ws := startBackend(t, "ws", mux)
	// Both listeners reach the same HTTP/1.1 backend.
	g := startProtocolsGateway(t, ws, ws, "http")

	t.Run("http listener", func(t *testing.T) {
		conn, err := websocket.Dial("ws://"+g.p.Addrs()[8080].String()+"/echo", "", "http://client.example/")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		for _, msg := range []string{"hello", strings.Repeat("large ", 200000), "bye"} {
			// The server echoes as it reads, so write while reading back.
			werr := make(chan error, 1)
			go func() { _, err := io.WriteString(conn, msg); werr <- err }()
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if string(got) != msg {
				t.Fatalf("echoed %d bytes that differ from the %d sent", len(got), len(msg))
			}
		}
	})
	t.Run("http2 listener", func(t *testing.T) {
		conn, err := websocket.Dial("ws://"+g.p.Addrs()[8443].String()+"/echo", "", "http://client.example/")
		if err == nil {
			conn.Close()
			t.Fatal("a WebSocket opened through an http2 listener")
		}
		res := g.do(request{port: 8443, path: "/headers", header: http.Header{
			"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"},
		}})
		if res.status != http.StatusOK || res.echo.Header.Get("Upgrade") != "" || res.echo.Header.Get("Connection") != "" {
			t.Fatalf("%d, upstream got %v", res.status, res.echo.Header)
		}
	})
}

// TestWebSocketIdleTimeout checks that an upgraded connection keeps the
// route's stream idle timeout and nothing else: one that keeps talking
// outlives it several times over, one that falls silent is closed.
func TestWebSocketIdleTimeout(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/echo", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	ws := startBackend(t, "ws", mux)
	cfg := compiled(t, `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: ws, namespace: demo}
spec:
  virtualGateway: {name: gw}
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: ws}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: ws, namespace: demo}
spec: {provider: {virtualRouter: {virtualRouterRef: {name: ws-vr}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: ws-vr, namespace: demo}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  routes:
    - name: all
      httpRoute:
        match: {prefix: /}
        action: {weightedTargets: [{virtualNodeRef: {name: ws-vn}, weight: 1}]}
        timeout: {idle: {unit: ms, value: 300}, perRequest: {unit: ms, value: 200}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: ws-vn, namespace: demo}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  serviceDiscovery: {dns: {hostname: ws.demo.svc.cluster.local}}
`, map[string]string{"ws.demo.svc.cluster.local": ws.addr})
	g := startGateway(t, cfg)
	conn, err := websocket.Dial("ws://"+g.p.Addrs()[8080].String()+"/echo", "", "http://client.example/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// 1.2 s of traffic every 100 ms: four times the idle timeout and six
	// times the request timeout, which no longer applies.
	for i := range 12 {
		msg := fmt.Sprint("ping ", i)
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
			t.Fatalf("message %d: echoed %q, %v", i, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Silent now: the gateway closes the connection long before the
	// deadline the client set.
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
		t.Fatalf("silent WebSocket still open: read returned %v", err)
	}
}

// TestH2DirectPathReuse sends HTTP/2 requests, many at once, to an
// HTTP/1.1 cluster, whose responses differ in a field and half of them in
// a trailer: a call recycled after one request (those without trailers)
// must leave nothing of it in another's response.
func TestH2DirectPathReuse(t *testing.T) {
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := strings.TrimPrefix(r.URL.Path, "/n/")
		w.Header().Set("X-N", n)
		odd := n[len(n)-1]%2 == 1
		if odd {
			w.Header().Set("Trailer", "X-T")
		}
		io.WriteString(w, "body "+n)
		if odd {
			w.Header().Set("X-T", "t"+n)
		}
	}))
	g := gatewayTo(t, b)
	c := h2cClient(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				n := strconv.Itoa(w*1000 + i)
				res, err := c.Get(g.url(8080, "/n/"+n))
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				wantT := ""
				if i%2 == 1 {
					wantT = "t" + n
				}
				if err != nil || res.ProtoMajor != 2 || string(body) != "body "+n || res.Header.Get("X-N") != n || res.Trailer.Get("X-T") != wantT {
					t.Errorf("request %s: %s %v body %q X-N %q trailer %q (want %q)", n, res.Proto, err, body, res.Header.Get("X-N"), res.Trailer.Get("X-T"), wantT)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestH2ClientGone checks that an HTTP/2 client cancelling a request (a
// RST_STREAM on a connection that stays open) ends the upstream request,
// whether it cancels at once or after the request has lasted a while, and
// that the connection goes on serving.
func TestH2ClientGone(t *testing.T) {
	started := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "fast")
			return
		}
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	}))
	g := gatewayTo(t, b)
	c := h2cClient(t)
	for _, after := range []time.Duration{0, 3 * watchDelay} {
		t.Run(after.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url(8080, "/slow"), nil)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				res, err := c.Do(req)
				if err == nil {
					res.Body.Close()
				}
				errc <- err
			}()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the request did not reach the backend")
			}
			time.Sleep(after)
			cancel()
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream request was not cancelled after the client cancelled its stream")
			}
			if err := <-errc; err == nil {
				t.Error("the cancelled request succeeded")
			}
			res, err := c.Get(g.url(8080, "/fast"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.ProtoMajor != 2 || string(body) != "fast" {
				t.Errorf("next request on the connection: %s %q", res.Proto, body)
			}
		})
	}
}
