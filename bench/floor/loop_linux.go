//go:build linux

package main

import (
	"errors"
	"io"
	"iter"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// errStopped ends a coroutine's blocked call when its loop stops it.
var errStopped = errors.New("loop stopped the connection")

// serveLoop accepts clients on ln and serves them all from the calling
// goroutine: proxy runs for each as a coroutine, and its sockets' reads and
// writes, instead of waiting in Go's netpoller, return to the loop, which
// resumes the coroutine when epoll reports the socket ready.
func serveLoop(ln net.Listener, upstream string) error {
	defer runtime.KeepAlive(ln) // its finalizer would close the socket the loop accepts on
	addr, err := net.ResolveTCPAddr("tcp", upstream)
	if err != nil {
		return err
	}
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return err
	}
	lfd := -1
	if err := rc.Control(func(fd uintptr) { lfd = int(fd) }); err != nil {
		return err
	}
	lp, err := newLoop()
	if err != nil {
		return err
	}
	lp.lfd, lp.upstream = lfd, sockaddr(addr)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)}
	if err := syscall.EpollCtl(lp.epfd, syscall.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		return err
	}
	return lp.run()
}

func sockaddr(a *net.TCPAddr) syscall.Sockaddr {
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa
	}
	sa := &syscall.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa
}

// loop is an epoll set, the sockets in it and the coroutines that own them.
type loop struct {
	epfd     int
	lfd      int // the listening socket, level-triggered
	upstream syscall.Sockaddr
	events   []syscall.EpollEvent
	n        int       // events the last wait returned
	socks    []*socket // by file descriptor
	waitFn   func(uintptr) bool
}

func newLoop() (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that os.NewFile puts it in Go's netpoller: the loop
	// sleeps there when nothing is ready, as any goroutine would.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	lp := &loop{epfd: epfd, events: make([]syscall.EpollEvent, 128)}
	lp.waitFn = func(uintptr) bool { return lp.poll() }
	return lp, nil
}

// poll collects what is ready without sleeping; false: nothing is.
func (lp *loop) poll() bool {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(lp.epfd),
		uintptr(unsafe.Pointer(&lp.events[0])), uintptr(len(lp.events)), 0, 0, 0)
	lp.n = int(r)
	if e != 0 {
		lp.n = 0
	}
	return lp.n > 0
}

func (lp *loop) run() error {
	f := os.NewFile(uintptr(lp.epfd), "epoll")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for {
		if !lp.poll() {
			// The function polls again once Go's netpoller has seen the
			// epoll set become readable.
			if err := rc.Read(lp.waitFn); err != nil {
				return err
			}
		}
		// In the kernel's order: the socket ready first is served first.
		for _, ev := range lp.events[:lp.n] {
			if int(ev.Fd) == lp.lfd {
				lp.accept()
				continue
			}
			if s := lp.socks[ev.Fd]; s != nil {
				s.ready(ev.Events)
			}
		}
	}
}

func (lp *loop) accept() {
	for {
		fd, _, err := syscall.Accept4(lp.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			// EAGAIN: all accepted. Anything else (out of file
			// descriptors) the next event retries at once: a reference
			// point, not a server, has no back-off.
			return
		}
		co := &coroutine{}
		client, err := lp.add(fd, co)
		if err != nil {
			syscall.Close(fd)
			continue
		}
		co.start(func() { proxy(client, func() (io.ReadWriteCloser, error) { return lp.dial(co) }) })
	}
}

// dial connects to the upstream from coroutine co, which waits for the
// connection to complete.
func (lp *loop) dial(co *coroutine) (io.ReadWriteCloser, error) {
	family := syscall.AF_INET
	if _, v6 := lp.upstream.(*syscall.SockaddrInet6); v6 {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	s, err := lp.add(fd, co)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := syscall.Connect(fd, lp.upstream); err != nil && err != syscall.EINPROGRESS {
		s.Close()
		return nil, err
	}
	// The connection is made when the socket becomes writable.
	s.wready = false
	for !s.wready {
		if err := s.wait(true); err != nil {
			s.Close()
			return nil, err
		}
	}
	soErr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err == nil && soErr != 0 {
		err = syscall.Errno(soErr)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// add puts fd in the epoll set, edge-triggered, owned by co.
func (lp *loop) add(fd int, co *coroutine) (*socket, error) {
	// As net.Dial and net.Listen do.
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff, Fd: int32(fd)}
	if err := syscall.EpollCtl(lp.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return nil, err
	}
	for fd >= len(lp.socks) {
		lp.socks = append(lp.socks, make([]*socket, len(lp.socks)+64)...)
	}
	s := &socket{fd: fd, lp: lp, co: co, rready: true, wready: true}
	lp.socks[fd] = s
	return s, nil
}

// coroutine runs a connection's code, which returns to the loop whenever
// one of its sockets has nothing to give or take.
type coroutine struct {
	yield   func(struct{}) bool
	next    func() (struct{}, bool)
	waiting *socket // the socket the coroutine waits on; nil: none
	writing bool    // for room to write, rather than bytes to read
}

func (co *coroutine) start(f func()) {
	co.next, _ = iter.Pull(func(yield func(struct{}) bool) {
		co.yield = yield
		f()
	})
	co.next()
}

// socket is a non-blocking TCP socket outside Go's netpoller, read and
// written by the coroutine that owns it. rready and wready are false once
// the kernel is known to have nothing to read or no room to write, until
// epoll reports otherwise: a short read means the socket is drained, so
// most requests cost no read that finds nothing.
type socket struct {
	fd             int
	lp             *loop
	co             *coroutine
	rready, wready bool
}

func (s *socket) ready(events uint32) {
	if events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		s.rready = true
	}
	if events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		s.wready = true
	}
	co := s.co
	if co.waiting == s && (co.writing && s.wready || !co.writing && s.rready) {
		co.waiting = nil
		co.next()
	}
}

// wait returns to the loop until s is ready to write (or read).
func (s *socket) wait(write bool) error {
	s.co.waiting, s.co.writing = s, write
	if !s.co.yield(struct{}{}) {
		return errStopped
	}
	return nil
}

func (s *socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if !s.rready {
			if err := s.wait(false); err != nil {
				return 0, err
			}
			continue
		}
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case e == syscall.EAGAIN:
			s.rready = false
		case e == syscall.EINTR:
		case e != 0:
			return 0, e
		case n == 0:
			return 0, io.EOF
		default:
			if int(n) < len(p) {
				s.rready = false
			}
			return int(n), nil
		}
	}
}

func (s *socket) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		if !s.wready {
			if err := s.wait(true); err != nil {
				return done, err
			}
			continue
		}
		rest := p[done:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(s.fd), uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch {
		case e == syscall.EAGAIN:
			s.wready = false
		case e == syscall.EINTR:
		case e != 0:
			return done, e
		default:
			done += int(n)
		}
	}
	return done, nil
}

// Close closes the socket, which takes it out of the epoll set.
func (s *socket) Close() error {
	s.lp.socks[s.fd] = nil
	return syscall.Close(s.fd)
}
