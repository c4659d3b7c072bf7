package dataplane

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection; the first is
// read and written through socketIO.
func tcpPair(t *testing.T) (*net.TCPConn, *sockIO, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	s, ok := socketIO(c).(*sockIO)
	if !ok {
		t.Fatalf("socketIO(%T) is not raw", c)
	}
	return c.(*net.TCPConn), s, peer
}

func TestSocketIOChoosesRawForTCPOnly(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := socketIO(a); got != io.ReadWriter(a) {
		t.Errorf("socketIO(pipe) = %T, want the pipe itself", got)
	}
	c, _, _ := tcpPair(t)
	if _, ok := socketIO(&trackedConn{Conn: c}).(*sockIO); !ok {
		t.Error("socketIO(tracked TCP connection) is not raw")
	}
}

func TestSocketIO(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<21) // 32 MiB: more than both sockets' buffers hold
	tests := []struct {
		name string
		run  func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn)
	}{
		{"reads what the peer wrote, waiting for it", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				peer.Write([]byte("hello"))
			}()
			buf := make([]byte, 16)
			n, err := s.Read(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
		}},
		{"end of stream once the peer closes", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			peer.Write([]byte("last"))
			peer.Close()
			got, err := io.ReadAll(s)
			if err != nil || string(got) != "last" {
				t.Fatalf("ReadAll = %q, %v", got, err)
			}
			if n, err := s.Read(make([]byte, 4)); n != 0 || err != io.EOF {
				t.Fatalf("Read after the end = %d, %v; want 0, EOF", n, err)
			}
		}},
		{"a read deadline ends a wait as a timeout", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := s.Read(make([]byte, 4))
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Read past the deadline: %v; want a timeout", err)
			}
		}},
		{"closing the connection ends a wait", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				c.Close()
			}()
			if _, err := s.Read(make([]byte, 4)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read on a closed connection: %v; want net.ErrClosed", err)
			}
		}},
		{"a write larger than the socket buffers waits for the peer and arrives whole", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(peer)
				got <- b
			}()
			n, err := s.Write(big)
			if err != nil || n != len(big) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			c.CloseWrite()
			if b := <-got; !bytes.Equal(b, big) {
				t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(big))
			}
		}},
		{"a write to a peer that reset fails", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				_, err = s.Write(big[:4096])
				time.Sleep(time.Millisecond)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "write" {
				t.Fatalf("Write after the peer's reset: %v; want a write error", err)
			}
		}},
		{"a write deadline ends a wait as a timeout", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := s.Write(big)
			if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(big) {
				t.Fatalf("Write past the deadline = %d, %v; want part of it and a timeout", n, err)
			}
		}},
		{"a write that awaits the reply returns once the peer has answered, and the read then finds it", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			go func() {
				buf := make([]byte, 4)
				io.ReadFull(peer, buf)
				time.Sleep(20 * time.Millisecond)
				peer.Write([]byte("pong"))
			}()
			s.awaitReply()
			if n, err := s.Write([]byte("ping")); n != 4 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			// Had the write returned before the reply, 20 ms before the
			// peer sends it, the read below would have had to wait.
			s.readWaited()
			buf := make([]byte, 4)
			if n, err := s.Read(buf); err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
			if s.readWaited() {
				t.Error("the read after the wait found nothing")
			}
		}},
		{"a read that finds nothing is told by readWaited, once", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				peer.Write([]byte("late"))
			}()
			if _, err := s.Read(make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			if !s.readWaited() {
				t.Error("readWaited = false after a read that waited")
			}
			if s.readWaited() {
				t.Error("readWaited = true twice for one wait")
			}
		}},
		{"a write that awaits the reply ends at the read deadline, which the read then reports", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			s.awaitReply()
			if n, err := s.Write([]byte("ping")); n != 4 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if _, err := s.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read after the wait: %v; want a timeout", err)
			}
		}},
		{"a write that awaits the reply from a peer that has closed returns, and the read reports the end", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			peer.Close()
			time.Sleep(10 * time.Millisecond) // the close has arrived, as on an idle pooled connection
			done := make(chan error, 1)
			go func() {
				s.awaitReply()
				_, err := s.Write([]byte("ping"))
				if err == nil {
					_, err = s.Read(make([]byte, 4))
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a write and a read on a connection the peer closed both succeeded")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a write that awaits the reply waited on a connection the peer had closed")
			}
		}},
		{"a write that awaits the reply but does not fit the socket buffers still arrives whole", func(t *testing.T, c *net.TCPConn, s *sockIO, peer net.Conn) {
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(peer)
				got <- b
			}()
			s.awaitReply()
			if n, err := s.Write(big); err != nil || n != len(big) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			c.CloseWrite()
			if b := <-got; !bytes.Equal(b, big) {
				t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(big))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s, peer := tcpPair(t)
			tt.run(t, c, s, peer)
		})
	}
}

func TestSocketIOAllocatesNothing(t *testing.T) {
	_, s, peer := tcpPair(t)
	msg, buf := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf); err != nil {
			t.Fatal(err)
		}
		peer.Write(msg)
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a write and a read through socketIO allocate %v times; want 0", allocs)
	}
}
