package wasmtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

var wantNames = []string{
	"c_filter_nostdlib",
	"c_wasi_filter",
	"go_filter",
	"not_wasm",
	"wasi_exit_nonzero",
	"wasi_hello",
	"wasi_json",
	"wasi_trap",
}

func TestNamesLoad(t *testing.T) {
	names := Names()
	if !slices.Equal(names, wantNames) {
		t.Fatalf("Names() = %q, want %q", names, wantNames)
	}
	for _, name := range names {
		b := Guest(name)
		if name == "not_wasm" {
			if string(b) != "this is not wasm\n" {
				t.Errorf("not_wasm = %q", b)
			}
			if _, err := parseModule(b); err == nil {
				t.Errorf("not_wasm parsed as a module")
			}
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
			t.Errorf("%s: no wasm magic/version 1: % x", name, b[:min(8, len(b))])
			continue
		}
		if _, err := parseModule(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPath(t *testing.T) {
	p := Path(t, "wasi_hello")
	if !strings.HasSuffix(p, "/wasi_hello.wasm") {
		t.Errorf("Path = %q", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Guest("wasi_hello")) {
		t.Errorf("Path content differs from Guest")
	}
}

func TestGuestUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("Guest(unknown) did not panic")
		}
	}()
	Guest("no_such_guest")
}

const (
	filterType = "(i32,i32,i32,i32,i32,i32)->(i32)"
	mallocType = "(i32)->(i32)"
	freeType   = "(i32)->()"
	voidType   = "()->()"
)

func TestCFilterNostdlib(t *testing.T) {
	m := mustParse(t, "c_filter_nostdlib")
	wantImports := map[string]string{
		"env.malloc":  mallocType,
		"env.printf":  "(i32,i32)->(i32)",     // format, va_list
		"env.sprintf": "(i32,i32,i32)->(i32)", // buf, format, va_list
	}
	if len(m.funcImports) != len(wantImports) {
		t.Errorf("function imports = %v, want %v", m.funcImports, wantImports)
	}
	for name, typ := range wantImports {
		if got := m.funcImports[name]; got != typ {
			t.Errorf("import %s: type %q, want %q", name, got, typ)
		}
	}
	if len(m.otherImports) != 0 {
		t.Errorf("non-function imports: %v", m.otherImports)
	}
	m.wantFunc(t, "c_filter", filterType)
	for _, g := range []string{"__heap_base", "__data_end"} {
		if m.exports[g] != "global" {
			t.Errorf("export %s = %q, want a global", g, m.exports[g])
		}
	}
	m.wantNoExport(t, "malloc", "free", "_start", "_initialize")
}

func TestCWasiFilter(t *testing.T) {
	m := mustParse(t, "c_wasi_filter")
	m.wantWASIOnly(t)
	m.wantFunc(t, "malloc", mallocType)
	m.wantFunc(t, "free", freeType)
	m.wantFunc(t, "_initialize", voidType)
	m.wantNoExport(t, "_start")
	for _, fn := range []string{
		"c_add_fields", "c_drop", "c_invalid_json", "c_trap", "c_loop",
		"c_memory_bomb", "c_leak", "c_msgpack_passthrough", "c_echo", "c_printf",
	} {
		m.wantFunc(t, fn, filterType)
	}
}

func TestGoFilter(t *testing.T) {
	m := mustParse(t, "go_filter")
	m.wantWASIOnly(t)
	m.wantFunc(t, "malloc", mallocType)
	m.wantFunc(t, "free", freeType)
	m.wantFunc(t, "_initialize", voidType)
	m.wantNoExport(t, "_start")
	for _, fn := range []string{"go_add_field", "go_passthrough", "go_msgpack_add", "go_print"} {
		m.wantFunc(t, fn, filterType)
	}
}

func TestCommands(t *testing.T) {
	for _, name := range []string{"wasi_hello", "wasi_json", "wasi_exit_nonzero", "wasi_trap"} {
		t.Run(name, func(t *testing.T) {
			m := mustParse(t, name)
			m.wantWASIOnly(t)
			m.wantFunc(t, "_start", voidType)
			m.wantNoExport(t, "_initialize")
		})
	}
}

// module is what the tests need from a parsed module.
type module struct {
	funcImports  map[string]string // "module.name" -> signature
	otherImports []string          // non-function imports, "module.name kind"
	exports      map[string]string // name -> "func (..)->(..)", "global", "memory", "table"
}

func mustParse(t *testing.T, name string) *module {
	t.Helper()
	m, err := parseModule(Guest(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if m.exports["memory"] != "memory" {
		t.Errorf("%s: no exported memory", name)
	}
	return m
}

func (m *module) wantFunc(t *testing.T, name, typ string) {
	t.Helper()
	if got, want := m.exports[name], "func "+typ; got != want {
		t.Errorf("export %s = %q, want %q", name, got, want)
	}
}

func (m *module) wantNoExport(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if k, ok := m.exports[n]; ok {
			t.Errorf("unexpected export %s (%s)", n, k)
		}
	}
}

func (m *module) wantWASIOnly(t *testing.T) {
	t.Helper()
	for name := range m.funcImports {
		if !strings.HasPrefix(name, "wasi_snapshot_preview1.") {
			t.Errorf("non-WASI import %s", name)
		}
	}
	if len(m.otherImports) != 0 {
		t.Errorf("non-function imports: %v", m.otherImports)
	}
}

// reader decodes the WebAssembly binary format (LEB128, vectors, names).
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("unexpected end of data")

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 0xffffffff {
				r.err = errors.New("u32 overflow")
				return 0
			}
			return uint32(v)
		}
	}
	r.err = errors.New("u32 too long")
	return 0
}

