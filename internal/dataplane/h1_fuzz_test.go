package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzH1Response feeds arbitrary bytes to the upstream response parser as
// the answer to a GET. Whatever it accepts, net/http's own parser must
// accept too, with the same status and the same body bytes: the two never
// disagree on where a response ends, so no response can smuggle another.
func FuzzH1Response(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		pc := newTestConn()
		res, body, err := parseResponseBytes(req, data, pc)
		if err != nil {
			return
		}
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(skip1xx(data))), req)
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", err, data)
		}
		wantBody, err := io.ReadAll(want.Body)
		if err != nil {
			t.Fatalf("accepted a body net/http cannot read (%v): %q", err, data)
		}
		if want.StatusCode != res.StatusCode || !bytes.Equal(body, wantBody) {
			t.Fatalf("read %d %q, net/http %d %q, from %q", res.StatusCode, body, want.StatusCode, wantBody, data)
		}
		if !reflect.DeepEqual(res.Header, want.Header) {
			t.Fatalf("header %q, net/http's %q, from %q", res.Header, want.Header, data)
		}
		// The same response again on the same connection: its field
		// lines now come from the connection's cache.
		again, _, err := parseResponseBytes(req, data, pc)
		if err != nil || !reflect.DeepEqual(again.Header, want.Header) || again.StatusCode != want.StatusCode {
			t.Fatalf("read again: %v, header %q, net/http's %q, from %q", err, again.Header, want.Header, data)
		}
		// The direct path keeps a final response's fields as lines: they
		// fill the same header but for the hop-by-hop fields, and the
		// same facts are noted.
		head := finalHead(t, data)
		var full, kept h1Response
		if err := parseResponseHead(head, &full, nil, nil); err != nil {
			t.Fatalf("final head refused alone (%v): %q", err, head)
		}
		var fc fieldCache
		for range 2 { // the second time from the cache
			if err := parseResponseHead(head, &kept, http.Header{}, &fc); err != nil {
				t.Fatalf("final head refused as lines (%v): %q", err, head)
			}
		}
		filled := http.Header{}
		fillHeader(filled, kept.lines)
		for k := range full.res.Header {
			if isHopByHop(k) {
				delete(full.res.Header, k)
			}
		}
		if !reflect.DeepEqual(filled, full.res.Header) || !reflect.DeepEqual(kept.facts, full.facts) {
			t.Fatalf("as lines %q noting %q, in full %q noting %q, from %q", filled, kept.facts, full.res.Header, full.facts, data)
		}
		// A byte at a time, the head is never buffered whole: it is read
		// line by line instead of where it lies.
		slow, slowBody, err := parseResponseFrom(req, iotest.OneByteReader(bytes.NewReader(data)), newTestConn())
		if err != nil || slow.StatusCode != want.StatusCode || !bytes.Equal(slowBody, wantBody) || !reflect.DeepEqual(slow.Header, want.Header) {
			t.Fatalf("read a byte at a time: %v, %d %q %q, net/http's %d %q %q, from %q", err, slow.StatusCode, slow.Header, slowBody, want.StatusCode, want.Header, wantBody, data)
		}
	})
}

func newTestConn() *h1Conn {
	return &h1Conn{t: newH1Transport(nil, 0, &http.Transport{}), c: nopConn{}}
}

// parseResponseBytes reads the response to req from data on pc as the
// transport does.
func parseResponseBytes(req *http.Request, data []byte, pc *h1Conn) (*http.Response, []byte, error) {
	return parseResponseFrom(req, bytes.NewReader(data), pc)
}

// parseResponseFrom is parseResponseBytes reading from r. It also checks
// that the facts noted of the head are what its header says.
func parseResponseFrom(req *http.Request, r io.Reader, pc *h1Conn) (*http.Response, []byte, error) {
	pc.br = bufio.NewReaderSize(r, 4096)
	hr, err := pc.readResponse(context.Background(), req, nil)
	if err != nil {
		return nil, nil, err
	}
	for k := factConnection; k < nFacts; k++ {
		if got, want := hr.facts[k], hr.res.Header[factKeys[k]]; !reflect.DeepEqual(got, want) {
			return nil, nil, fmt.Errorf("%s noted as %q, the header has %q", factKeys[k], got, want)
		}
	}
	res, err := pc.body(req, hr, connWatch{stop: func() bool { return true }})
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res, body, err
}

// finalHead is the head of the final response in data, as readResponse
// hands it to parseResponseHead.
func finalHead(t *testing.T, data []byte) []byte {
	final := skip1xx(data)
	br := bufio.NewReaderSize(bytes.NewReader(final), len(final)+16)
	br.Peek(1)
	if head, ok := peekHead(br); ok {
		return head
	}
	head, err := readHead(br, nil)
	if err != nil {
		t.Fatalf("final head unread (%v): %q", err, data)
	}
	return head
}

// skip1xx drops the informational responses the transport passes over, so
// that net/http's parser, which returns the first response, sees the final one.
func skip1xx(data []byte) []byte {
	for bytes.HasPrefix(data, []byte("HTTP/1.1 1")) || bytes.HasPrefix(data, []byte("HTTP/1.0 1")) {
		i := bytes.Index(data, []byte("\r\n\r\n"))
		if i < 0 {
			return data
		}
		data = data[i+4:]
	}
	return data
}

type nopConn struct{}

func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (nopConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
