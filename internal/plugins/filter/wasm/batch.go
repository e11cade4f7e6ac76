package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wasmhost"
	"github.com/tetratelabs/wazero/api"
)

// Floe's batch ABI v1 (docs/wasm-abi.md): one guest call per chunk.
const (
	batchAllocName  = "floe_alloc"
	batchFilterName = "floe_filter_batch"
)

var (
	batchAllocParams   = []api.ValueType{wasmhost.I32}
	batchAllocResults  = []api.ValueType{wasmhost.I32}
	batchFilterParams  = []api.ValueType{wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32}
	batchFilterResults = []api.ValueType{api.ValueTypeI64}
)

// Frame kinds of the guest's output buffer.
const (
	frameEmit  = 'E' // u32 tag_len, tag, u32 data_len, events
	frameError = 'X' // u32 msg_len, msg: the chunk failed
)

// checkBatch checks the batch ABI exports.
func checkBatch(mod interface {
	CheckFunction(string, []api.ValueType, []api.ValueType) error
}) error {
	if err := mod.CheckFunction(batchFilterName, batchFilterParams, batchFilterResults); err != nil {
		return err
	}
	return mod.CheckFunction(batchAllocName, batchAllocParams, batchAllocResults)
}

// batchChunk runs the guest once on the whole chunk.
func (f *Filter) batchChunk(ctx context.Context, w *worker, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	if w.inst == nil {
		nw, err := f.newWorker(ctx)
		if err != nil {
			return nil, fmt.Errorf("wasm filter %s: %w", f.name, err)
		}
		*w = *nw
	}
	in := c.Records
	if in == 0 {
		n, err := event.Count(c.Data)
		if err != nil {
			return nil, fmt.Errorf("wasm filter %s: chunk: %w", f.name, err)
		}
		in = n
	}
	f.metrics.RecordsIn.Add(uint64(in))
	out, err := f.batchCall(ctx, w, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return nil, fatal.err
		}
		f.metrics.Errors.Add(1)
		f.errLog.log(f.log, "wasm batch call failed", "tag", c.Tag, "records", in, "error", err)
		if f.cfg.keep {
			f.metrics.RecordsOut.Add(uint64(in))
			return []*chunk.Chunk{c}, nil
		}
		f.metrics.Drops.Add(uint64(in))
		telemetry.NoteDrop(ctx, telemetry.DropFilterError, in)
		return nil, nil
	}
	n := 0
	for _, o := range out {
		o.Type = c.Type
		o.Source = c.Source
		n += o.Records
	}
	f.metrics.RecordsOut.Add(uint64(n))
	if n < in {
		f.metrics.Drops.Add(uint64(in - n))
	}
	return out, nil
}

// fatalError is a failure that must fail the chunk (no instance could be made).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

func (f *Filter) batchCall(ctx context.Context, w *worker, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	tagLen, dataLen := len(c.Tag), len(c.Data)
	if uint64(tagLen)+uint64(dataLen) > 1<<31 {
		return nil, fmt.Errorf("chunk of %d bytes is too large for guest memory", dataLen)
	}
	// The one host allocation of the chunk: tag and events side by side.
	w.stack[0] = uint64(tagLen + dataLen)
	if err := w.inst.Call(ctx, batchAllocName, w.alloc, w.stack[:1]); err != nil {
		f.callFailed(err)
		return nil, f.batchReplace(ctx, w, err)
	}
	ptr := uint32(w.stack[0])
	if ptr == 0 {
		err := fmt.Errorf("%s(%d) returned 0: no room in guest memory", batchAllocName, tagLen+dataLen)
		return nil, f.batchReplace(ctx, w, err)
	}
	mem := w.inst.Memory()
	if !mem.WriteString(ptr, c.Tag) || !mem.Write(ptr+uint32(tagLen), c.Data) {
		err := fmt.Errorf("%s returned %#x: %d bytes from there are outside guest memory (%d bytes)", batchAllocName, ptr, tagLen+dataLen, mem.Size())
		return nil, f.batchReplace(ctx, w, err)
	}
	w.stack = [6]uint64{uint64(ptr), uint64(tagLen), uint64(ptr) + uint64(tagLen), uint64(dataLen)}
	start := time.Now()
	err := w.inst.Call(ctx, batchFilterName, w.fn, w.stack[:4])
	f.metrics.LatencyNanosTotal.Add(int64(time.Since(start)))
	f.metrics.Calls.Add(1)
	w.calls++
	if err != nil {
		f.callFailed(err)
		return nil, f.batchReplace(ctx, w, err)
	}
	out, perr := parseBatchOutput(w.inst.Memory(), w.stack[0])
	if pages := int64(w.inst.MemoryBytes() / 65536); pages != w.pages {
		f.metrics.MemoryPages.Add(pages - w.pages)
		w.pages = pages
	}
	if recycle, why := w.inst.NeedsRecycle(); recycle {
		if err := f.recycle(ctx, w, why); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w.inst = nil
			if perr == nil {
				// The output is already copied out: keep it; the next chunk retries.
				f.log.Error("wasm instance could not be replaced", "error", err)
			}
		}
	}
	return out, perr
}

