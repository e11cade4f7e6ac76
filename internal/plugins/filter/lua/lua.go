// Package lua is Fluent Bit's Lua filter (plugins/filter_lua) on
// gopher-lua, a pure-Go Lua 5.1: a script's function is called for every
// record and its return code says what becomes of it.
//
// The callback is cb(tag, timestamp, record) returning code, timestamp,
// record, or — when the function takes five parameters — Fluent Bit's
// extended cb(tag, timestamp, group, metadata, record) returning code,
// timestamp, metadata, record. Codes, as upstream:
//
//	-1  drop the record
//	 0  keep the record unchanged (byte for byte)
//	 1  replace timestamp and record
//	 2  replace the record, keep the timestamp
//
// Any other code keeps the record and logs an error. A returned record that
// is an array of tables splits the record into several, each with the
// timestamp (and, in the extended form, the metadata of the same position).
//
// Values: strings and binaries become Lua strings, numbers Lua numbers
// (doubles: integers beyond 2^53 lose precision, as with LuaJIT), maps and
// arrays tables; a nil value disappears from its table unless
// enable_flb_null is on, which passes it as the flb_null sentinel. Back from
// Lua, a number with no fraction becomes an integer (Fluent Bit ≥ 1.6), a
// table whose keys are exactly 1..n becomes an array and any other table a
// map (an empty table is an empty map); keys listed in type_int_key are
// made integers, keys listed in type_array_key arrays (even empty). A
// table's keys come out in the order they were first set (Fluent Bit's
// order is the Lua hash order).
//
// Errors: with protected_mode on (the default) a failing call, or a
// callback returning something that is not a code and a table, leaves the
// whole chunk unchanged and is logged, as upstream. With protected_mode
// off, Fluent Bit aborts; Floe fails the chunk instead, and the filter
// stage sets it aside as a dead letter at once (a script fails the same
// way on every try).
//
// One Lua state serves the filter instance, as in Fluent Bit, so globals a
// script keeps (counters, caches) see every record of this process; calls
// are serialized. FLB_ENV holds HOSTNAME.
package lua

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	glua "github.com/yuin/gopher-lua"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// Spec describes the lua filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "lua",
		Desc: "Lua scripting filter",
		Keys: []plugin.Key{
			{Name: "script", Desc: "path to the Lua script, relative to the configuration file"},
			{Name: "call", Desc: "Lua function called for each record"},
			{Name: "code", Desc: "inline Lua code instead of script"},
			{Name: "type_int_key", Desc: "space-separated keys whose values are converted to integers"},
			{Name: "type_array_key", Desc: "space-separated keys whose values are handled as arrays, even empty"},
			{Name: "protected_mode", Type: plugin.Bool, Default: "true", Desc: "on an error, keep the chunk unchanged instead of failing it"},
			{Name: "time_as_table", Type: plugin.Bool, Default: "false", Desc: "pass the timestamp as a table {sec, nsec} instead of a double"},
			{Name: "enable_flb_null", Type: plugin.Bool, Default: "false", Desc: "pass null values as flb_null instead of removing their keys"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			f, err := New(ctx, set, p)
			if err == nil {
				f.(*Filter).Close(ctx)
			}
			return err
		},
	}
}

// Filter is one lua instance.
type Filter struct {
	log         *slog.Logger
	protected   bool
	timeTable   bool
	flbNull     bool
	intKeys     map[string]bool
	arrayKeys   map[string]bool
	extended    bool
	mu          sync.Mutex
	L           *glua.LState
	fn          *glua.LFunction
	null        *glua.LUserData
	name        string
	tagCache    string
	tagCacheVal glua.LString
}

