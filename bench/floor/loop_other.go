//go:build !linux

package main

import (
	"errors"
	"net"
)

func serveLoop(net.Listener, string) error { return errors.New("-loop needs Linux's epoll") }
