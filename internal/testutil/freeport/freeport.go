// Package freeport picks loopback ports for tests that must listen on the
// same port again after a restart.
//
// Port 0 lets the kernel choose, but it chooses from the ephemeral range,
// which is also where every outgoing connection on the machine gets its
// local port. A test that stops a listener and starts it again on the same
// port can then find the port taken by some other test's client socket
// ("bind: address already in use"). Ports outside the ephemeral range are
// never handed out that way, so only another listener can collide, and
// Get checks for that; Listen retries for machines whose ephemeral range
// leaves no room outside it.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lowest is the bottom of the range Get draws from: above the well-known
// and commonly configured service ports.
const lowest = 10000

// Get returns a port on 127.0.0.1 that is free for TCP and UDP now and lies
// outside the kernel's ephemeral range where the range leaves room (below
// it, else above it); otherwise a kernel-chosen port, and Listen's retries
// are what keep a restart working.
func Get(t testing.TB) int {
	t.Helper()
	low, high := ephemeralRange()
	p, err := pick(low, high)
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

// Listen listens on TCP addr, retrying for up to 20 s while the address is
// in use: a port given up by a listener that restarts can be taken meanwhile
// as the local port of some client socket on the machine, which holds it
// only as long as its connection lasts.
func Listen(addr string) (ln net.Listener, err error) {
	err = WhileInUse(func() error {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// WhileInUse calls listen until it succeeds, fails for another reason than
// the address being in use, or 20 s have passed; it returns the last error.
func WhileInUse(listen func() error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := listen()
		if err == nil || !InUse(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// InUse reports whether err says the address is taken.
func InUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// pick draws a free port from [lowest, low) or (high, 65535].
func pick(low, high int) (int, error) {
	var ranges [][2]int // [from, to)
	if low-lowest > 100 {
		ranges = append(ranges, [2]int{lowest, low})
	}
	if 65536-(high+1) > 100 {
		ranges = append(ranges, [2]int{high + 1, 65536})
	}
	if len(ranges) == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var last error
	for range 200 {
		r := ranges[rand.IntN(len(ranges))]
		p := r[0] + rand.IntN(r[1]-r[0])
		if last = free(p); last == nil {
			return p, nil
		}
	}
	return 0, fmt.Errorf("free port outside %d-%d: 200 tries, last: %w", low, high, last)
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

// ephemeralRange reads the kernel's ephemeral port range, Linux's default
// where it cannot be read.
func ephemeralRange() (low, high int) {
	low, high = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return low, high
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l > h {
		return low, high
	}
	return l, h
}
