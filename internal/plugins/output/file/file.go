// Package file is Fluent Bit's file output: it appends the records of every
// chunk to a file named after the tag (or the file key) under path.
//
// Formats, as out_file writes them (NEWLINE is "\n"):
//
//	out_file  TAG: [SEC.NSEC, {"k":"v"}]          (default; NSEC has nine digits)
//	plain     {"k":"v"}
//	csv       SEC.NSEC,"v1","v2"                   (values in msgpack_object_print form)
//	ltsv      "time":SEC.USEC	"k":"v"             (time as %f)
//	template  the template with {key} replaced by the value and {time} by the time as %f
//	msgpack   the chunk's MessagePack, verbatim
//
// The file is opened (O_APPEND, created 0666 minus umask) for every flush and
// closed afterwards, as upstream does; nothing is fsynced. A flush renders
// the whole chunk first and appends it with a single write, so records of
// one chunk are never interleaved with another flush's.
//
// A process killed during a write can leave the last record half written
// (a write to a regular file stops short on SIGKILL); the chunk comes back
// from JetStream and would be appended after the fragment, leaving a torn
// line in the middle of the file. So the first time a process writes to a
// file in a line format, it cuts whatever follows the file's last newline,
// with a warning naming the file and the bytes cut. Floe itself only ever
// leaves whole lines; a hand-made file whose last line lacks its newline
// loses that line. The msgpack format is left as it is.
//
// Errors: a file or directory that cannot be opened or created (missing
// directory without mkdir, permission denied, not a directory) is ERROR with
// the path in the message; a failed write is RETRY, after truncating the file
// back to its size before the flush so that a retry does not duplicate a
// partial write.
package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
)

// Output formats.
const (
	fmtOutFile  = "out_file"
	fmtPlain    = "plain"
	fmtCSV      = "csv"
	fmtLTSV     = "ltsv"
	fmtTemplate = "template"
	fmtMsgpack  = "msgpack"
)

// Spec describes the file output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput,
		Name: "file",
		Desc: "Generate log file",
		Keys: []plugin.Key{
			{Name: "path", Desc: "directory to store the files in; default: the working directory"},
			{Name: "file", Desc: "file name; default: the tag of the records"},
			{Name: "format", Default: fmtOutFile, Enum: []string{fmtOutFile, fmtPlain, fmtCSV, fmtLTSV, fmtTemplate, fmtMsgpack},
				Desc: "file content format: out_file, plain, csv, ltsv, template or msgpack"},
			{Name: "delimiter", Desc: `field separator for csv (default ",") and ltsv (default tab): \t or tab, space, comma; other values are ignored`},
			{Name: "label_delimiter", Desc: `label/value separator for ltsv (default ":"): \t or tab, space, comma; other values are ignored`},
			{Name: "template", Default: "{time} {message}", Desc: "template for the template format"},
			{Name: "csv_column_names", Type: plugin.Bool, Default: "false", Desc: "write the keys as the first line of a new csv file"},
			{Name: "mkdir", Type: plugin.Bool, Default: "false", Desc: "create the output directory (mode 0755) if it does not exist"},
		},
		NewOutput: New,
	}
}

// Output appends chunks to files.
type Output struct {
	path, file     string
	format         string
	delim, label   string
	template       string
	csvColumnNames bool
	mkdir          bool
	opts           event.JSONOptions
	logger         *slog.Logger

	mu      sync.Mutex          // one flush at a time: keeps csv headers and truncation sound
	checked map[string]struct{} // files whose tail this process has checked for a torn line
}