// New loads the script and finds the function to call.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	f := &Filter{
		log: log, name: set.DisplayName(),
		protected: p.Bool("protected_mode"), timeTable: p.Bool("time_as_table"), flbNull: p.Bool("enable_flb_null"),
		intKeys: fields(p.String("type_int_key")), arrayKeys: fields(p.String("type_array_key")),
	}
	call := p.String("call")
	if call == "" {
		return nil, p.Errorf("call", "call is required: the Lua function to run for each record")
	}
	script, code := p.String("script"), p.String("code")
	if script == "" && code == "" {
		return nil, p.Errorf("script", "script or code is required")
	}
	L := glua.NewState()
	f.L = L
	f.null = L.NewUserData()
	L.SetGlobal("flb_null", f.null)
	env := L.NewTable()
	if h, err := os.Hostname(); err == nil {
		env.RawSetString("HOSTNAME", glua.LString(h))
	}
	L.SetGlobal("FLB_ENV", env)
	if code != "" {
		if err := L.DoString(code); err != nil {
			L.Close()
			return nil, p.Errorf("code", "cannot load Lua code: %s", strings.TrimSpace(err.Error()))
		}
	} else {
		path := script
		if !filepath.IsAbs(path) && p.Section.File != "" {
			rel := filepath.Join(filepath.Dir(p.Section.File), path)
			if _, err := os.Stat(rel); err == nil {
				path = rel
			}
		}
		if err := L.DoFile(path); err != nil {
			L.Close()
			return nil, p.Errorf("script", "cannot load Lua script %s: %s", path, strings.TrimSpace(err.Error()))
		}
	}
	fn, ok := L.GetGlobal(call).(*glua.LFunction)
	if !ok {
		L.Close()
		return nil, p.Errorf("call", "function %q is not defined by the script", call)
	}
	f.fn = fn
	if fn.Proto != nil {
		switch fn.Proto.NumParameters {
		case 3:
		case 5:
			f.extended = true
		default:
			L.Close()
			return nil, p.Errorf("call", "function %q takes %d parameters; want 3 (tag, timestamp, record) or 5 (tag, timestamp, group, metadata, record)",
				call, fn.Proto.NumParameters)
		}
	}
	return f, nil
}

func fields(s string) map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(s) {
		m[k] = true
	}
	return m
}

// Close releases the Lua state.
func (f *Filter) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.L != nil {
		f.L.Close()
		f.L = nil
	}
	return nil
}

// callError is a script failure: the whole chunk is kept (protected mode).
type callError struct{ err error }

func (e *callError) Error() string { return e.err.Error() }

// FilterChunk calls the function for each record.
func (f *Filter) FilterChunk(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.L == nil {
		return nil, fmt.Errorf("lua filter %s is closed", f.name)
	}
	f.L.SetContext(ctx)
	defer f.L.RemoveContext()
	if c.Tag != f.tagCache {
		f.tagCache, f.tagCacheVal = c.Tag, glua.LString(c.Tag)
	}
	out := make([]byte, 0, len(c.Data)+len(c.Data)/4)
	n := 0
	changed := false
	var group glua.LValue = glua.LNil
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		switch raw.Kind() {
		case event.KindGroupStart:
			group = glua.LNil
			if f.extended {
				if ev, err := raw.Decode(); err == nil {
					group = f.toLua(ev.Body)
				}
			}
			out = append(out, raw.Raw...)
			continue
		case event.KindGroupEnd:
			group = glua.LNil
			out = append(out, raw.Raw...)
			continue
		}
		ev, err := raw.Decode()
		if err != nil {
			return nil, err
		}
		before := len(out)
		k, err := f.record(&ev, group, &out)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err() // stopping: the chunk is redelivered
			}
			if !f.protected {
				// The script fails the same way on every try: set it aside.
				return nil, plugin.Permanent(fmt.Errorf("lua %s: record at byte offset %d: %w", f.name, raw.Offset, err))
			}
			f.log.Error("lua callback failed; the chunk passes unchanged", "filter", f.name, "tag", c.Tag, "error", err)
			return []*chunk.Chunk{c}, nil
		}
		if k < 0 { // unchanged
			out = append(out[:before], raw.Raw...)
			n++
			continue
		}
		changed = true
		n += k
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !changed {
		return []*chunk.Chunk{c}, nil
	}
	if n == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}

