// Package tail is Fluent Bit's tail input: it follows files matched by glob
// patterns, one record per line (or per multiline group), through rotation
// by rename and by copytruncate.
//
// Durability. A file's position lives in the JetStream key-value bucket of
// internal/positions and is committed only after the receipt of the chunk
// holding the lines before it resolved, so a restarted ingest (on this host
// or another reading the same volume) resumes without loss. Each batch of
// lines is written as a chunk of its own whose Nats-Msg-Id is derived from
// the file's identity and the batch's byte range, and the ranges of the
// batches still in flight are recorded in the position before they are
// written. After a restart, the re-read lines are cut at the same places and
// republished under the same ids, so JetStream's duplicate window drops the
// copies of batches that had been stored but not yet committed.
//
// Rotation. A file is identified by device, inode and a generation bumped
// at each truncation. When the inode at a path changes (rename), the old
// file is read to its end and kept for rotate_wait, and the new one is read
// from its head. When a file shrinks below the read offset (copytruncate),
// it is read again from offset 0 under a new generation. A file rotated
// while Floe was down is found again by its inode in the same directory.
//
// db is accepted and ignored (positions live in JetStream); inotify is not
// used: files are polled.
package tail

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/multiline"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
	"github.com/floe-io/floe/internal/positions"
)

const (
	maxBatch     = 480 << 10 // encoded bytes per chunk written
	pollInterval = 200 * time.Millisecond
	rotatedKey   = ".rotated" // KV keys allow dots; Key escapes those of the path, so no path collides
)

// Spec describes the tail input plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: "tail",
		Desc: "Tail files",
		Keys: []plugin.Key{
			{Name: "path", Multi: true, Desc: "comma-separated glob patterns of the files to read"},
			{Name: "exclude_path", Multi: true, Desc: "comma-separated glob patterns of files to leave out"},
			{Name: "read_from_head", Type: plugin.Bool, Default: "false", Desc: "read files found at start from their beginning"},
			{Name: "refresh_interval", Type: plugin.Seconds, Default: "60", Desc: "how often the patterns are searched again"},
			{Name: "rotate_wait", Type: plugin.Seconds, Default: "5", Desc: "how long a rotated file is still read"},
			{Name: "ignore_older", Type: plugin.Seconds, Desc: "ignore files not modified for this long"},
			{Name: "skip_long_lines", Type: plugin.Bool, Default: "false", Desc: "skip lines longer than buffer_max_size instead of stopping the file"},
			{Name: "skip_empty_lines", Type: plugin.Bool, Default: "false"},
			{Name: "buffer_chunk_size", Type: plugin.Size, Default: "32k", Desc: "size of each read"},
			{Name: "buffer_max_size", Type: plugin.Size, Default: "32k", Desc: "longest line"},
			{Name: "path_key", Desc: "add the file's path under this key"},
			{Name: "offset_key", Desc: "add the line's byte offset under this key"},
			{Name: "key", Default: "log", Desc: "key of the unparsed line"},
			{Name: "exit_on_eof", Type: plugin.Bool, Default: "false", Desc: "stop when every file has been read to its end"},
			{Name: "db", Desc: "accepted for compatibility; positions are kept in JetStream"},
			{Name: "db.sync"}, {Name: "db.locking", Type: plugin.Bool}, {Name: "db.journal_mode"},
			{Name: "multiline.parser", Multi: true, Desc: "comma-separated multiline parsers (docker, cri, go, python, java or [MULTILINE_PARSER] names)"},
			{Name: "inotify_watcher", Type: plugin.Bool, Default: "true", Desc: "accepted; files are polled"},
		},
		NewInput: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := newTail(set, p)
			return err
		},
	}
}

// Tail is a configured tail input.
type Tail struct {
	name         string
	log          *slog.Logger
	tag          string
	patterns     []string
	excludes     []string
	readFromHead bool
	refresh      time.Duration
	rotateWait   time.Duration
	ignoreOlder  time.Duration
	skipLong     bool
	skipEmpty    bool
	chunkSize    int
	maxSize      int
	pathKey      string
	offsetKey    string
	key          string
	exitOnEOF    bool
	parser       plugin.Parser
	ml           []*multiline.Parser
	store        plugin.PositionStore
	now          func() time.Time
	poll         time.Duration
}

