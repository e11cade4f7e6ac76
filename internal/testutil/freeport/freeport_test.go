package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetIsBelowEphemeralAndFree(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		p := Get(t)
		if p < lowest || (low > lowest+100 && p >= low) {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, low)
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
