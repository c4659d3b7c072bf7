package dataplane

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcBackend is a real gRPC server of the interop TestService on
// 127.0.0.1. Its streaming methods wait for the test between messages, so
// a gateway that buffered a stream would never deliver it.
type grpcBackend struct {
	testpb.UnimplementedTestServiceServer
	id   string
	addr string
	port int
	srv  *grpc.Server
	// release lets StreamingOutputCall send its second message.
	release chan struct{}
	// received gets the payload size of every StreamingInputCall message.
	received chan int
}

func startGRPCBackend(t testing.TB, id string, opts ...grpc.ServerOption) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{id: id, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port,
		release: make(chan struct{}), received: make(chan int, 16)}
	srv := grpc.NewServer(opts...)
	b.srv = srv
	testpb.RegisterTestServiceServer(srv, b)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return b
}

func (b *grpcBackend) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	grpc.SetHeader(ctx, metadata.Pairs("x-backend", b.id))
	return &testpb.Empty{}, nil
}

func (b *grpcBackend) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	switch hang := md.Get("x-hang"); {
	case len(hang) > 0 && hang[0] == "busy":
		// Still working when the deadline passes: grpc-go resets the
		// call then, with nothing written.
		time.Sleep(time.Second)
		return nil, ctx.Err()
	case len(hang) > 0:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s := req.GetResponseStatus(); s != nil && s.Code != 0 {
		return nil, status.Error(codes.Code(s.Code), s.Message)
	}
	grpc.SetHeader(ctx, metadata.Pairs("x-backend", b.id))
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t-"+b.id, "x-trailer-bin", string([]byte{0, 1, 2, 0xff})))
	return &testpb.SimpleResponse{
		Payload:  &testpb.Payload{Body: make([]byte, req.ResponseSize)},
		ServerId: b.id,
		Hostname: strings.Join(md.Get(":authority"), ","),
		Username: strings.Join(md.Get("x-tenant"), ","),
	}, nil
}

func (b *grpcBackend) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for i, p := range req.ResponseParameters {
		if i == 1 {
			select {
			case <-b.release:
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.Size)}}); err != nil {
			return err
		}
	}
	if s := req.GetResponseStatus(); s != nil && s.Code != 0 {
		return status.Error(codes.Code(s.Code), s.Message)
	}
	return nil
}

func (b *grpcBackend) StreamingInputCall(stream grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	total := 0
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(m.GetPayload().GetBody())
		select {
		case b.received <- len(m.GetPayload().GetBody()):
		default:
		}
	}
}

func (b *grpcBackend) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if s := m.GetResponseStatus(); s != nil && s.Code != 0 {
			return status.Error(codes.Code(s.Code), s.Message)
		}
		for _, p := range m.ResponseParameters {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.Size)}}); err != nil {
				return err
			}
		}
	}
}