// New builds a tail input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	return newTail(set, p)
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func newTail(set plugin.Settings, p *plugin.Props) (*Tail, error) {
	t := &Tail{
		name:         set.DisplayName(),
		log:          set.Logger,
		tag:          p.String("tag"),
		patterns:     splitList(p.All("path")),
		excludes:     splitList(p.All("exclude_path")),
		readFromHead: p.Bool("read_from_head"),
		refresh:      time.Duration(p.Seconds("refresh_interval") * float64(time.Second)),
		rotateWait:   time.Duration(p.Seconds("rotate_wait") * float64(time.Second)),
		ignoreOlder:  time.Duration(p.Seconds("ignore_older") * float64(time.Second)),
		skipLong:     p.Bool("skip_long_lines"),
		skipEmpty:    p.Bool("skip_empty_lines"),
		chunkSize:    int(p.Size("buffer_chunk_size")),
		maxSize:      int(p.Size("buffer_max_size")),
		pathKey:      p.String("path_key"),
		offsetKey:    p.String("offset_key"),
		key:          p.String("key"),
		exitOnEOF:    p.Bool("exit_on_eof"),
		store:        set.Positions,
		now:          time.Now,
		poll:         pollInterval,
	}
	if t.log == nil {
		t.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if t.tag == "" {
		t.tag = set.Name
	}
	if len(t.patterns) == 0 {
		return nil, p.Errorf("path", "tail needs a path (a file or glob pattern)")
	}
	for _, pat := range append(append([]string(nil), t.patterns...), t.excludes...) {
		if _, err := filepath.Match(pat, ""); err != nil {
			return nil, p.Errorf("path", "bad glob pattern %q: %v", pat, err)
		}
	}
	if t.refresh <= 0 {
		t.refresh = 60 * time.Second
	}
	if t.chunkSize <= 0 {
		return nil, p.Errorf("buffer_chunk_size", "buffer_chunk_size must be positive")
	}
	if t.maxSize < t.chunkSize {
		// Fluent Bit raises buffer_max_size to buffer_chunk_size.
		t.maxSize = t.chunkSize
	}
	if t.key == "" {
		t.key = "log"
	}
	if name := p.String("parser"); name != "" {
		var ok bool
		if set.Parsers != nil {
			t.parser, ok = set.Parsers.Lookup(name)
		}
		if !ok {
			return nil, p.Errorf("parser", "parser %q is not defined", name)
		}
	}
	if vals := p.All("multiline.parser"); len(vals) > 0 {
		reg, err := multiline.Load(set.MultilineParsers, set.Parsers)
		if err != nil {
			return nil, err
		}
		t.ml, err = reg.Resolve(vals)
		if err != nil {
			return nil, p.Errorf("multiline.parser", "%v", err)
		}
		if t.parser != nil {
			t.log.Warn("parser is ignored when multiline.parser is set", "parser", p.String("parser"))
			t.parser = nil
		}
	}
	if p.Has("db") {
		t.log.Info("db is not used: tail positions are kept in JetStream", "db", p.String("db"))
	}
	return t, nil
}

// tagFor expands '*' in the tag with the file's path, '/' replaced by '.'
// (Fluent Bit's tag_compose), without the leading dots of an absolute path.
func (t *Tail) tagFor(path string) string {
	if !strings.Contains(t.tag, "*") {
		return t.tag
	}
	p := strings.TrimLeft(strings.ReplaceAll(path, "/", "."), ".")
	return strings.Replace(t.tag, "*", p, 1)
}

// ---- files ----

type cut struct {
	end   int64
	flush bool // a multiline flush-timeout batch: no new lines
}

type flight struct {
	end       int64 // batch end
	commitOff int64 // offset safe to commit once stored
	gen       int
	r         plugin.Receipt
}

type file struct {
	path  string // path matched (for a rotated file: where it was)
	key   string // positions key; "" = not persisted
	f     *os.File
	dev   uint64
	ino   uint64
	gen   int
	tag   string
	off   int64  // bytes consumed into lines
	buf   []byte // read but not yet consumed, within base
	base  []byte
	skip  bool // discarding a long line up to its newline
	start int64
	// replay holds the batch ends recorded before a restart, so re-read
	// batches get the same ids.
	replay    []cut
	committed int64
	commitEnd int64
	inflight  []flight
	dirty     bool
	failed    bool // a batch was not stored: commit nothing further
	ml        *multiline.Stream
	rotatedAt time.Time // when this file stopped being the one at path
	eof       bool
	dead      bool
	batch     []byte
	lastBatch int // length of the last batch written
	records   int
}

func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// Run follows the files until ctx ends (or, with exit_on_eof, until every
// file has been read to its end and stored).
func (t *Tail) Run(ctx context.Context, w plugin.Writer) error {
	st := &state{t: t, w: w, active: map[string]*file{}}
	st.tr.Logger = t.log
	defer st.closeAll()
	first := true
	var lastScan, lastStat time.Time
	for {
		now := t.now()
		if first || now.Sub(lastScan) >= t.refresh {
			if err := st.scan(ctx, first); err != nil {
				return err
			}
			lastScan = now
			first = false
		}
		if now.Sub(lastStat) >= t.poll {
			st.checkRotation(ctx)
			lastStat = now
		}
		progress := false
		for _, f := range st.files() {
			n, err := st.read(ctx, f)
			if err != nil {
				if ctx.Err() != nil {
					return st.shutdown()
				}
				return err
			}
			if n > 0 {
				progress = true
			}
		}
		st.reapAll(ctx)
		if ctx.Err() != nil {
			return st.shutdown()
		}
		if t.exitOnEOF && !progress && st.allEOF() {
			return st.finish(ctx)
		}
		if !progress {
			wait := t.poll
			if d := st.nextMLDeadline(); !d.IsZero() {
				if until := d.Sub(t.now()); until < wait {
					wait = max(until, time.Millisecond)
				}
			}
			select {
			case <-ctx.Done():
				return st.shutdown()
			case <-time.After(wait):
			}
		}
	}
}

type state struct {
	t       *Tail
	w       plugin.Writer
	active  map[string]*file // by path
	rotated []*file
	tr      receipts.Tracker
	val     []byte     // an encoded path_key/offset_key value
	now     event.Time // when the lines being decoded were read
}

func (st *state) files() []*file {
	out := make([]*file, 0, len(st.active)+len(st.rotated))
	// Rotated files first: their lines are older.
	out = append(out, st.rotated...)
	paths := make([]string, 0, len(st.active))
	for p := range st.active {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		out = append(out, st.active[p])
	}
	return out
}

func (st *state) allEOF() bool {
	for _, f := range st.files() {
		if !f.eof && !f.dead {
			return false
		}
	}
	return true
}

func (st *state) excluded(path string) bool {
	for _, ex := range st.t.excludes {
		if ok, _ := filepath.Match(ex, path); ok {
			return true
		}
		if ok, _ := filepath.Match(ex, filepath.Base(path)); ok {
			return true
		}
	}
	return false
}

// scan searches the patterns and opens the files not followed yet.
func (st *state) scan(ctx context.Context, atStart bool) error {
	var found []string
	for _, pat := range st.t.patterns {
		m, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("tail: path %q: %w", pat, err)
		}
		found = append(found, m...)
	}
	sort.Strings(found)
	for _, path := range found {
		if _, ok := st.active[path]; ok || st.excluded(path) {
			continue
		}
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if st.t.ignoreOlder > 0 && st.t.now().Sub(fi.ModTime()) > st.t.ignoreOlder {
			continue
		}
		// Files present at start obey read_from_head; files that appear later are new: read whole.
		fromHead := st.t.readFromHead || !atStart
		if err := st.open(ctx, path, fromHead); err != nil {
			st.t.log.Error("cannot follow file", "path", path, "error", err)
		}
	}
	return nil
}

