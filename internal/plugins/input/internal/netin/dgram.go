package netin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// DatagramQueueLimit bounds the events a datagram input holds while the
// pipeline is slow; beyond it datagrams are dropped and counted.
const DatagramQueueLimit = 4 << 20

// Datagrams runs a datagram socket (udp or unixgram): one goroutine reads
// and decodes, another writes, so reading never waits for the pipeline.
// While the input is paused, or the queue is full, decoded records are
// dropped and counted in Metrics.Dropped: a datagram sender cannot be
// slowed down, and the kernel would drop them anyway, uncounted.
type Datagrams struct {
	Conn    net.PacketConn
	Size    int // largest datagram read
	Pause   *PauseFlag
	Metrics *telemetry.NetInputMetrics
	Log     *slog.Logger
	// Decode appends the records of one datagram from peer to b.
	Decode func(b *Batch, data []byte, peer net.Addr)
}

// Run reads until ctx ends and returns once what was queued is written.
func (d *Datagrams) Run(ctx context.Context, w plugin.Writer) error {
	q := NewQueue(DatagramQueueLimit)
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	werr := make(chan error, 1)
	go func() { werr <- q.Run(wctx, &Writes{W: w}, 5*time.Second) }()
	stop := context.AfterFunc(ctx, func() { d.Conn.Close() })
	defer stop()
	buf := make([]byte, max(d.Size, 1))
	var b Batch
	var err error
	for {
		n, peer, rerr := d.Conn.ReadFrom(buf)
		if rerr != nil {
			if ctx.Err() == nil && !errors.Is(rerr, net.ErrClosed) {
				var ne net.Error
				if errors.As(rerr, &ne) && ne.Timeout() {
					continue
				}
				err = rerr
			}
			break
		}
		b.Reset()
		d.Decode(&b, buf[:n], peer)
		if b.Records == 0 {
			continue
		}
		if d.Pause.IsPaused() || !q.Put(&b) {
			d.Metrics.Dropped.Add(uint64(b.Records))
			d.Log.Debug("pipeline paused or behind: datagram records dropped", "records", b.Records)
		}
	}
	d.Conn.Close()
	stopWriter()
	if e := <-werr; err == nil {
		err = e
	}
	return err
}
