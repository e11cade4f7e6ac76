package netout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Pool keeps the idle connections of one output to one address and writes
// payloads on them. A plain stream has no acknowledgement, so before reusing
// a connection it checks the peer has not closed it: a write on a connection
// the peer has closed can still succeed locally and lose the bytes.
type Pool struct {
	Dialer  *Dialer
	Network string // tcp or udp
	Addr    string
	MaxIdle int // 0: 8

	mu   sync.Mutex
	idle []net.Conn
}

// Write sends each payload of msgs (one datagram each over udp) on one
// connection; any failure closes that connection and is returned.
func (p *Pool) Write(ctx context.Context, msgs ...[]byte) error {
	c, err := p.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(time.Now()) })
	defer stop()
	_ = c.SetWriteDeadline(time.Now().Add(p.Dialer.IOTimeout))
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			c.Close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write to %s: %w", p.Addr, err)
		}
	}
	_ = c.SetWriteDeadline(time.Time{})
	p.put(c)
	return nil
}

func (p *Pool) get(ctx context.Context) (net.Conn, error) {
	for {
		p.mu.Lock()
		k := len(p.idle)
		if k == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[k-1]
		p.idle = p.idle[:k-1]
		p.mu.Unlock()
		if p.Network == "udp" || Alive(c) {
			return c, nil
		}
		c.Close()
	}
	c, err := p.Dialer.Dial(ctx, p.Network, p.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", p.Addr, err)
	}
	return c, nil
}

// Alive reports whether the peer has not closed c (nor sent anything, which
// an idle connection of these protocols never receives).
func Alive(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	n, err := c.Read(b[:])
	_ = c.SetReadDeadline(time.Time{})
	if n > 0 {
		return false // unexpected bytes: start over on a fresh connection
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// io.EOF, a reset: the peer is gone.
	return false
}

func (p *Pool) put(c net.Conn) {
	max := p.MaxIdle
	if max == 0 {
		max = 8
	}
	p.mu.Lock()
	if len(p.idle) < max {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Close closes the idle connections.
func (p *Pool) Close() {
	p.mu.Lock()
	for _, c := range p.idle {
		c.Close()
	}
	p.idle = nil
	p.mu.Unlock()
}