func (st *state) newFile(path string, f *os.File, fi os.FileInfo) *file {
	dev, ino := fileID(fi)
	nf := &file{path: path, f: f, dev: dev, ino: ino, tag: st.t.tagFor(path)}
	if len(st.t.ml) > 0 {
		nf.ml = multiline.NewStream(st.t.ml, multiline.Options{MaxBytes: max(st.t.maxSize, 2<<20)})
	}
	return nf
}

// open starts following path, resuming from its stored position.
func (st *state) open(ctx context.Context, path string, fromHead bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	nf := st.newFile(path, f, fi)
	nf.key = positions.Key(st.t.name, path)
	var pos, rot positions.Position
	var havePos, haveRot bool
	if s := st.t.store; s != nil {
		if pos, havePos, err = s.Get(ctx, nf.key); err != nil {
			f.Close()
			return err
		}
		if rot, haveRot, err = s.Get(ctx, nf.key+rotatedKey); err != nil {
			f.Close()
			return err
		}
	}
	// A rotated file that was still being read when Floe stopped.
	if haveRot && (!havePos || rot.Inode != pos.Inode) {
		st.resumeRotated(ctx, path, nf.key+rotatedKey, rot)
	} else if haveRot {
		_ = st.t.store.Forget(ctx, nf.key+rotatedKey)
	}
	switch {
	case havePos && pos.Inode == nf.ino:
		nf.gen = int(extraUint(pos, "gen"))
		if fi.Size() < pos.Offset {
			st.t.log.Info("file truncated while stopped; reading it again", "path", path)
			nf.gen++
			nf.resetTo(0)
		} else {
			nf.resumeFrom(pos)
		}
	case havePos:
		// The file at path is not the one we were reading: it was rotated
		// while Floe was down. Finish the old one if it is still here; the
		// new one is read whole.
		if haveRot && rot.Inode == pos.Inode {
			// already resumed above
		} else {
			st.resumeRotated(ctx, path, nf.key+rotatedKey, pos)
		}
		nf.resetTo(0)
	case fromHead:
		nf.resetTo(0)
	default:
		nf.resetTo(fi.Size())
	}
	if _, err := f.Seek(nf.off, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	st.active[path] = nf
	st.t.log.Debug("following file", "path", path, "offset", nf.off, "inode", nf.ino)
	// Record where we start, so a restart before the first commit agrees.
	nf.dirty = true
	st.save(ctx, nf, nil)
	return nil
}

func (f *file) resetTo(off int64) {
	f.off, f.start, f.committed, f.commitEnd = off, off, off, off
	f.buf, f.replay, f.skip = f.buf[:0], nil, false
}

func (f *file) resumeFrom(pos positions.Position) {
	f.resetTo(pos.Offset)
	cuts := parseCuts(pos.Extra["cuts"])
	if len(cuts) > 0 && cuts[0].end >= pos.Offset {
		f.start, f.commitEnd = cuts[0].end, cuts[0].end
		f.replay = cuts[1:]
	}
}

func extraUint(p positions.Position, k string) uint64 {
	v, _ := strconv.ParseUint(p.Extra[k], 10, 64)
	return v
}

// resumeRotated looks for the file of pos in path's directory (it was
// renamed) and reads it to its end.
func (st *state) resumeRotated(ctx context.Context, path, key string, pos positions.Position) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		_, ino := fileID(fi)
		if ino != pos.Inode || fi.Size() < pos.Offset {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return
		}
		rf := st.newFile(path, f, fi)
		rf.key = key
		rf.gen = int(extraUint(pos, "gen"))
		rf.resumeFrom(pos)
		if _, err := f.Seek(rf.off, io.SeekStart); err != nil {
			f.Close()
			return
		}
		rf.rotatedAt = st.t.now()
		st.rotated = append(st.rotated, rf)
		st.t.log.Info("reading the rest of a file rotated while stopped", "path", p, "offset", rf.off)
		rf.dirty = true
		st.save(ctx, rf, nil)
		return
	}
	st.t.log.Warn("a file rotated while stopped is gone; its unread lines are lost", "path", path, "inode", pos.Inode, "offset", pos.Offset)
	_ = st.t.store.Forget(ctx, key)
}