// New builds a file output.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &Output{
		path:           p.String("path"),
		file:           p.String("file"),
		format:         strings.ToLower(p.String("format")),
		template:       p.String("template"),
		csvColumnNames: p.Bool("csv_column_names"),
		mkdir:          p.Bool("mkdir"),
		opts:           set.Service.JSON,
		logger:         set.Logger,
		checked:        map[string]struct{}{},
	}
	switch o.format {
	case fmtCSV:
		o.delim = ","
	case fmtLTSV:
		o.delim, o.label = "\t", ":"
	case fmtOutFile, fmtPlain, fmtTemplate, fmtMsgpack:
	default:
		return nil, p.Errorf("format", "unknown format %q", o.format)
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{"delimiter", &o.delim}, {"label_delimiter", &o.label}} {
		if !p.Has(k.key) {
			continue
		}
		if d, ok := Delimiter(p.String(k.key)); ok {
			*k.dst = d
		} else if set.Logger != nil {
			set.Logger.Warn("unsupported "+k.key+" ignored; use \\t, tab, space or comma", "value", p.String(k.key))
		}
	}
	return o, nil
}

// Delimiter maps a delimiter value as out_file's check_delimiter: "\t" or
// "tab", "space", "comma" (case-insensitive); anything else is not accepted.
func Delimiter(s string) (string, bool) {
	switch strings.ToLower(s) {
	case `\t`, "tab":
		return "\t", true
	case "space":
		return " ", true
	case "comma":
		return ",", true
	}
	return "", false
}

// Target returns the file a chunk with this tag is written to.
func (o *Output) Target(tag string) string {
	name := o.file
	if name == "" {
		name = SanitizeTag(tag)
	}
	if o.path != "" {
		return o.path + string(filepath.Separator) + name
	}
	return name
}

// BorrowsData: Flush renders the data into its own buffer and keeps no
// reference to it (plugin.DataBorrower).
func (o *Output) BorrowsData() {}

// Flush appends the chunk to its file.
func (o *Output) Flush(_ context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("file: %s chunks are not supported", c.Signal()))
	}
	o.mu.Lock()
	defer o.mu.Unlock()

	name := o.Target(c.Tag)
	f, err := o.open(name)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file: stat %s: %w", name, err)
	}
	size := st.Size()
	if _, ok := o.checked[name]; !ok && o.format != fmtMsgpack {
		if size, err = o.cutTornTail(name, size); err != nil {
			f.Close()
			return err
		}
		o.checked[name] = struct{}{}
	}

	buf, rerr := o.Render(make([]byte, 0, len(c.Data)+len(c.Data)/2), c, size == 0)
	var werr error
	if len(buf) > 0 {
		if _, werr = f.Write(buf); werr != nil {
			// Undo a partial append so the retry does not duplicate it.
			_ = f.Truncate(size)
		}
	}
	cerr := f.Close()
	switch {
	case werr != nil:
		return fmt.Errorf("file: write %s: %w", name, werr)
	case cerr != nil:
		return fmt.Errorf("file: close %s: %w", name, cerr)
	case rerr != nil:
		return plugin.Permanent(fmt.Errorf("file: %s: %w", name, rerr))
	}
	return nil
}

// open opens name for appending, creating its directory when mkdir is set.
func (o *Output) open(name string) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_APPEND | os.O_CREATE
	f, err := os.OpenFile(name, flags, 0o666)
	if err != nil && o.mkdir && errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(name)
		if merr := os.MkdirAll(dir, 0o755); merr != nil {
			return nil, plugin.Permanent(fmt.Errorf("file: cannot create directory %s: %w", dir, unwrapPath(merr)))
		}
		f, err = os.OpenFile(name, flags, 0o666)
	}
	if err != nil {
		err = fmt.Errorf("file: cannot open %s: %w", name, unwrapPath(err))
		if permanentOpenError(err) {
			return nil, plugin.Permanent(err)
		}
		return nil, err
	}
	return f, nil
}