// grpcConn is a client connection to a gateway port, over cleartext HTTP/2
// unless opts say otherwise.
func grpcConn(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// grpcClient is a TestService client of a gateway port.
func grpcClient(t testing.TB, addr string, opts ...grpc.DialOption) testpb.TestServiceClient {
	t.Helper()
	return testpb.NewTestServiceClient(grpcConn(t, addr, opts...))
}

// callCtx bounds a call generously: a stream the gateway buffered would
// hang, and this turns the hang into a failure.
func callCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const grpcGatewayYAML = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: grpc}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: refused, namespace: demo}
spec:
  virtualGateway: {name: gw}
  priority: 10
  grpcRoute:
    match:
      serviceName: grpc.testing.TestService
      metadata: [{name: x-fail, match: {exact: refused}}]
    action:
      target: {virtualService: {virtualServiceRef: {name: refused}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: unresolved, namespace: demo}
spec:
  virtualGateway: {name: gw}
  priority: 10
  grpcRoute:
    match:
      serviceName: grpc.testing.TestService
      metadata: [{name: x-fail, match: {exact: unresolved}}]
    action:
      target: {virtualService: {virtualServiceRef: {name: unresolved}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: test-service, namespace: demo}
spec:
  virtualGateway: {name: gw}
  grpcRoute:
    match: {serviceName: grpc.testing.TestService}
    action:
      target: {virtualService: {virtualServiceRef: {name: backend}}}
`

// startGRPCGateway serves grpc.testing.TestService from b through a grpc
// listener; calls with x-fail: refused go to a node nothing listens on,
// x-fail: unresolved to one whose hostname does not resolve.
func startGRPCGateway(t *testing.T, b *grpcBackend) *gateway {
	t.Helper()
	refused := closedAddr(t)
	_, rport, _ := net.SplitHostPort(refused)
	port, _ := strconv.Atoi(rport)
	cfg := compiled(t, grpcGatewayYAML+nodeYAML("backend", "grpc", b.port)+nodeYAML("refused", "grpc", port)+nodeYAML("unresolved", "grpc", 50051),
		map[string]string{hostOf("backend"): b.addr, hostOf("refused"): refused})
	return startGateway(t, cfg, func(o *Options) {
		o.Resolver = func(context.Context, string) ([]netip.Addr, error) {
			return nil, errors.New("no such host")
		}
	})
}

// TestGRPCThroughGateway makes real gRPC calls of every kind through a grpc
// listener to a real gRPC server.
func TestGRPCThroughGateway(t *testing.T) {
	b := startGRPCBackend(t, "backend")
	g := startGRPCGateway(t, b)
	c := grpcClient(t, g.p.Addrs()[8080].String())

	t.Run("unary with headers and trailers", func(t *testing.T) {
		var header, trailer metadata.MD
		res, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{ResponseSize: 1 << 20, Payload: &testpb.Payload{Body: make([]byte, 1<<20)}},
			grpc.Header(&header), grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if res.ServerId != "backend" || len(res.Payload.Body) != 1<<20 {
			t.Fatalf("response from %q with %d bytes", res.ServerId, len(res.Payload.Body))
		}
		if res.Hostname != hostOf("backend") {
			t.Errorf("backend saw :authority %q, want the virtual service's name", res.Hostname)
		}
		if got := header.Get("x-backend"); len(got) != 1 || got[0] != "backend" {
			t.Errorf("header metadata %v", header)
		}
		if got := trailer.Get("x-trailer"); len(got) != 1 || got[0] != "t-backend" {
			t.Errorf("trailer metadata %v", trailer)
		}
		if got := trailer.Get("x-trailer-bin"); len(got) != 1 || got[0] != string([]byte{0, 1, 2, 0xff}) {
			t.Errorf("binary trailer %q", got)
		}
	})
	t.Run("empty unary", func(t *testing.T) {
		if _, err := c.EmptyCall(callCtx(t), &testpb.Empty{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("server streaming is not buffered", func(t *testing.T) {
		stream, err := c.StreamingOutputCall(callCtx(t), &testpb.StreamingOutputCallRequest{
			ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 20}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The server sends message 2 only after the client has message 1.
		m, err := stream.Recv()
		if err != nil || len(m.Payload.Body) != 10 {
			t.Fatalf("message 1: %v, %v", m, err)
		}
		b.release <- struct{}{}
		m, err = stream.Recv()
		if err != nil || len(m.Payload.Body) != 20 {
			t.Fatalf("message 2: %v, %v", m, err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("end of stream: %v", err)
		}
	})
	t.Run("client streaming is not buffered", func(t *testing.T) {
		ctx := callCtx(t)
		stream, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 100)}}); err != nil {
			t.Fatal(err)
		}
		// The stream is still open: the server has message 1 only if the
		// gateway passed it on without waiting for the rest.
		select {
		case n := <-b.received:
			if n != 100 {
				t.Fatalf("server got %d bytes", n)
			}
		case <-ctx.Done():
			t.Fatal("the server never received message 1 of an open stream")
		}
		if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 200)}}); err != nil {
			t.Fatal(err)
		}
		res, err := stream.CloseAndRecv()
		if err != nil || res.AggregatedPayloadSize != 300 {
			t.Fatalf("aggregate %v, %v", res, err)
		}
	})
	t.Run("bidi ping-pong", func(t *testing.T) {
		stream, err := c.FullDuplexCall(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for i := int32(1); i <= 5; i++ {
			if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: i * 7}}}); err != nil {
				t.Fatal(err)
			}
			m, err := stream.Recv()
			if err != nil || int32(len(m.Payload.Body)) != i*7 {
				t.Fatalf("round %d: %v, %v", i, m, err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("end of stream: %v", err)
		}
	})
	t.Run("bidi error after messages", func(t *testing.T) {
		stream, err := c.FullDuplexCall(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}}})
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		stream.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "stop"}})
		_, err = stream.Recv()
		if s := status.Convert(err); s.Code() != codes.Aborted || s.Message() != "stop" {
			t.Fatalf("got %v, want Aborted stop", err)
		}
	})
	// A trailers-only response (an error with no message) is one HEADERS
	// frame; a proxy that split it into headers and an empty body would
	// make clients see "stream terminated without trailers" now and then,
	// so it is checked many times.
	t.Run("trailers-only errors", func(t *testing.T) {
		msg := "no such thing: ünïcode 100% \x01"
		for i := 0; i < 100; i++ {
			_, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: msg}})
			if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != msg {
				t.Fatalf("call %d: got %v, want NotFound %q", i, err, msg)
			}
			stream, err := c.StreamingOutputCall(callCtx(t), &testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "later"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if s := status.Convert(err); s.Code() != codes.FailedPrecondition || s.Message() != "later" {
				t.Fatalf("stream %d: got %v, want FailedPrecondition", i, err)
			}
		}
	})
}

// TestGRPCGatewayErrors checks that what the gateway answers itself to a
// gRPC call is a gRPC status, not an HTTP error page.
func TestGRPCGatewayErrors(t *testing.T) {
	b := startGRPCBackend(t, "backend")
	g := startGRPCGateway(t, b)
	cc := grpcConn(t, g.p.Addrs()[8080].String())
	c := testpb.NewTestServiceClient(cc)
	other := testpb.NewUnimplementedServiceClient(cc)
	fail := func(how string) context.Context {
		return metadata.AppendToOutgoingContext(callCtx(t), "x-fail", how)
	}
	cases := map[string]struct {
		call func() error
		code codes.Code
		msg  string
	}{
		"no gateway route": {
			call: func() error { _, err := other.UnimplementedCall(callCtx(t), &testpb.Empty{}); return err },
			code: codes.Unimplemented, msg: "no route matched",
		},
		"upstream refuses connections": {
			call: func() error { _, err := c.EmptyCall(fail("refused"), &testpb.Empty{}); return err },
			code: codes.Unavailable, msg: "upstream connect error",
		},
		"no endpoint": {
			call: func() error { _, err := c.EmptyCall(fail("unresolved"), &testpb.Empty{}); return err },
			code: codes.Unavailable, msg: "virtual node demo/unresolved-vn: resolving unresolved.demo.svc.cluster.local: no such host",
		},
		"streaming call, no endpoint": {
			call: func() error {
				s, err := c.FullDuplexCall(fail("unresolved"))
				if err != nil {
					return err
				}
				_, err = s.Recv()
				return err
			},
			code: codes.Unavailable, msg: "virtual node demo/unresolved-vn: resolving unresolved.demo.svc.cluster.local: no such host",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if s := status.Convert(err); s.Code() != tc.code || s.Message() != tc.msg {
				t.Fatalf("got %v, want %v %q", err, tc.code, tc.msg)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		old := responseTimeout
		responseTimeout = 300 * time.Millisecond
		t.Cleanup(func() { responseTimeout = old })
		// A fresh gateway, so that its upstream transports get the short timeout.
		g := startGRPCGateway(t, b)
		c := grpcClient(t, g.p.Addrs()[8080].String())
		_, err := c.UnaryCall(metadata.AppendToOutgoingContext(callCtx(t), "x-hang", "1"), &testpb.SimpleRequest{})
		if s := status.Convert(err); s.Code() != codes.DeadlineExceeded || s.Message() != "upstream request timeout" {
			t.Fatalf("got %v, want DeadlineExceeded from the gateway", err)
		}
	})
}

// TestGRPCResetAfterDeadline sends a call whose client does not enforce
// its own grpc-timeout, as a slow or busy client may not have yet: the
// backend resets the call when the deadline passes, and the gateway must
// answer DEADLINE_EXCEEDED, as the client would read that reset itself.
func TestGRPCResetAfterDeadline(t *testing.T) {
	for _, tc := range []struct {
		timeout string
		want    string
	}{
		{"100m", strconv.Itoa(int(codes.DeadlineExceeded))},
		{"", strconv.Itoa(int(codes.Unavailable))}, // reset without a deadline: the backend stops
	} {
		t.Run("grpc-timeout="+tc.timeout, func(t *testing.T) {
			b := startGRPCBackend(t, "backend")
			g := startGRPCGateway(t, b)
			url := "http://" + g.p.Addrs()[8080].String() + "/grpc.testing.TestService/UnaryCall"
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			req.Header.Set("X-Hang", "busy")
			if tc.timeout != "" {
				req.Header.Set("Grpc-Timeout", tc.timeout)
			} else {
				time.AfterFunc(200*time.Millisecond, b.srv.Stop) // closes its connections
			}
			res, err := h2cClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if got := res.Header.Get("Grpc-Status"); got != tc.want {
				t.Fatalf("grpc-status %q (%q), want %s", got, res.Header.Get("Grpc-Message"), tc.want)
			}
		})
	}
}

func TestGRPCTimeout(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"1H": time.Hour, "2M": 2 * time.Minute, "3S": 3 * time.Second, "100m": 100 * time.Millisecond,
		"5u": 5 * time.Microsecond, "99999999n": 99999999, "99999999H": math.MaxInt64,
		"": -1, "S": -1, "1": -1, "1s": -1, "+1S": -1, "-1S": -1, "123456789S": -1, "1_0S": -1, " 1S": -1,
	} {
		r := &http.Request{Header: http.Header{"Grpc-Timeout": {v}}}
		got, ok := grpcTimeout(r)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("grpcTimeout(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestGRPCCodeFor(t *testing.T) {
	for status, want := range map[int]codes.Code{
		400: codes.Internal, 401: codes.Unauthenticated, 403: codes.PermissionDenied, 404: codes.Unimplemented,
		429: codes.Unavailable, 502: codes.Unavailable, 503: codes.Unavailable, 504: codes.DeadlineExceeded, 500: codes.Unknown,
	} {
		if got := grpcCodeFor(status); got != want {
			t.Errorf("grpcCodeFor(%d) = %v, want %v", status, got, want)
		}
	}
	if got := encodeGRPCMessage("a b%ü\n"); got != "a b%25%C3%BC%0A" {
		t.Errorf("encodeGRPCMessage = %q", got)
	}
}

const grpcRoutingYAML = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: grpc}
    - portMapping: {port: 9090, protocol: grpc}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: by-metadata, namespace: demo}
spec:
  virtualGateway: {name: gw}
  grpcRoute:
    match:
      serviceName: grpc.testing.TestService
      port: 8080
      metadata: [{name: x-tenant, match: {exact: blue}}]
    action: {target: {virtualService: {virtualServiceRef: {name: blue}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: by-hostname, namespace: demo}
spec:
  virtualGateway: {name: gw}
  grpcRoute:
    match:
      serviceName: grpc.testing.TestService
      port: 8080
      hostname: {exact: green.example.com}
    action: {target: {virtualService: {virtualServiceRef: {name: green}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: hostname-only, namespace: demo}
spec:
  virtualGateway: {name: gw}
  grpcRoute:
    match:
      port: 8080
      hostname: {suffix: .red.example.com}
    action: {target: {virtualService: {virtualServiceRef: {name: red}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: by-service, namespace: demo}
spec:
  virtualGateway: {name: gw}
  grpcRoute:
    match: {serviceName: grpc.testing.TestService, port: 8080}
    action: {target: {virtualService: {virtualServiceRef: {name: routed}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: by-port, namespace: demo}
spec:
  virtualGateway: {name: gw}
  grpcRoute:
    match: {serviceName: grpc.testing.TestService, port: 9090}
    action: {target: {virtualService: {virtualServiceRef: {name: green}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: routed, namespace: demo}
spec:
  awsName: routed.demo.svc.cluster.local
  provider:
    virtualRouter: {virtualRouterRef: {name: routed-vr}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: routed-vr, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 50051, protocol: grpc}
  routes:
    - name: empty-call
      grpcRoute:
        match: {serviceName: grpc.testing.TestService, methodName: EmptyCall}
        action: {weightedTargets: [{virtualNodeRef: {name: red-vn}, weight: 1}]}
    - name: canary
      grpcRoute:
        match:
          serviceName: grpc.testing.TestService
          methodName: UnaryCall
          metadata: [{name: x-canary}]
        action: {weightedTargets: [{virtualNodeRef: {name: canary-vn}, weight: 1}]}
    - name: rest
      grpcRoute:
        match: {serviceName: grpc.testing.TestService}
        action: {weightedTargets: [{virtualNodeRef: {name: blue-vn}, weight: 1}]}
`

// TestGRPCRouteMatching routes real gRPC calls by gateway route service
// name, metadata, hostname and port, then by router route method name and
// metadata, from manifests as a user writes them.
func TestGRPCRouteMatching(t *testing.T) {
	yaml := grpcRoutingYAML
	eps := map[string]string{}
	for _, name := range []string{"blue", "green", "red", "canary"} {
		b := startGRPCBackend(t, name)
		yaml += nodeYAML(name, "grpc", b.port)
		eps[hostOf(name)] = b.addr
	}
	g := startGateway(t, compiled(t, yaml, eps))
	addr := func(port int) string { return g.p.Addrs()[port].String() }
	// whoAnswers makes a call and returns the backend that answered it.
	whoAnswers := func(t *testing.T, c testpb.TestServiceClient, method string, md ...string) string {
		ctx := metadata.AppendToOutgoingContext(callCtx(t), md...)
		var header metadata.MD
		var err error
		switch method {
		case "EmptyCall":
			_, err = c.EmptyCall(ctx, &testpb.Empty{}, grpc.Header(&header))
		case "UnaryCall":
			_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&header))
		}
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return strings.Join(header.Get("x-backend"), ",")
	}
	plain := grpcClient(t, addr(8080))
	cases := map[string]struct {
		client testpb.TestServiceClient
		method string
		md     []string
		want   string
	}{
		"service, then router method name":     {plain, "EmptyCall", nil, "red"},
		"service, then router catch-all":       {plain, "UnaryCall", nil, "blue"},
		"service, then router method+metadata": {plain, "UnaryCall", []string{"x-canary", "1"}, "canary"},
		"gateway route metadata":               {plain, "EmptyCall", []string{"x-tenant", "blue"}, "blue"},
		"gateway route metadata, other value":  {plain, "EmptyCall", []string{"x-tenant", "bluer"}, "red"},
		"hostname exact":                       {grpcClient(t, addr(8080), grpc.WithAuthority("green.example.com")), "EmptyCall", []string{"x-tenant", "blue"}, "green"},
		"hostname suffix without service name": {grpcClient(t, addr(8080), grpc.WithAuthority("api.red.example.com:443")), "UnaryCall", nil, "red"},
		"listener port":                        {grpcClient(t, addr(9090)), "EmptyCall", nil, "green"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := whoAnswers(t, c.client, c.method, c.md...); got != c.want {
				t.Fatalf("answered by %q, want %q", got, c.want)
			}
		})
	}
	t.Run("the upstream sees the virtual service's name and the metadata", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-tenant", "blue")
		res, err := plain.UnaryCall(ctx, &testpb.SimpleRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Hostname != hostOf("blue") || res.Username != "blue" {
			t.Fatalf(":authority %q, x-tenant %q", res.Hostname, res.Username)
		}
	})
	t.Run("another service is not routed", func(t *testing.T) {
		_, err := testpb.NewUnimplementedServiceClient(grpcConn(t, addr(8080))).UnimplementedCall(callCtx(t), &testpb.Empty{})
		if s := status.Convert(err); s.Code() != codes.Unimplemented || s.Message() != "no route matched" {
			t.Fatalf("got %v", err)
		}
	})
}