// batchReplace replaces the instance after a failed call and returns cause,
// or a fatalError when no instance can be made.
func (f *Filter) batchReplace(ctx context.Context, w *worker, cause error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := f.recycle(ctx, w, cause.Error()); err != nil {
		w.inst = nil
		return &fatalError{err: err}
	}
	return cause
}

// parseBatchOutput reads the frames the guest returned (ptr<<32 | len) and
// groups the emitted events by tag, in order of first appearance. The
// events are copied out of guest memory and checked.
func parseBatchOutput(mem api.Memory, ret uint64) ([]*chunk.Chunk, error) {
	ptr, n := uint32(ret>>32), uint32(ret)
	if n == 0 {
		return nil, nil
	}
	buf, ok := mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%s returned %d bytes at %#x, outside guest memory (%d bytes)", batchFilterName, n, ptr, mem.Size())
	}
	return parseFrames(buf)
}

// parseFrames parses an output buffer; the chunks copy what they keep.
func parseFrames(buf []byte) ([]*chunk.Chunk, error) {
	var out []*chunk.Chunk
	byTag := map[string]*chunk.Chunk{}
	field := func(off int, what string) ([]byte, int, error) {
		if len(buf)-off < 4 {
			return nil, 0, fmt.Errorf("output frame at byte offset %d: truncated %s length", off, what)
		}
		l := binary.LittleEndian.Uint32(buf[off:])
		off += 4
		if uint64(len(buf)-off) < uint64(l) {
			return nil, 0, fmt.Errorf("output frame: %s of %d bytes at byte offset %d runs past the end of the output (%d bytes)", what, l, off, len(buf))
		}
		return buf[off : off+int(l)], off + int(l), nil
	}
	for off := 0; off < len(buf); {
		kind := buf[off]
		switch kind {
		case frameEmit:
			tag, next, err := field(off+1, "tag")
			if err != nil {
				return nil, err
			}
			data, next, err := field(next, "events")
			if err != nil {
				return nil, err
			}
			it := event.NewIter(data)
			records := 0
			for it.Next() {
				if it.Event().Kind() == event.KindRecord {
					records++
				}
			}
			if err := it.Err(); err != nil {
				return nil, fmt.Errorf("output frame at byte offset %d (tag %q): invalid events: %w", off, tag, err)
			}
			c, ok := byTag[string(tag)]
			if !ok {
				c = &chunk.Chunk{Tag: string(tag)}
				byTag[c.Tag] = c
				out = append(out, c)
			}
			c.Data = append(c.Data, data...)
			c.Records += records
			off = next
		case frameError:
			msg, _, err := field(off+1, "error message")
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("guest error: %s", truncate(msg, 512))
		default:
			return nil, fmt.Errorf("output frame at byte offset %d: unknown kind %#x (want 'E' or 'X')", off, kind)
		}
	}
	// A tag whose frames carried no event at all makes no chunk.
	kept := out[:0]
	for _, c := range out {
		if len(c.Data) > 0 {
			kept = append(kept, c)
		}
	}
	return kept, nil
}