// record runs the callback on one event and appends the records it yields.
// It returns -1 for "keep the original", else the number of records written.
func (f *Filter) record(ev *event.Event, group glua.LValue, out *[]byte) (int, error) {
	L := f.L
	var ts glua.LValue
	if f.timeTable {
		t := L.CreateTable(0, 2)
		t.RawSetString("sec", glua.LNumber(ev.Time.Sec))
		t.RawSetString("nsec", glua.LNumber(ev.Time.Nsec))
		ts = t
	} else {
		ts = glua.LNumber(ev.Time.Float())
	}
	nret := 3
	args := []glua.LValue{f.tagCacheVal, ts}
	if f.extended {
		if group == glua.LNil {
			group = L.CreateTable(0, 0)
		}
		args = append(args, group, f.toLua(ev.Meta))
		nret = 4
	}
	args = append(args, f.toLua(ev.Body))
	top := L.GetTop()
	if err := L.CallByParam(glua.P{Fn: f.fn, NRet: nret, Protect: true}, args...); err != nil {
		L.SetTop(top)
		return 0, &callError{err}
	}
	rets := make([]glua.LValue, nret)
	for i := range rets {
		rets[i] = L.Get(top + 1 + i)
	}
	L.SetTop(top)
	codeV, ok := rets[0].(glua.LNumber)
	if !ok {
		return 0, &callError{fmt.Errorf("return code is a %s, not a number", rets[0].Type())}
	}
	code := int(codeV)
	switch code {
	case -1:
		return 0, nil
	case 0:
		return -1, nil
	case 1, 2:
	default:
		f.log.Error("unexpected Lua script return code, original record will be kept", "filter", f.name, "code", code)
		return -1, nil
	}
	tm := ev.Time
	if code == 1 {
		t, err := f.timeFrom(rets[1])
		if err != nil {
			return 0, &callError{err}
		}
		tm = t
	}
	recV := rets[nret-1]
	rec, ok := recV.(*glua.LTable)
	if !ok {
		return 0, &callError{fmt.Errorf("returned record is a %s, not a table", recV.Type())}
	}
	var metas []event.Map
	var metaT *glua.LTable
	if f.extended {
		metaT, _ = rets[2].(*glua.LTable)
	}
	if isArrayOfTables(rec) {
		if metaT != nil && isArrayOfTables(metaT) {
			for i := 1; i <= metaT.MaxN(); i++ {
				metas = append(metas, f.toMap(metaT.RawGetInt(i).(*glua.LTable)))
			}
		}
		k := 0
		for i := 1; i <= rec.MaxN(); i++ {
			t, ok := rec.RawGetInt(i).(*glua.LTable)
			if !ok {
				continue
			}
			meta := ev.Meta
			if f.extended {
				meta = nil
				if i-1 < len(metas) {
					meta = metas[i-1]
				} else if metaT != nil && !isArrayOfTables(metaT) {
					meta = f.toMap(metaT)
				}
			}
			out2 := event.Event{Time: tm, Meta: meta, Body: f.toMap(t)}
			*out = out2.AppendMsgpack(*out)
			k++
		}
		return k, nil
	}
	meta := ev.Meta
	if f.extended {
		meta = nil
		if metaT != nil {
			meta = f.toMap(metaT)
		}
	}
	o := event.Event{Time: tm, Meta: meta, Body: f.toMap(rec)}
	*out = o.AppendMsgpack(*out)
	return 1, nil
}

// timeFrom reads a returned timestamp: a double, or a {sec, nsec} table.
func (f *Filter) timeFrom(v glua.LValue) (event.Time, error) {
	switch v := v.(type) {
	case glua.LNumber:
		d := float64(v)
		if d < 0 || d > math.MaxUint32 || math.IsNaN(d) {
			return event.Time{}, fmt.Errorf("returned timestamp %v is out of range", d)
		}
		sec := math.Floor(d)
		nsec := math.Round((d - sec) * 1e9)
		if nsec >= 1e9 {
			sec, nsec = sec+1, 0
		}
		return event.Time{Sec: int64(sec), Nsec: uint32(nsec)}, nil
	case *glua.LTable:
		sec, ok1 := v.RawGetString("sec").(glua.LNumber)
		nsec, ok2 := v.RawGetString("nsec").(glua.LNumber)
		if !ok1 || !ok2 || sec < 0 || nsec < 0 || nsec >= 1e9 {
			return event.Time{}, fmt.Errorf("returned timestamp table needs numbers sec and nsec < 1e9")
		}
		return event.Time{Sec: int64(sec), Nsec: uint32(nsec)}, nil
	}
	return event.Time{}, fmt.Errorf("returned timestamp is a %s, not a number or table", v.Type())
}

// isArrayOfTables reports whether t is a non-empty sequence whose first
// element is a table: a split into several records.
func isArrayOfTables(t *glua.LTable) bool {
	n := arrayLen(t)
	if n <= 0 {
		return false
	}
	_, ok := t.RawGetInt(1).(*glua.LTable)
	return ok
}