// cutTornTail truncates name after its last newline and returns the new
// size. The file has size bytes.
func (o *Output) cutTornTail(name string, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return size, fmt.Errorf("file: check the end of %s: %w", name, unwrapPath(err))
	}
	defer f.Close()
	// Search backwards block by block: a torn write is at most one chunk.
	const block = 64 << 10
	buf := make([]byte, block)
	end := size
	for end > 0 {
		start := max(end-block, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && n < int(end-start) {
			return size, fmt.Errorf("file: check the end of %s at offset %d: %w", name, start, err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = start + int64(i) + 1
			break
		}
		end = start
	}
	if end == size {
		return size, nil
	}
	if err := f.Truncate(end); err != nil {
		return size, fmt.Errorf("file: cut the partial last line of %s at offset %d: %w", name, end, err)
	}
	if o.logger != nil {
		o.logger.Warn("file: cut a partial last line, left by an interrupted write; its record is written again when its chunk is redelivered",
			"file", name, "offset", end, "bytes", size-end)
	}
	return end, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// permanentOpenError tells errors that retrying will not fix from transient
// ones such as running out of file descriptors.
func permanentOpenError(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENAMETOOLONG) ||
		errors.Is(err, syscall.ELOOP)
}

// Render appends the chunk's records in the output format. newFile tells
// whether the file was empty (csv column names go on its first line).
func (o *Output) Render(dst []byte, c *chunk.Chunk, newFile bool) ([]byte, error) {
	if o.format == fmtMsgpack {
		return append(dst, c.Data...), nil
	}
	header := o.format == fmtCSV && o.csvColumnNames && newFile
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		mark := len(dst)
		var err error
		switch o.format {
		case fmtOutFile:
			dst = append(dst, c.Tag...)
			dst = append(dst, ": ["...)
			dst = strconv.AppendUint(dst, uint64(r.Time.Sec), 10)
			dst = append(dst, '.')
			dst = appendPad(dst, uint64(r.Time.Nsec), 9)
			dst = append(dst, ", "...)
			if dst, err = format.AppendJSON(dst, r.Body, o.opts); err == nil {
				dst = append(dst, "]\n"...)
			}
		case fmtPlain:
			if dst, err = format.AppendJSON(dst, r.Body, o.opts); err == nil {
				dst = append(dst, '\n')
			}
		case fmtCSV:
			var wrote bool
			dst, wrote, err = o.appendCSV(dst, r, header)
			if wrote {
				header = false
			}
		case fmtLTSV:
			dst, err = o.appendLTSV(dst, r)
		case fmtTemplate:
			dst, err = o.appendTemplate(dst, r)
		}
		if err != nil {
			dst = dst[:mark]
		}
		return err
	})
	return dst, err
}

// appendCSV is out_file's csv_output: nothing for an empty body, otherwise
// an optional header line "timestamp<d>KEY1<d>KEY2" and the line
// "SEC.NSEC<d>VAL1<d>VAL2", keys and values in msgpack_object_print form.
func (o *Output) appendCSV(dst []byte, r *format.Record, header bool) ([]byte, bool, error) {
	if format.MapLen(r.Body) == 0 {
		return dst, false, nil
	}
	var err error
	if header {
		dst = append(dst, "timestamp"...)
		dst = append(dst, o.delim...)
		first := true
		perr := format.Pairs(r.Body, func(k, _ []byte) bool {
			if !first {
				dst = append(dst, o.delim...)
			}
			first = false
			dst, err = format.AppendPrint(dst, k)
			return err == nil
		})
		if err = errors.Join(err, perr); err != nil {
			return dst, false, err
		}
		dst = append(dst, '\n')
	}
	dst = strconv.AppendInt(dst, r.Time.Sec, 10)
	dst = append(dst, '.')
	dst = appendPad(dst, uint64(r.Time.Nsec), 9)
	dst = append(dst, o.delim...)
	first := true
	perr := format.Pairs(r.Body, func(_, v []byte) bool {
		if !first {
			dst = append(dst, o.delim...)
		}
		first = false
		dst, err = format.AppendPrint(dst, v)
		return err == nil
	})
	if err = errors.Join(err, perr); err != nil {
		return dst, header, err
	}
	return append(dst, '\n'), header, nil
}

