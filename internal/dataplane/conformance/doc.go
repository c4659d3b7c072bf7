// Package conformance runs checkers that the HTTP/2 and gRPC communities
// use against a real gateway: h2spec (the HTTP/2 conformance suite) on an
// http2 listener, and the gRPC interop client and server through a grpc
// listener. It holds only tests; the checkers are built by the tests from
// pinned module versions.
package conformance
