// Command floor is the least a Go HTTP/1.1 keep-alive reverse proxy does: a
// reference point for the benchmark (target go-floor), showing what Go's
// runtime and netpoller cost per proxied request on this machine, apart from
// any proxy's own per-request work. It is not a proxy to use.
//
// For each client connection it dials one upstream connection (1:1, kept
// for the connection's life) and loops: read the request head up to the
// empty line, write it unchanged upstream, read the response head, read the
// Content-Length bytes of body it announces, and write head and body to the
// client in one Write. Buffers are reused from one request to the next.
//
// It does not rewrite, add or remove any header (no X-Forwarded-For, no
// Connection handling), route, pool or retry, time out, or log requests. It
// takes only GET requests without a body (Content-Length or
// Transfer-Encoding in the request closes the connection) and only responses
// that state a Content-Length of at most 1 MiB; anything else, a status
// without a body (1xx, 204, 304), a head line over 4 KiB, a head over 64 KiB and
// every read or write error close both connections.
//
// With -loop (Linux), the same proxy code serves every connection as a
// coroutine (iter.Pull) that one goroutine resumes from an epoll set of its
// own, in the order the kernel reports the sockets ready; the sockets are
// outside Go's netpoller (target go-floor-loop). It shows what Go costs per
// request when the runtime's scheduler and netpoller are off the path, with
// the code still written as blocking reads and writes.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"log"
	"net"
)

const (
	maxHead = 64 << 10
	maxBody = 1 << 20
)

var errUnsupported = errors.New("unsupported message")

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to accept clients on")
	upstream := flag.String("upstream", "", "backend host:port every client connection is paired with")
	loop := flag.Bool("loop", false, "serve all connections from one goroutine's epoll loop, each as a coroutine (Linux only)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *loop {
		log.Fatal(serveLoop(ln, *upstream))
	}
	log.Fatal(serve(ln, *upstream))
}

// serve accepts clients until ln fails.
func serve(ln net.Listener, upstream string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go proxy(c, func() (io.ReadWriteCloser, error) { return net.Dial("tcp", upstream) })
	}
}

// proxy relays requests from client to its own upstream connection, which
// dial opens, until either side fails or sends something it does not take.
func proxy(client io.ReadWriteCloser, dial func() (io.ReadWriteCloser, error)) {
	defer client.Close()
	up, err := dial()
	if err != nil {
		return
	}
	defer up.Close()
	cr, ur := bufio.NewReader(client), bufio.NewReader(up)
	var buf []byte
	for {
		head, _, err := readHead(cr, buf[:0], true)
		if err != nil {
			return
		}
		if _, err := up.Write(head); err != nil {
			return
		}
		// The request is written; its bytes make room for the response.
		resp, n, err := readHead(ur, head[:0], false)
		if err != nil || n < 0 {
			return
		}
		h := len(resp)
		resp = append(resp, make([]byte, n)...)
		if _, err := io.ReadFull(ur, resp[h:]); err != nil {
			return
		}
		if _, err := client.Write(resp); err != nil {
			return
		}
		buf = resp
	}
}

// readHead appends lines from r to buf up to and including the empty line,
// and returns the head's Content-Length (-1 when it has none). A request
// must be a GET without one and without Transfer-Encoding; a response must
// have a status that carries a body.
func readHead(r *bufio.Reader, buf []byte, request bool) ([]byte, int, error) {
	n := -1
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, 0, err
		}
		buf = append(buf, line...)
		switch {
		case len(buf) > maxHead:
			return nil, 0, errUnsupported
		case first && request && !bytes.HasPrefix(line, []byte("GET ")):
			return nil, 0, errUnsupported
		case first && !request && (len(line) < 12 || line[9] == '1' || bytes.HasPrefix(line[9:], []byte("204")) || bytes.HasPrefix(line[9:], []byte("304"))):
			return nil, 0, errUnsupported
		case len(line) == 1 || len(line) == 2 && line[0] == '\r':
			return buf, n, nil
		case request && (field(line, "content-length") != nil || field(line, "transfer-encoding") != nil):
			return nil, 0, errUnsupported
		case !request:
			if v := field(line, "content-length"); v != nil {
				if n = atoi(v); n < 0 {
					return nil, 0, errUnsupported
				}
			}
		}
	}
}

// field returns the value of line if it is a header line named name (in
// lower case), compared case-insensitively; nil otherwise.
func field(line []byte, name string) []byte {
	if len(line) <= len(name) || line[len(name)] != ':' || !bytes.EqualFold(line[:len(name)], []byte(name)) {
		return nil
	}
	return bytes.TrimSpace(line[len(name)+1:])
}

// atoi parses a Content-Length of at most maxBody; -1 for anything else.
func atoi(v []byte) int {
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' || n > maxBody {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if len(v) == 0 || n > maxBody {
		return -1
	}
	return n
}
