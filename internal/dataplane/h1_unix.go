//go:build unix

package dataplane

import "syscall"

// peekOpen looks, without blocking or consuming anything, whether the
// socket fd has been closed by its peer or has unread bytes.
func peekOpen(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
