package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wasmhost"
	"github.com/tetratelabs/wazero/api"
)

// Floe's batch ABI (docs/wasm-abi.md): one guest call per chunk. v2 adds
// the host's index of the chunk's events (no guest scan) and 'R' frames
// (re-emit input events by index, no re-encoding); a module exporting
// floe_filter_batch_v2 gets it, one exporting only floe_filter_batch v1.
const (
	batchAllocName     = "floe_alloc"
	batchFilterName    = "floe_filter_batch"
	batchFilterV2Name  = "floe_filter_batch_v2"
	batchConfigureName = "floe_configure"
)

// indexEntrySize is the size of one v2 index entry: u32 offset, u32 length,
// u32 meta offset, u32 meta length, u32 body offset, u32 body length (all
// in the data), i64 seconds, u32 nanoseconds, u32 kind (0 record, 1 group
// start, 2 group end); little-endian, 8-aligned.
const indexEntrySize = 40

var (
	batchAllocParams     = []api.ValueType{wasmhost.I32}
	batchAllocResults    = []api.ValueType{wasmhost.I32}
	batchFilterParams    = []api.ValueType{wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32}
	batchFilterResults   = []api.ValueType{api.ValueTypeI64}
	batchConfigureParams = []api.ValueType{wasmhost.I32, wasmhost.I32}
	batchV2Params        = []api.ValueType{wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32}
)

// Frame kinds of the guest's output buffer.
const (
	frameEmit  = 'E' // u32 tag_len, tag, u32 data_len, events
	frameError = 'X' // u32 msg_len, msg: the chunk failed
	frameRef   = 'R' // v2: u32 tag_len, tag, u32 first, u32 count: input events first..first+count-1
)

type exportChecker interface {
	CheckFunction(string, []api.ValueType, []api.ValueType) error
	HasFunction(string) bool
}

// hasBatch reports whether the module exports a batch ABI entry point.
func hasBatch(mod exportChecker) bool {
	return mod.HasFunction(batchFilterV2Name) || mod.HasFunction(batchFilterName)
}

// checkBatch checks the batch ABI exports and tells whether v2 is used.
func checkBatch(mod exportChecker) (v2 bool, err error) {
	switch {
	case mod.HasFunction(batchFilterV2Name):
		if err := mod.CheckFunction(batchFilterV2Name, batchV2Params, batchFilterResults); err != nil {
			return false, err
		}
		v2 = true
	default:
		if err := mod.CheckFunction(batchFilterName, batchFilterParams, batchFilterResults); err != nil {
			return false, err
		}
	}
	return v2, mod.CheckFunction(batchAllocName, batchAllocParams, batchAllocResults)
}

// chunkIndex is the host's view of the input chunk's events, built while
// writing the v2 index: offs[i] is where event i starts (offs[n] = the
// data's length), recs[i] the records before event i.
type chunkIndex struct {
	data []byte
	offs []uint32
	recs []uint32
	wire []byte // the index as the guest gets it
}

func (x *chunkIndex) build(data []byte) error {
	x.data, x.offs, x.recs, x.wire = data, x.offs[:0], x.recs[:0], x.wire[:0]
	var it event.Iter
	it.Reset(data)
	recs := uint32(0)
	for it.Next() {
		ev := it.Event()
		kind := ev.Kind()
		x.offs = append(x.offs, uint32(ev.Offset))
		x.recs = append(x.recs, recs)
		if kind == event.KindRecord {
			recs++
		}
		var e [indexEntrySize]byte
		binary.LittleEndian.PutUint32(e[0:], uint32(ev.Offset))
		binary.LittleEndian.PutUint32(e[4:], uint32(len(ev.Raw)))
		if len(ev.Meta) > 0 {
			binary.LittleEndian.PutUint32(e[8:], uint32(ev.Offset+offsetIn(ev.Raw, ev.Meta)))
			binary.LittleEndian.PutUint32(e[12:], uint32(len(ev.Meta)))
		}
		binary.LittleEndian.PutUint32(e[16:], uint32(ev.Offset+offsetIn(ev.Raw, ev.Body)))
		binary.LittleEndian.PutUint32(e[20:], uint32(len(ev.Body)))
		binary.LittleEndian.PutUint64(e[24:], uint64(ev.Time.Sec))
		binary.LittleEndian.PutUint32(e[32:], ev.Time.Nsec)
		binary.LittleEndian.PutUint32(e[36:], uint32(kind))
		x.wire = append(x.wire, e[:]...)
	}
	if err := it.Err(); err != nil {
		return err
	}
	x.offs = append(x.offs, uint32(len(data)))
	x.recs = append(x.recs, recs)
	return nil
}

