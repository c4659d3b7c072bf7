// Package conformance runs checkers that the HTTP/2, gRPC and web server
// communities use against a real gateway: h2spec (the HTTP/2 conformance
// suite) on an http2 listener, the gRPC interop client and server through a
// grpc listener, and slowhttptest's slow-headers and slow-body attacks on an
// http listener. It holds only tests; the Go checkers are built by the tests
// from pinned module versions, slowhttptest comes from Debian (.ci/run
// installs it).
package conformance