// arrayLen is n when t's keys are exactly 1..n, else -1 (Fluent Bit's
// flb_lua_arraylength).
func arrayLen(t *glua.LTable) int {
	count := 0
	max := 0
	isArr := true
	each(t, func(k, _ glua.LValue) {
		count++
		num, ok := k.(glua.LNumber)
		if !ok || float64(num) != math.Trunc(float64(num)) || num < 1 {
			isArr = false
			return
		}
		if int(num) > max {
			max = int(num)
		}
	})
	if !isArr || max != count {
		return -1
	}
	return count
}

// each visits t's pairs: the array part, then the other keys in the order
// they were first set (LTable.ForEach walks Go maps, in random order).
func each(t *glua.LTable, fn func(k, v glua.LValue)) {
	for k, v := t.Next(glua.LNil); k != glua.LNil; k, v = t.Next(k) {
		fn(k, v)
	}
}

// ---- MessagePack values to Lua ----

func (f *Filter) toLua(v any) glua.LValue {
	switch v := v.(type) {
	case nil:
		if f.flbNull {
			return f.null
		}
		return glua.LNil
	case bool:
		return glua.LBool(v)
	case int64:
		return glua.LNumber(v)
	case uint64:
		return glua.LNumber(v)
	case float64:
		return glua.LNumber(v)
	case float32:
		return glua.LNumber(v)
	case string:
		return glua.LString(v)
	case []byte:
		return glua.LString(v)
	case event.Map:
		t := f.L.CreateTable(0, len(v))
		for _, kv := range v {
			t.RawSetString(kv.Key, f.toLua(kv.Value))
		}
		return t
	case []any:
		t := f.L.CreateTable(len(v), 0)
		for i, e := range v {
			t.RawSetInt(i+1, f.toLua(e))
		}
		return t
	case event.Ext:
		return glua.LString(v.Data)
	}
	return glua.LString(fmt.Sprint(v))
}

// ---- Lua values back to MessagePack ----

func (f *Filter) toMap(t *glua.LTable) event.Map {
	m := make(event.Map, 0, 8)
	each(t, func(k, v glua.LValue) {
		var key string
		switch k := k.(type) {
		case glua.LString:
			key = string(k)
		case glua.LNumber:
			key = numberKey(float64(k))
		default:
			return // keys Fluent Bit cannot pack either (tables, functions)
		}
		m = append(m, event.KV{Key: key, Value: f.fromLua(key, v)})
	})
	return m
}

func numberKey(d float64) string {
	if d == math.Trunc(d) && math.Abs(d) < 1<<63 {
		return strconv.FormatInt(int64(d), 10)
	}
	return strconv.FormatFloat(d, 'g', -1, 64)
}

// fromLua converts a value stored under key (type_int_key, type_array_key).
func (f *Filter) fromLua(key string, v glua.LValue) any {
	if f.intKeys[key] {
		switch n := v.(type) {
		case glua.LNumber:
			return int64(n)
		case glua.LString:
			if i, err := strconv.ParseFloat(strings.TrimSpace(string(n)), 64); err == nil {
				return int64(i)
			}
		}
	}
	if f.arrayKeys[key] {
		if t, ok := v.(*glua.LTable); ok {
			arr := make([]any, 0, t.MaxN())
			for i := 1; i <= t.MaxN(); i++ {
				arr = append(arr, f.fromLua("", t.RawGetInt(i)))
			}
			return arr
		}
	}
	return f.value(v)
}

func (f *Filter) value(v glua.LValue) any {
	switch v := v.(type) {
	case glua.LBool:
		return bool(v)
	case glua.LNumber:
		d := float64(v)
		if d == math.Trunc(d) && d >= math.MinInt64 && d < math.MaxInt64 {
			return int64(d)
		}
		return d
	case glua.LString:
		return string(v)
	case *glua.LTable:
		if n := arrayLen(v); n > 0 {
			arr := make([]any, n)
			for i := 1; i <= n; i++ {
				arr[i-1] = f.fromLua("", v.RawGetInt(i))
			}
			return arr
		}
		return f.toMap(v)
	case *glua.LUserData:
		if v == f.null {
			return nil
		}
	}
	return nil
}