// checkRotation notices renamed, removed and truncated files.
func (st *state) checkRotation(ctx context.Context) {
	for path, f := range st.active {
		fi, err := os.Stat(path)
		moved := false
		if err != nil {
			moved = errors.Is(err, os.ErrNotExist)
		} else if dev, ino := fileID(fi); dev != f.dev || ino != f.ino {
			moved = true
		}
		if moved {
			st.rotate(ctx, path, f)
			if err == nil && !st.excluded(path) {
				// The new file at path is new: read it from its head.
				if oerr := st.openNew(ctx, path); oerr != nil {
					st.t.log.Error("cannot follow file", "path", path, "error", oerr)
				}
			}
			continue
		}
		st.checkTruncated(ctx, f)
	}
	for _, f := range st.rotated {
		st.checkTruncated(ctx, f)
	}
}

func (st *state) openNew(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	nf := st.newFile(path, f, fi)
	nf.key = positions.Key(st.t.name, path)
	nf.resetTo(0)
	st.active[path] = nf
	nf.dirty = true
	st.save(ctx, nf, nil)
	st.t.log.Debug("following rotated-in file", "path", path, "inode", nf.ino)
	return nil
}

func (st *state) rotate(ctx context.Context, path string, f *file) {
	delete(st.active, path)
	f.rotatedAt = st.t.now()
	// One persisted rotated slot per path: an older rotated file still
	// being read keeps going, unpersisted.
	for _, o := range st.rotated {
		if o.key == f.key+rotatedKey {
			o.key = ""
		}
	}
	f.key += rotatedKey
	f.dirty = true
	st.save(ctx, f, nil)
	st.rotated = append(st.rotated, f)
	st.t.log.Info("file rotated", "path", path, "inode", f.ino)
}

