// Package null is Fluent Bit's null output: it accepts every chunk and
// discards it.
//
// Like upstream it takes the format, json_date_key and json_date_format keys:
// with a JSON format each chunk is rendered to JSON and thrown away, which
// measures the cost of the conversion without any I/O.
package null

import (
	"context"
	"log/slog"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
)

// Spec describes the null output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "null",
		Desc:      "Throws away events",
		Keys:      format.JSONKeys(),
		NewOutput: New,
	}
}

// New builds a null output.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &Output{logger: set.Logger}
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

// Output discards chunks.
type Output struct {
	logger *slog.Logger
	json   *format.JSON
}

// BorrowsData: Flush keeps no reference to the chunk's data
// (plugin.DataBorrower).
func (o *Output) BorrowsData() {}

// Flush always answers OK. A JSON conversion error is ignored, as upstream
// ignores a failed conversion.
func (o *Output) Flush(_ context.Context, c *chunk.Chunk) error {
	if o.json != nil && c.Signal() == chunk.Logs {
		_, _ = o.json.AppendChunk(make([]byte, 0, len(c.Data)+len(c.Data)/4), c.Data)
	}
	if o.logger != nil {
		o.logger.Debug("discarding bytes", "bytes", len(c.Data))
	}
	return nil
}
