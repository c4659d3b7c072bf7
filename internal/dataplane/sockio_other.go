//go:build !linux

package dataplane

import (
	"io"
	"net"
)

// socketIO returns c: raw socket I/O is Linux's alone here.
func socketIO(c net.Conn) io.ReadWriter { return c }
