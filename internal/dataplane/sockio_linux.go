package dataplane

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sockIO reads and writes a TCP connection's socket with raw system calls,
// waiting in Go's netpoller as net.Conn does when the socket has nothing to
// give or take. The socket is non-blocking, so a call never sleeps in the
// kernel, and the runtime's accounting around a system call that may block
// (entersyscall and exitsyscall, ~40 ns each time on the proxy path, six
// times a request) is skipped. Deadlines set on the connection still hold:
// the waits are the connection's own.
//
// One reader and one writer at a time, as the buffered reader and writer
// it serves use it.
type sockIO struct {
	rc syscall.RawConn

	// The call in progress, per direction; the functions are bound once so
	// that a call allocates nothing.
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(uintptr) bool

	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool

	waited       bool // a Read waited since readWaited last asked
	await        bool // the next Write waits for the reply (awaitReply)
	awaitWrote   bool
	writeAwaitFn func(uintptr) bool
}

// socketIO returns c's socket read and written directly when c is a TCP
// connection (or wraps one, as an upstream connection does), and c itself
// otherwise.
func socketIO(c net.Conn) io.ReadWriter {
	tc, ok := untracked(c).(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	s := &sockIO{rc: rc}
	s.readFn = s.read
	s.writeFn = s.write
	s.writeAwaitFn = s.writeAwait
	return s
}

func (s *sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerr = p, 0, 0
	err := s.rc.Read(s.readFn)
	s.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case s.rerr != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", s.rerr)}
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

func (s *sockIO) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, s.rbuf)
		switch e {
		case 0:
			s.rn = n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			s.waited = true
			return false
		default:
			s.rerr = e
			return true
		}
	}
}

func (s *sockIO) Write(p []byte) (int, error) {
	s.wbuf, s.wn, s.werr = p, 0, 0
	if s.await {
		s.await, s.awaitWrote = false, false
		s.rc.Read(s.writeAwaitFn)
		if s.werr == 0 && s.wn == len(p) {
			s.wbuf = nil
			return s.wn, nil
		}
		// The socket would not take it all, or could not be used:
		// the rest, and any error, as for any write.
		s.werr = 0
	}
	err := s.rc.Write(s.writeFn)
	n := s.wn
	s.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case s.werr != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", s.werr)}
	}
	return n, nil
}

func (s *sockIO) write(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		rest := s.wbuf[s.wn:]
		n, e := sysWrite(fd, rest)
		switch e {
		case 0:
			s.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// awaitReply: the next Write waits as a reader does, so no Read may run
// beside it; none does while a request without a body is being sent.
func (s *sockIO) awaitReply() { s.await = true }

func (s *sockIO) readWaited() bool {
	w := s.waited
	s.waited = false
	return w
}

// writeAwait writes the pending buffer inside a wait to read the socket,
// which forgets the socket's earlier readiness before it calls this, and
// so before the write: a reply, which can only follow the write, wakes
// the wait. A write that would block, or fails, ends it at once.
func (s *sockIO) writeAwait(fd uintptr) bool {
	if s.awaitWrote {
		return true // readable, or the wait ended: the read that follows says which
	}
	s.awaitWrote = true
	return !s.write(fd) || s.werr != 0
}