func (st *state) checkTruncated(ctx context.Context, f *file) {
	fi, err := f.f.Stat()
	if err != nil || fi.Size() >= f.off+int64(len(f.buf)) {
		return
	}
	st.t.log.Info("file truncated; reading it from the start", "path", f.path, "size", fi.Size(), "offset", f.off)
	if f.ml != nil {
		// What was pending belongs to the old content; emit it.
		f.ml.FlushAll(func(r multiline.Record) { st.addML(f, r) })
		_ = st.writeBatch(ctx, f, true)
	}
	f.gen++
	f.resetTo(0)
	f.inflight = nil // their commits belong to the old content
	f.failed = false
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		f.dead = true
	}
	f.dirty = true
	st.save(ctx, f, nil)
}

// ---- reading ----

// read reads what f has now, writing a batch at each recorded cut, when a
// batch is full, and when the data runs out. It returns the bytes consumed.
func (st *state) read(ctx context.Context, f *file) (int64, error) {
	if f.dead {
		return 0, nil
	}
	t := st.t
	if f.ml != nil && f.records == 0 && len(f.replay) == 0 {
		// flush_timeout: the records go in a batch of their own, recorded as such.
		f.ml.FlushExpired(t.now(), func(r multiline.Record) { st.addML(f, r) })
		if f.records > 0 {
			if err := st.writeBatch(ctx, f, true); err != nil {
				return 0, err
			}
		}
	}
	before := f.off
	for {
		// Lines read together get one arrival time: a clock read per line
		// cost as much as converting a short one.
		st.now = event.FromTime(t.now())
		// Consume the complete lines in buf.
		for {
			i := bytes.IndexByte(f.buf, '\n')
			if i < 0 {
				break
			}
			line := f.buf[:i]
			start := f.off
			f.off += int64(i + 1)
			if f.skip {
				f.skip = false
			} else {
				st.line(f, line, start, f.off)
			}
			f.buf = f.buf[i+1:]
			for len(f.replay) > 0 && f.replay[0].end == f.off {
				c := f.replay[0]
				f.replay = f.replay[1:]
				if c.flush && f.ml != nil {
					f.ml.FlushAll(func(r multiline.Record) { st.addML(f, r) })
				}
				if err := st.writeBatch(ctx, f, c.flush); err != nil {
					return f.off - before, err
				}
			}
			if len(f.replay) > 0 && f.off > f.replay[0].end {
				f.replay = nil // the file changed under us; cut freely
			}
			if len(f.batch) >= maxBatch && len(f.replay) == 0 {
				if err := st.writeBatch(ctx, f, false); err != nil {
					return f.off - before, err
				}
			}
		}
		if len(f.buf) >= t.maxSize {
			if !t.skipLong {
				t.log.Error("line longer than buffer_max_size; the file is no longer read (set skip_long_lines on to skip such lines)",
					"path", f.path, "offset", f.off, "buffer_max_size", t.maxSize)
				f.dead = true
				break
			}
			t.log.Warn("skipping a line longer than buffer_max_size", "path", f.path, "offset", f.off, "buffer_max_size", t.maxSize)
			f.off += int64(len(f.buf))
			f.buf = f.buf[:0]
			f.skip = true
		}
		// Keep the partial line at the front of the buffer and read after
		// it. Nothing keeps a line past st.line, so the buffer is reused;
		// it grows only for a partial line longer than a read.
		if cap(f.buf)-len(f.buf) < t.chunkSize {
			if need := len(f.buf) + t.chunkSize; cap(f.base) < need {
				f.base = make([]byte, 0, max(need, 2*t.chunkSize, min(2*cap(f.base), t.maxSize+t.chunkSize)))
			}
			f.buf = f.base[:copy(f.base[:len(f.buf)], f.buf)]
		}
		n, err := f.f.Read(f.buf[len(f.buf) : len(f.buf)+t.chunkSize])
		if n > 0 {
			f.buf = f.buf[:len(f.buf)+n]
			f.eof = false
		}
		if err == io.EOF || (err == nil && n == 0) {
			f.eof = true
			break
		}
		if err != nil {
			t.log.Error("read failed; the file is no longer read", "path", f.path, "error", err)
			f.dead = true
			break
		}
		if f.off-before >= 4<<20 {
			break // let the other files have a turn
		}
	}
	if f.records > 0 && len(f.replay) == 0 {
		if err := st.writeBatch(ctx, f, false); err != nil {
			return f.off - before, err
		}
	}
	return f.off - before, nil
}