// records is the number of records (group markers not counted) in the chunk.
func (x *chunkIndex) records() int { return int(x.recs[len(x.recs)-1]) }

// offsetIn is the offset of sub inside whole (sub a sub-slice of whole).
func offsetIn(whole, sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(whole))))
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
	if f.batchV2 {
		// The index the guest gets doubles as the record count and as
		// the check of the input.
		if err := w.index.build(c.Data); err != nil {
			return nil, fmt.Errorf("wasm filter %s: chunk: %w", f.name, err)
		}
		in = w.index.records()
	} else if in == 0 {
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
	size := uint64(tagLen) + uint64(dataLen)
	if f.batchV2 {
		size += 7 + uint64(len(w.index.wire)) // the index, 8-aligned after the data
	}
	if size > 1<<31 {
		return nil, fmt.Errorf("chunk of %d bytes is too large for guest memory", dataLen)
	}
	// The one host allocation of the chunk: tag, events (and index) side by side.
	w.stack[0] = size
	if err := w.inst.Call(ctx, batchAllocName, w.alloc, w.stack[:1]); err != nil {
		f.callFailed(err)
		return nil, f.batchReplace(ctx, w, err)
	}
	ptr := uint32(w.stack[0])
	if ptr == 0 {
		err := fmt.Errorf("%s(%d) returned 0: no room in guest memory", batchAllocName, size)
		return nil, f.batchReplace(ctx, w, err)
	}
	mem := w.inst.Memory()
	dataPtr := uint64(ptr) + uint64(tagLen)
	idxPtr := (dataPtr + uint64(dataLen) + 7) &^ 7
	ok := mem.WriteString(ptr, c.Tag) && mem.Write(uint32(dataPtr), c.Data)
	if ok && f.batchV2 {
		ok = idxPtr+uint64(len(w.index.wire)) <= uint64(ptr)+size && mem.Write(uint32(idxPtr), w.index.wire)
	}
	if !ok || uint64(ptr)+size > 1<<32 {
		err := fmt.Errorf("%s returned %#x: %d bytes from there are outside guest memory (%d bytes)", batchAllocName, ptr, size, mem.Size())
		return nil, f.batchReplace(ctx, w, err)
	}
	var x *chunkIndex
	args := w.stack[:4]
	w.stack = [6]uint64{uint64(ptr), uint64(tagLen), dataPtr, uint64(dataLen)}
	if f.batchV2 {
		x = &w.index
		w.stack[4], w.stack[5] = idxPtr, uint64(len(x.offs)-1)
		args = w.stack[:6]
	}
	start := time.Now()
	err := w.inst.Call(ctx, f.batchFn, w.fn, args)
	f.metrics.LatencyNanosTotal.Add(int64(time.Since(start)))
	f.metrics.Calls.Add(1)
	w.calls++
	if err != nil {
		f.callFailed(err)
		return nil, f.batchReplace(ctx, w, err)
	}
	out, perr := parseBatchOutput(w.inst.Memory(), w.stack[0], f.batchFn, x)
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

// configure hands a new instance plugin_config (JSON) through
// floe_configure(ptr, len), in a floe_alloc buffer; the guest returns 0,
// or an 'X' frame refusing it.
func (f *Filter) configure(ctx context.Context, w *worker) error {
	cfg := f.cfg.config
	w.stack[0] = uint64(len(cfg))
	if err := w.inst.Call(ctx, batchAllocName, w.alloc, w.stack[:1]); err != nil {
		return fmt.Errorf("%s for plugin_config: %w", batchAllocName, err)
	}
	ptr := uint32(w.stack[0])
	mem := w.inst.Memory()
	if ptr == 0 || !mem.Write(ptr, cfg) {
		return fmt.Errorf("%s(%d) for plugin_config returned %#x: not a buffer in guest memory", batchAllocName, len(cfg), ptr)
	}
	w.stack[0], w.stack[1] = uint64(ptr), uint64(len(cfg))
	if err := w.inst.Call(ctx, batchConfigureName, w.inst.Function(batchConfigureName), w.stack[:2]); err != nil {
		return fmt.Errorf("%s: %w", batchConfigureName, err)
	}
	ret := w.stack[0]
	if ret == 0 {
		return nil
	}
	buf, ok := mem.Read(uint32(ret>>32), uint32(ret))
	if !ok || len(buf) < 5 || buf[0] != frameError {
		return fmt.Errorf("%s returned %#x: want 0 or an 'X' frame", batchConfigureName, ret)
	}
	msg, _, err := fieldAt(buf, 1, "error message")
	if err != nil {
		return fmt.Errorf("%s: %w", batchConfigureName, err)
	}
	return fmt.Errorf("the module refused plugin_config: %s", truncate(msg, 512))
}

// fieldAt reads a u32 length and that many bytes at off.
func fieldAt(buf []byte, off int, what string) ([]byte, int, error) {
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
func parseBatchOutput(mem api.Memory, ret uint64, fn string, x *chunkIndex) ([]*chunk.Chunk, error) {
	ptr, n := uint32(ret>>32), uint32(ret)
	if n == 0 {
		return nil, nil
	}
	buf, ok := mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%s returned %d bytes at %#x, outside guest memory (%d bytes)", fn, n, ptr, mem.Size())
	}
	return parseFrames(buf, x)
}

// parseFrames parses an output buffer; the chunks copy what they keep from
// it. x is the input's index for 'R' frames (nil: v1, where they are
// refused). A chunk made of one 'R' run shares the input's bytes.
func parseFrames(buf []byte, x *chunkIndex) ([]*chunk.Chunk, error) {
	var out []*chunk.Chunk
	byTag := map[string]*chunk.Chunk{}
	field := func(off int, what string) ([]byte, int, error) { return fieldAt(buf, off, what) }
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
		case frameRef:
			tag, next, err := field(off+1, "tag")
			if err != nil {
				return nil, err
			}
			if x == nil {
				return nil, fmt.Errorf("output frame at byte offset %d: 'R' frame from a v1 guest (%s has no input index)", off, batchFilterName)
			}
			if len(buf)-next < 8 {
				return nil, fmt.Errorf("output frame at byte offset %d: truncated 'R' frame", off)
			}
			first, count := binary.LittleEndian.Uint32(buf[next:]), binary.LittleEndian.Uint32(buf[next+4:])
			n := uint64(len(x.offs) - 1)
			if uint64(first)+uint64(count) > n {
				return nil, fmt.Errorf("output frame at byte offset %d (tag %q): input events %d..%d, the chunk has %d", off, tag, first, uint64(first)+uint64(count)-1, n)
			}
			c, ok := byTag[string(tag)]
			if !ok {
				c = &chunk.Chunk{Tag: string(tag)}
				byTag[c.Tag] = c
				out = append(out, c)
			}
			end := first + count
			run := x.data[x.offs[first]:x.offs[end]:x.offs[end]]
			if len(c.Data) == 0 {
				// No copy: the input is not changed by anyone, and the
				// capacity cap makes a later append copy.
				c.Data = run
			} else {
				c.Data = append(c.Data, run...)
			}
			c.Records += int(x.recs[end] - x.recs[first])
			off = next + 8
		case frameError:
			msg, _, err := field(off+1, "error message")
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("guest error: %s", truncate(msg, 512))
		default:
			return nil, fmt.Errorf("output frame at byte offset %d: unknown kind %#x (want 'E', 'R' or 'X')", off, kind)
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
