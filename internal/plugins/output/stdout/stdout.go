// Package stdout is Fluent Bit's stdout output: it prints every chunk to the
// standard output, in msgpack_object_print form by default or as JSON.
//
// Each flush is rendered into one buffer and written with a single Write, so
// the output of concurrent flushes (workers > 1) never interleaves.
package stdout

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
)

// Spec describes the stdout output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "stdout",
		Desc:      "Prints events to STDOUT",
		Keys:      format.JSONKeys(),
		NewOutput: New,
	}
}

// New builds a stdout output writing to os.Stdout.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	return newOutput(set, p, os.Stdout)
}

func newOutput(set plugin.Settings, p *plugin.Props, w io.Writer) (*Output, error) {
	o := &Output{w: w}
	f, ok := format.ParseJSONFormat(p.String("format"))
	if !ok {
		return nil, p.Errorf("format", "unknown format %q (msgpack, json, json_lines, json_stream)", p.String("format"))
	}
	if f != 0 {
		j, err := format.NewJSON(f, p.String("json_date_key"), p.String("json_date_format"), set.Service.JSON)
		if err != nil {
			return nil, p.Errorf("json_date_format", "%v", err)
		}
		o.json = j
	}
	return o, nil
}

// Output prints chunks to an io.Writer.
type Output struct {
	w    io.Writer
	json *format.JSON // nil for the msgpack print format

	mu  sync.Mutex // serializes writes
	buf sync.Pool
}

// BorrowsData: Flush keeps no reference to the chunk's data
// (plugin.DataBorrower).
func (o *Output) BorrowsData() {}

// Flush renders the chunk and writes it in one Write. A chunk that does not
// decode is printed up to the bad event and then answered with ERROR, as
// Fluent Bit does; a failed write is retried.
func (o *Output) Flush(_ context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("stdout: %s chunks are not supported", c.Signal()))
	}
	var b []byte
	if v, ok := o.buf.Get().(*[]byte); ok {
		b = (*v)[:0]
	}
	b, rerr := o.Render(b, c)
	var werr error
	if len(b) > 0 {
		o.mu.Lock()
		_, werr = o.w.Write(b)
		o.mu.Unlock()
	}
	if cap(b) <= 4<<20 {
		o.buf.Put(&b)
	}
	if rerr != nil {
		return plugin.Permanent(fmt.Errorf("stdout: %w", rerr))
	}
	if werr != nil {
		return fmt.Errorf("stdout: write: %w", werr)
	}
	return nil
}

// Render appends the chunk's rendering to dst.
func (o *Output) Render(dst []byte, c *chunk.Chunk) ([]byte, error) {
	if o.json == nil {
		return format.AppendPrintChunk(dst, c.Tag, c.Data)
	}
	start := len(dst)
	dst, err := o.json.AppendChunk(dst, c.Data)
	// out_stdout adds a line break after json and json_stream output.
	if o.json.Format != format.JSONLines && len(dst) > start {
		dst = append(dst, '\n')
	}
	return dst, err
}