// line turns one line into a record, or feeds it to the multiline stream.
func (st *state) line(f *file, line []byte, start, end int64) {
	t := st.t
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 && t.skipEmpty {
		return
	}
	if f.ml != nil {
		f.ml.Feed(line, event.Time{}, start, end, t.now(), func(r multiline.Record) { st.addML(f, r) })
		return
	}
	if f.batch == nil {
		f.batch = st.newBatch(f)
	}
	if t.parser != nil {
		// The record is converted straight into the batch, after a header
		// whose time is filled in once the parser has found it; on failure
		// f.batch still ends where it did.
		mark := len(f.batch)
		b := event.AppendHeader(f.batch, event.Time{}, nil)
		pt, b, err := plugin.AppendRecord(t.parser, b, line)
		if err == nil {
			if b, err = st.setExtras(b, mark+headerLen, f, start); err == nil {
				if pt == (event.Time{}) {
					pt = st.now
				}
				event.SetHeaderTime(b[mark:], pt)
				f.batch = b
				f.records++
				return
			}
		}
		// Fluent Bit keeps a line its parser does not take, unparsed.
	}
	n := 1
	if t.pathKey != "" {
		n++
	}
	if t.offsetKey != "" {
		n++
	}
	f.batch = event.AppendHeader(f.batch, st.now, nil)
	f.batch = event.AppendMapHeader(f.batch, n)
	f.batch = event.AppendString(f.batch, t.key)
	f.batch = appendStrBytes(f.batch, line)
	f.batch = st.appendExtras(f.batch, f, start)
	f.records++
}

func appendStrBytes(b, s []byte) []byte {
	// Same encoding as event.AppendString, without a string conversion copy.
	return event.AppendString(b, unsafeString(s))
}

func (st *state) appendExtras(body []byte, f *file, start int64) []byte {
	if st.t.pathKey != "" {
		body = event.AppendString(body, st.t.pathKey)
		body = event.AppendString(body, f.path)
	}
	if st.t.offsetKey != "" {
		body = event.AppendString(body, st.t.offsetKey)
		body = event.AppendInt(body, start)
	}
	return body
}

