package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/dataplane"
)

// interopCases are the gRPC interop test cases that make sense through a
// proxy (the others need credentials, compression or load balancing). A
// proxy that mishandles trailers-only responses or half-closed streams
// fails some of them only now and then, so they run in several loops at
// once.
var interopCases = []string{
	"empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
	"status_code_and_message", "special_status_message", "custom_metadata", "timeout_on_sleeping_server",
	"cancel_after_begin", "cancel_after_first_response", "unimplemented_method", "unimplemented_service",
}

const interopLoops = 3

// grpcVersion is the grpc-go version go.mod requires; the interop client
// and server are built from the same one.
func grpcVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "google.golang.org/grpc").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestGRPCInterop runs the gRPC interop client against the gRPC interop
// server through grpc listeners, cleartext and TLS, every case in several
// loops at once. unimplemented_service is answered by the gateway itself
// (no route names that service).
func TestGRPCInterop(t *testing.T) {
	bin := binDir(t)
	v := grpcVersion(t)
	goCmd(t, t.TempDir(), []string{"GOBIN=" + bin}, "install",
		"google.golang.org/grpc/interop/server@"+v, "google.golang.org/grpc/interop/client@"+v)

	serverPort := freePort(t)
	server := exec.Command(filepath.Join(bin, "server"), "-port", strconv.Itoa(serverPort))
	var serverOut bytes.Buffer
	server.Stdout, server.Stderr = &serverOut, &serverOut
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Kill()
		server.Wait()
	})
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", serverPort))

	dir := t.TempDir()
	gatewayCert(t, dir, "gw.example.com")
	yaml := twoListenerYAML("grpc", "grpcRoute", "serviceName: grpc.testing.TestService", "interop", dir) + serviceYAML("interop", "grpc", serverPort)
	addrs := startGateway(t, compiled(t, yaml, map[string]string{"interop.demo.svc.cluster.local": fmt.Sprintf("127.0.0.1:%d", serverPort)}), dataplane.Options{})

	client := func(tc string, tls bool) error {
		args := []string{"-server_host", "127.0.0.1", "-test_case", tc}
		if tls {
			args = append(args, "-server_port", strconv.Itoa(port(addrs[8443])), "-use_tls", "-use_test_ca", "-ca_file", filepath.Join(dir, "ca.pem"), "-server_host_override", "gw.example.com")
		} else {
			args = append(args, "-server_port", strconv.Itoa(port(addrs[8080])))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "client"), args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s (tls=%v): %v\n%s", tc, tls, err, out)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, interopLoops*2*len(interopCases))
	for loop := range interopLoops {
		for _, tls := range []bool{false, true} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, tc := range interopCases {
					if err := client(tc, tls); err != nil {
						errs <- fmt.Errorf("loop %d: %w", loop, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		t.Error(err)
	}
	t.Logf("gRPC interop %s: %d cases x %d loops, cleartext and TLS: %d failed", v, len(interopCases), interopLoops, failed)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts connections on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