func (r *reader) bytes(n uint32) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

var valTypes = map[byte]string{0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref"}

func (r *reader) valTypes() string {
	n := r.u32()
	var s []string
	for i := uint32(0); i < n && r.err == nil; i++ {
		c := r.byte()
		vt, ok := valTypes[c]
		if !ok && r.err == nil {
			r.err = fmt.Errorf("unknown value type 0x%x", c)
		}
		s = append(s, vt)
	}
	return "(" + strings.Join(s, ",") + ")"
}

// parseModule reads the type, import, function and export sections.
func parseModule(b []byte) (*module, error) {
	if !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, errors.New("not a wasm module (magic/version)")
	}
	m := &module{funcImports: map[string]string{}, exports: map[string]string{}}
	var types []string
	var funcs []uint32 // type index of every function, imports first
	r := &reader{b: b[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		s := &reader{b: r.bytes(r.u32())}
		if r.err != nil {
			break
		}
		switch id {
		case 1: // type
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				if c := s.byte(); c != 0x60 && s.err == nil {
					return nil, fmt.Errorf("type form 0x%x", c)
				}
				params := s.valTypes()
				results := s.valTypes()
				types = append(types, params+"->"+results)
			}
		case 2: // import
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				name := s.name() + "." + s.name()
				switch kind := s.byte(); kind {
				case 0:
					ti := s.u32()
					if int(ti) >= len(types) {
						return nil, fmt.Errorf("import %s: type index %d", name, ti)
					}
					m.funcImports[name] = types[ti]
					funcs = append(funcs, ti)
				case 1:
					s.byte()
					s.limits()
					m.otherImports = append(m.otherImports, name+" table")
				case 2:
					s.limits()
					m.otherImports = append(m.otherImports, name+" memory")
				case 3:
					s.byte()
					s.byte()
					m.otherImports = append(m.otherImports, name+" global")
				default:
					return nil, fmt.Errorf("import %s: kind %d", name, kind)
				}
			}
		case 3: // function
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				funcs = append(funcs, s.u32())
			}
		case 7: // export
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				name := s.name()
				kind := s.byte()
				idx := s.u32()
				switch kind {
				case 0:
					if int(idx) >= len(funcs) || int(funcs[idx]) >= len(types) {
						return nil, fmt.Errorf("export %s: function index %d", name, idx)
					}
					m.exports[name] = "func " + types[funcs[idx]]
				case 1:
					m.exports[name] = "table"
				case 2:
					m.exports[name] = "memory"
				case 3:
					m.exports[name] = "global"
				default:
					return nil, fmt.Errorf("export %s: kind %d", name, kind)
				}
			}
		}
		if s.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, s.err)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}
