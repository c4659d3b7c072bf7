//go:build linux

package kubetest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace made by a test, joined to the host by a veth
// pair on a /24 of 198.18.0.0/15 (the range set aside for network tests):
// the host end is .1, the test hosts are .2 upwards. EndpointSlices can name
// these addresses, and traffic to them never leaves the machine.
type Netns struct {
	Name   string
	hostIf string
	subnet [3]byte
	hosts  int
}

// NewNetns creates a network namespace with hosts test host addresses and
// removes it when the test ends. It needs root and iproute2 (`ip`).
func NewNetns(t testing.TB, hosts int) *Netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the network namespace tests need iproute2's `ip` (apt-get install iproute2)")
	}
	var b [4]byte
	rand.Read(b[:])
	id := binary.BigEndian.Uint32(b[:])
	n := &Netns{
		Name:   fmt.Sprintf("meshgate-test-%d-%08x", os.Getpid(), id),
		hostIf: fmt.Sprintf("mgt%08x", id),
		hosts:  hosts,
	}
	// Pick a /24 no interface of this machine uses yet.
	for try := 0; ; try++ {
		rand.Read(b[:2])
		n.subnet = [3]byte{198, 18 + b[0]&1, b[1]}
		out, err := exec.Command("ip", "-4", "-o", "addr", "show", "to", n.prefix()+".0/24").Output()
		if err == nil && len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if try > 20 {
			t.Fatalf("no free /24 in 198.18.0.0/15: %v %s", err, out)
		}
	}
	peer := "mgp" + n.hostIf[3:]
	cmds := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", n.hostIf, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", n.Name},
		{"addr", "add", n.prefix() + ".1/24", "dev", n.hostIf},
		{"link", "set", n.hostIf, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "link", "set", peer, "up"},
	}
	for _, ip := range n.IPs() {
		cmds = append(cmds, []string{"-n", n.Name, "addr", "add", ip + "/24", "dev", peer})
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.Name).Run()
		exec.Command("ip", "link", "del", n.hostIf).Run()
	})
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s (the network namespace tests need root)", strings.Join(c, " "), err, out)
		}
	}
	return n
}

func (n *Netns) prefix() string {
	return fmt.Sprintf("%d.%d.%d", n.subnet[0], n.subnet[1], n.subnet[2])
}

// IPs are the test host addresses inside the namespace.
func (n *Netns) IPs() []string {
	var ips []string
	for i := 0; i < n.hosts; i++ {
		ips = append(ips, fmt.Sprintf("%s.%d", n.prefix(), i+2))
	}
	return ips
}

// Listen opens a TCP listener inside the namespace. The socket stays in the
// namespace it was made in, so the caller serves on it from any goroutine.
func (n *Netns) Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread enters the namespace only to make the socket. If it
		// cannot return, it stays locked and dies with this goroutine.
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + n.Name)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{err: fmt.Errorf("entering %s: %w", n.Name, err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{ln, err}
	}()
	r := <-res
	if r.err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, n.Name, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln
}
