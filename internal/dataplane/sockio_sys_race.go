//go:build linux && race

package dataplane

import "syscall"

// Under the race detector, sockIO reads and writes through package
// syscall, which tells the detector what a raw system call would not: a
// read writes its buffer, a write reads it, and a read comes after the
// writes it may see (the detector's model of I/O as synchronization, as
// for net.Conn). Without it, a test that learns through a socket that the
// gateway is done with something reports a race that is not there.

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
