package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// packedBatch and packedInFlight shape the PackedForward client: what
// Fluent Bit's out_forward sends (one chunk of entries per message, each
// acknowledged by the receiver) with a few chunks outstanding, so the
// figure is the server's throughput rather than one round trip per chunk.
const (
	packedBatch    = 2000
	packedInFlight = 4
)

// sendPacked sends n events as PackedForward messages with the chunk
// option and waits for every ack. It returns the client's CPU-seconds and
// the bytes it wrote.
func sendPacked(portStr string, n int64, p *proc) (float64, int64, error) {
	var conn net.Conn
	var err error
	for i := 0; i < 200; i++ { // the input listens a moment after start
		if conn, err = net.Dial("tcp", "127.0.0.1:"+portStr); err == nil {
			break
		}
		if p.exited() {
			return 0, 0, errors.New("server exited before the client connected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("packed forward client: %w", err)
	}
	defer conn.Close()
	before := selfCPU()

	// Acks come back on the same connection; a reader frees a slot for
	// each and reports the first problem.
	slots := make(chan struct{}, packedInFlight)
	acked := make(chan error, 1)
	chunks := (n + packedBatch - 1) / packedBatch
	go func() {
		dec := msgpack.NewDecoder(conn)
		for i := int64(0); i < chunks; i++ {
			var ack struct {
				Ack string `msgpack:"ack"`
			}
			if err := dec.Decode(&ack); err != nil {
				acked <- fmt.Errorf("reading ack %d of %d: %w", i+1, chunks, err)
				return
			}
			if ack.Ack == "" {
				acked <- fmt.Errorf("answer %d of %d carries no ack", i+1, chunks)
				return
			}
			<-slots
		}
		acked <- nil
	}()

	var entries, msg bytes.Buffer
	ent := msgpack.NewEncoder(&entries)
	out := msgpack.NewEncoder(&msg)
	var written int64
	var ts [10]byte
	ts[0], ts[1] = 0xd7, 0x00 // fixext 8, type 0: EventTime
	for seq, c := int64(0), int64(0); seq < n; c++ {
		entries.Reset()
		now := time.Now()
		binary.BigEndian.PutUint32(ts[2:], uint32(now.Unix()))
		binary.BigEndian.PutUint32(ts[6:], uint32(now.Nanosecond()))
		size := min(int64(packedBatch), n-seq)
		for i := int64(0); i < size; i++ {
			_ = ent.EncodeArrayLen(2)
			entries.Write(ts[:])
			_ = ent.EncodeMapLen(5)
			_ = ent.EncodeString("seq")
			_ = ent.EncodeInt(seq)
			_ = ent.EncodeString("level")
			_ = ent.EncodeString("info")
			_ = ent.EncodeString("service")
			_ = ent.EncodeString("checkout")
			_ = ent.EncodeString("latency_ms")
			_ = ent.EncodeFloat64(12.5)
			_ = ent.EncodeString("message")
			_ = ent.EncodeString("GET /api/v1/orders/" + strconv.FormatInt(seq, 10) + " 200")
			seq++
		}
		var id [16]byte
		binary.BigEndian.PutUint64(id[:], uint64(c))
		binary.BigEndian.PutUint64(id[8:], uint64(now.UnixNano()))
		msg.Reset()
		_ = out.EncodeArrayLen(3)
		_ = out.EncodeString("bench")
		_ = out.EncodeBytes(entries.Bytes())
		_ = out.EncodeMapLen(2)
		_ = out.EncodeString("size")
		_ = out.EncodeInt(size)
		_ = out.EncodeString("chunk")
		_ = out.EncodeString(base64.StdEncoding.EncodeToString(id[:]))
		select {
		case slots <- struct{}{}:
		case err := <-acked:
			if err == nil {
				err = errors.New("acks ended early")
			}
			return selfCPU() - before, written, err
		}
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(msg.Bytes()); err != nil {
			return selfCPU() - before, written, fmt.Errorf("writing chunk %d: %w", c, err)
		}
		written += int64(msg.Len())
	}
	select {
	case err = <-acked:
	case <-time.After(runTimeout(n)):
		err = errors.New("timed out waiting for the last acks")
	}
	return selfCPU() - before, written, err
}
