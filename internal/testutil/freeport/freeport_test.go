package freeport

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestGetIsOutsideEphemeralAndFree(t *testing.T) {
	low, high := ephemeralRange()
	for range 20 {
		p := Get(t)
		if p >= low && p <= high && (low-lowest > 100 || 65535-high > 100) {
			t.Fatalf("port %d inside the ephemeral range %d-%d", p, low, high)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		l.Close()
	}
}

func TestPickSkipsTakenPorts(t *testing.T) {
	// With a range of a single port that is taken, pick must fail rather
	// than hand it out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := free(l.Addr().(*net.TCPAddr).Port); err == nil {
		t.Fatal("free reported a listening port as free")
	}
}

// pick uses the room above the ephemeral range when there is none below.
func TestPickAboveWhenNoRoomBelow(t *testing.T) {
	for range 20 {
		p, err := pick(1024, 60999)
		if err != nil {
			t.Fatal(err)
		}
		if p <= 60999 {
			t.Fatalf("port %d not above 60999", p)
		}
	}
}

// Listen waits for a taken address to come free instead of failing.
func TestListenRetriesWhileInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := held.Addr().String()
	go func() {
		time.Sleep(300 * time.Millisecond)
		held.Close()
	}()
	ln, err := Listen(addr)
	if err != nil {
		t.Fatalf("Listen %s: %v", addr, err)
	}
	ln.Close()
	if _, err := Listen("127.0.0.1:99999"); err == nil || InUse(err) {
		t.Fatalf("a bad address: %v", err)
	}
}