// setExtras sets path_key and offset_key on an encoded record, replacing
// fields of those names as addMap's Map.Set does.
func (st *state) setExtras(b []byte, at int, f *file, start int64) ([]byte, error) {
	var err error
	if st.t.pathKey != "" {
		st.val = event.AppendString(st.val[:0], f.path)
		if b, err = event.MapSet(b, at, st.t.pathKey, st.val); err != nil {
			return b, err
		}
	}
	if st.t.offsetKey != "" {
		st.val = event.AppendInt(st.val[:0], start)
		if b, err = event.MapSet(b, at, st.t.offsetKey, st.val); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (st *state) addMap(f *file, tm event.Time, m event.Map, start int64) {
	if st.t.pathKey != "" {
		m.Set(st.t.pathKey, f.path)
	}
	if st.t.offsetKey != "" {
		m.Set(st.t.offsetKey, start)
	}
	f.batch = event.AppendRaw(f.batch, tm, nil, m.AppendMsgpack(nil))
	f.records++
}

func (st *state) addML(f *file, r multiline.Record) {
	tm := r.Time
	if tm == (event.Time{}) {
		tm = event.FromTime(st.t.now())
	}
	m := r.Body
	if m == nil {
		m = event.Map{{Key: st.t.key, Value: string(r.Text)}}
	}
	st.addMap(f, tm, m, r.Start)
}

// batchID names a batch by the file's identity and its byte range.
func (st *state) batchID(f *file, start, end int64, flush bool) string {
	h := sha256.New()
	// The device is left out: another host mounting the same volume sees
	// another device number, and must produce the same ids.
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d\x00%t", st.t.name, f.ino, f.gen, start, end, flush)
	return "tail-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// writeBatch records the batch's end in the position, then writes it.
func (st *state) writeBatch(ctx context.Context, f *file, flush bool) error {
	if f.records == 0 {
		return nil
	}
	// The batch covers the lines consumed since the last one; a flush
	// batch (multiline flush_timeout) is marked so a replay flushes there too.
	end := f.off
	start := min(f.start, end)
	id := st.batchID(f, start, end, flush)
	commitOff := end
	if f.ml != nil {
		if p, ok := f.ml.Pending(); ok && p < commitOff {
			commitOff = p
		}
	}
	st.reap(f)
	st.save(ctx, f, &cut{end: end, flush: flush})
	var r plugin.Receipt
	var err error
	if cw, ok := st.w.(plugin.ChunkWriter); ok {
		r, err = cw.WriteChunk(ctx, id, f.tag, f.batch, f.records)
	} else {
		r, err = st.w.Write(ctx, f.tag, f.batch, f.records)
	}
	if err != nil {
		return fmt.Errorf("tail %s: %w", f.path, err)
	}
	st.tr.Add(r)
	f.inflight = append(f.inflight, flight{end: end, commitOff: commitOff, gen: f.gen, r: r})
	f.start = end
	f.lastBatch = len(f.batch)
	f.batch, f.records = nil, 0 // it is the chunk now: WriteChunk keeps it
	return nil
}

// newBatch starts a batch: a buffer lent by the writer when the file is
// busy (one of a stored chunk, which ingest would otherwise leave to the GC),
// a small fresh one when it is quiet.
func (st *state) newBatch(f *file) []byte {
	n := f.batchHint()
	if cw, ok := st.w.(plugin.ChunkWriter); ok && n > maxBatch/2 {
		return cw.ChunkBuffer(n)
	}
	return make([]byte, 0, n)
}

// headerLen is the size of an event header with an empty meta map.
var headerLen = len(event.AppendHeader(nil, event.Time{}, nil))

// batchHint is the capacity a new batch starts with: room for a batch like
// the last one, so a busy file's batch is not grown by copying line after
// line, while a quiet file's small batches stay small.
func (f *file) batchHint() int {
	return min(maxBatch+maxBatch/4, max(4<<10, 2*f.lastBatch))
}

// reap takes the resolved receipts, in order, into the committed position.
func (st *state) reap(f *file) {
	n := 0
	for _, fl := range f.inflight {
		select {
		case <-fl.r.Done():
		default:
			goto done
		}
		if fl.r.Err() != nil {
			// Not stored: this batch and what follows must be read again
			// after a restart, so the position stays where it is.
			if !f.failed {
				st.t.log.Error("batch not stored; position kept before it", "path", f.path, "error", fl.r.Err())
			}
			f.failed = true
		}
		if !f.failed && fl.gen == f.gen {
			f.committed, f.commitEnd = fl.commitOff, fl.end
			f.dirty = true
		}
		n++
	}
done:
	f.inflight = f.inflight[n:]
}

func (st *state) reapAll(ctx context.Context) {
	for _, f := range st.files() {
		st.reap(f)
		if f.dirty && f.records == 0 {
			st.save(ctx, f, nil)
		}
	}
	// A rotated file read to its end, past rotate_wait, with everything stored, is done.
	keep := st.rotated[:0]
	for _, f := range st.rotated {
		done := (f.eof || f.dead) && st.t.now().Sub(f.rotatedAt) >= st.t.rotateWait
		if done && f.ml != nil {
			if _, pending := f.ml.Pending(); pending {
				f.ml.FlushAll(func(r multiline.Record) { st.addML(f, r) })
				_ = st.writeBatch(ctx, f, true)
			}
		}
		if done && len(f.inflight) == 0 && f.records == 0 {
			if f.key != "" && st.t.store != nil {
				if err := st.t.store.Forget(ctx, f.key); err != nil {
					st.t.log.Warn("cannot forget position", "path", f.path, "error", err)
				}
			}
			f.f.Close()
			st.t.log.Debug("done with rotated file", "path", f.path, "inode", f.ino)
			continue
		}
		keep = append(keep, f)
	}
	clear(st.rotated[len(keep):])
	st.rotated = keep
}

// save writes f's position: the committed offset and the ends of the
// batches in flight (plus next, about to be written).
func (st *state) save(ctx context.Context, f *file, next *cut) {
	if st.t.store == nil || f.key == "" {
		f.dirty = false
		return
	}
	if !f.dirty && next == nil {
		return
	}
	var b strings.Builder
	b.WriteString(strconv.FormatInt(f.commitEnd, 10))
	for _, fl := range f.inflight {
		if fl.gen != f.gen {
			continue
		}
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(fl.end, 10))
	}
	// A flush batch's end equals its start; mark it so a replay flushes there.
	writeCut := func(c cut) {
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(c.end, 10))
		if c.flush {
			b.WriteByte('f')
		}
	}
	if next != nil {
		writeCut(*next)
	}
	// Cuts an earlier run recorded and this one has not reached yet: its
	// batches may be stored already, so a restart before they are re-read
	// must still cut there, or it stores their events again under new ids.
	for _, c := range f.replay {
		writeCut(c)
	}
	pos := positions.Position{
		Offset: f.committed,
		Inode:  f.ino,
		Extra: map[string]string{
			"dev":  strconv.FormatUint(f.dev, 10),
			"gen":  strconv.Itoa(f.gen),
			"cuts": b.String(),
			"path": f.path,
		},
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := st.t.store.Commit(cctx, f.key, pos); err != nil {
		// Not fatal: a restart may then read more again, and the copies of
		// what is re-read are not all recognised as such.
		st.t.log.Warn("cannot store position", "path", f.path, "error", err)
		return
	}
	f.dirty = false
}

func parseCuts(s string) []cut {
	var out []cut
	for _, p := range strings.Split(s, ",") {
		if p == "" {
			continue
		}
		c := cut{}
		if strings.HasSuffix(p, "f") {
			c.flush = true
			p = strings.TrimSuffix(p, "f")
		}
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil
		}
		c.end = v
		out = append(out, c)
	}
	return out
}

func (st *state) nextMLDeadline() time.Time {
	var d time.Time
	for _, f := range st.files() {
		if f.ml == nil {
			continue
		}
		if n := f.ml.NextDeadline(); !n.IsZero() && (d.IsZero() || n.Before(d)) {
			d = n
		}
	}
	return d
}

// finish ends an exit_on_eof run: pending multiline records are written,
// every batch is stored, and the positions are committed.
func (st *state) finish(ctx context.Context) error {
	for _, f := range st.files() {
		if f.ml != nil {
			f.ml.FlushAll(func(r multiline.Record) { st.addML(f, r) })
			if err := st.writeBatch(ctx, f, true); err != nil {
				return err
			}
		}
	}
	plugin.FlushWriter(st.w)
	if err := st.tr.Wait(ctx); err != nil {
		return st.shutdown()
	}
	for _, f := range st.files() {
		st.reap(f)
		st.save(ctx, f, nil)
	}
	return nil
}

// shutdown gives the batches in flight a moment to be stored, so their
// positions are committed and a restart re-reads little.
func (st *state) shutdown() error {
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	plugin.FlushWriter(st.w)
	_ = st.tr.Wait(wctx)
	for _, f := range st.files() {
		st.reap(f)
		st.save(wctx, f, nil)
	}
	return nil
}

func (st *state) closeAll() {
	for _, f := range st.files() {
		f.f.Close()
	}
}

// unsafeString views b as a string for encoding only; b is not modified meanwhile.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
