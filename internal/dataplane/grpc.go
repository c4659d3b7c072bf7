package dataplane

import (
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// A gRPC client cannot read an HTML or plain-text error page: it needs
// grpc-status. Whatever the gateway answers on its own behalf to a gRPC call
// (no route, no upstream, a timeout, a full connection pool) is therefore a
// trailers-only response: HTTP 200, content-type application/grpc, and
// grpc-status and grpc-message in the only HEADERS frame.

// isGRPC reports whether r is a gRPC call (not gRPC-Web, which browsers
// send over HTTP/1.1 and which reads errors differently).
func isGRPC(r *http.Request) bool {
	ct := field(r.Header, "Content-Type")
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcCodeFor is the gRPC status a gateway-made HTTP error becomes. It is
// Envoy's mapping (and the one gRPC clients apply to HTTP statuses), except
// that a timeout is DEADLINE_EXCEEDED: the caller's deadline did not pass,
// the gateway's own timeout did, and the client should see that it was a
// timeout rather than a transient unavailability.
func grpcCodeFor(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.Internal
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	}
	return codes.Unknown
}

// localGRPCReply answers a gRPC call on the gateway's behalf with an explicit
// status, for failures whose HTTP status does not say enough (a full
// connection pool is RESOURCE_EXHAUSTED, not UNAVAILABLE). Other callers use
// localReply, which maps its HTTP status with grpcCodeFor.
func (p *Plane) localGRPCReply(e *exchange, code codes.Code, flag, msg string) {
	e.flags = flag
	writeGRPCError(e, code, msg)
}

// writeGRPCError writes a trailers-only gRPC response.
func writeGRPCError(w http.ResponseWriter, code codes.Code, msg string) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Trailer"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(code)))
	if msg != "" {
		h.Set("Grpc-Message", encodeGRPCMessage(msg))
	}
	w.WriteHeader(http.StatusOK)
}

// encodeGRPCMessage percent-encodes a grpc-message value as the gRPC
// HTTP/2 protocol requires: every byte outside printable ASCII, and '%'.
func encodeGRPCMessage(msg string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
