package wasmhost

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// maxLine is the longest line LineWriter buffers before logging it anyway.
const maxLine = 64 << 10

// LineWriter is an io.Writer that logs what is written to it one line at a
// time (without the newline; a trailing \r is dropped), with fixed
// attributes such as the module's name. It is safe for concurrent use.
type LineWriter struct {
	log   *slog.Logger
	level slog.Level
	attrs []any
	mu    sync.Mutex
	buf   []byte
}

// NewLineWriter logs lines at Info level with attrs (key/value pairs).
func NewLineWriter(log *slog.Logger, attrs ...any) *LineWriter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LineWriter{log: log, level: slog.LevelInfo, attrs: attrs}
}

// Write implements io.Writer; it never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) >= maxLine {
				w.emit()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

// Flush logs a pending partial line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit()
	}
}

func (w *LineWriter) emit() {
	line := w.buf
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	w.log.Log(context.Background(), w.level, string(line), w.attrs...)
	w.buf = w.buf[:0]
}
