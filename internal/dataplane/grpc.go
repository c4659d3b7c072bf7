package dataplane

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

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

// grpcTimeout is the deadline a gRPC call carries in grpc-timeout: 1 to 8
// digits and a unit, H, M, S, m, u or n (gRPC over HTTP/2, "Timeout").
func grpcTimeout(r *http.Request) (time.Duration, bool) {
	v := field(r.Header, "Grpc-Timeout")
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > math.MaxInt64/uint64(unit) {
		return math.MaxInt64, true // 8 digits of hours do not fit: as good as none
	}
	return time.Duration(n) * unit, true
}

// pastGRPCDeadline reports whether e is a gRPC call whose grpc-timeout
// has run out since the gateway received it. A gRPC server resets a call
// when its deadline passes (grpc-go sends RST_STREAM CANCEL), and a client
// connected to it directly reads that reset as DEADLINE_EXCEEDED; through
// the gateway it must read the same, not UNAVAILABLE.
func pastGRPCDeadline(e *exchange) bool {
	if !isGRPC(e.r) {
		return false
	}
	d, ok := grpcTimeout(e.r)
	return ok && time.Since(e.start) >= d
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
