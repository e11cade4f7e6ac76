// Package freeport picks loopback ports for tests that must listen on the
// same port again after a restart.
//
// Port 0 lets the kernel choose, but it chooses from the ephemeral range,
// which is also where every outgoing connection on the machine gets its
// local port. A test that stops a listener and starts it again on the same
// port can then find the port taken by some other test's client socket
// ("bind: address already in use"). Ports below the ephemeral range are
// never handed out that way, so only another listener can collide, and
// Get checks for that.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the bottom of the range Get draws from: above the well-known
// and commonly configured service ports.
const lowest = 10000

// Get returns a port on 127.0.0.1 that is free for TCP and UDP now and lies
// below the kernel's ephemeral range.
func Get(t testing.TB) int {
	t.Helper()
	p, err := pick(ephemeralLow())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Addr is Get as "127.0.0.1:port".
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Get(t)))
}

func pick(high int) (int, error) {
	if high <= lowest+100 {
		// An unusual ephemeral range leaves no room below it: fall back
		// to a kernel-chosen port.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var last error
	for range 200 {
		p := lowest + rand.IntN(high-lowest)
		if last = free(p); last == nil {
			return p, nil
		}
	}
	return 0, fmt.Errorf("free port below %d: 200 tries, last: %w", high, last)
}

func free(p int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return u.Close()
}

// ephemeralLow reads the bottom of the kernel's ephemeral port range,
// Linux's default where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