// appendLTSV is out_file's ltsv_output: nothing for an empty body, otherwise
// "\"time\"<l>TIME<d>KEY1<l>VAL1<d>KEY2<l>VAL2" with TIME as %f and keys and
// values in msgpack_object_print form.
func (o *Output) appendLTSV(dst []byte, r *format.Record) ([]byte, error) {
	if format.MapLen(r.Body) == 0 {
		return dst, nil
	}
	dst = append(dst, `"time"`...)
	dst = append(dst, o.label...)
	dst = strconv.AppendFloat(dst, r.Time.Float(), 'f', 6, 64)
	var err error
	perr := format.Pairs(r.Body, func(k, v []byte) bool {
		dst = append(dst, o.delim...)
		if dst, err = format.AppendPrint(dst, k); err != nil {
			return false
		}
		dst = append(dst, o.label...)
		dst, err = format.AppendPrint(dst, v)
		return err == nil
	})
	if err = errors.Join(err, perr); err != nil {
		return dst, err
	}
	return append(dst, '\n'), nil
}

// appendTemplate is out_file's template_output: "{key}" is replaced by the
// value of key in the body (strings raw, other values in
// msgpack_object_print form), "{time}" by the time as %f; a placeholder
// naming no key is written as is. As upstream compares the placeholder with
// strncmp(key, "time", len), any prefix of "time" ("{}", "{t}", "{ti}",
// "{tim}") is also the time. For "{a{b}" the first brace is literal text.
func (o *Output) appendTemplate(dst []byte, r *format.Record) ([]byte, error) {
	t := o.template
	open := -1 // index of the last unmatched '{'
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '{':
			if open >= 0 {
				dst = append(dst, t[open:i]...)
			}
			open = i
		case c == '}' && open >= 0:
			key := t[open+1 : i]
			var ok bool
			var err error
			if dst, ok, err = o.placeholder(dst, r, key); err != nil {
				return dst, err
			}
			if !ok {
				dst = append(dst, t[open:i+1]...)
			}
			open = -1
		default:
			if open < 0 {
				dst = append(dst, c)
			}
		}
	}
	if open >= 0 {
		dst = append(dst, t[open:]...)
	}
	return append(dst, '\n'), nil
}

func (o *Output) placeholder(dst []byte, r *format.Record, key string) ([]byte, bool, error) {
	if strings.HasPrefix("time", key) {
		return strconv.AppendFloat(dst, r.Time.Float(), 'f', 6, 64), true, nil
	}
	found := false
	var err error
	perr := format.Pairs(r.Body, func(k, v []byte) bool {
		ks, ok := format.Str(k)
		if !ok || string(ks) != key {
			return true
		}
		found = true
		if s, ok := format.Str(v); ok {
			dst = append(dst, s...)
		} else {
			dst, err = format.AppendPrint(dst, v)
		}
		return false
	})
	if err = errors.Join(err, perr); err != nil {
		return dst, false, err
	}
	return dst, found, nil
}

func appendPad(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendUint(buf[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// SanitizeTag turns a tag into a safe relative file name as upstream's
// sanitize_tag_name: the tag is split on '/' and '\', empty components are
// dropped, "." and ".." become "_", every byte other than [A-Za-z0-9._-]
// becomes '_', and the components are joined with the path separator; an
// empty result is "_".
func SanitizeTag(tag string) string {
	var b strings.Builder
	for _, comp := range strings.FieldsFunc(tag, func(r rune) bool { return r == '/' || r == '\\' }) {
		if b.Len() > 0 {
			b.WriteByte(filepath.Separator)
		}
		if comp == "." || comp == ".." {
			b.WriteByte('_')
			continue
		}
		for i := 0; i < len(comp); i++ {
			c := comp[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				c = '_'
			}
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}
