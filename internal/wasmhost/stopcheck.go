package wasmhost

import (
	"errors"
	"fmt"
)

// Deadlines without wazero's per-loop exits (issue 13 item 5).
//
// wazero's WithCloseOnContextDone makes compiled code leave to Go at every
// loop back-edge and function entry to ask whether the call must stop
// (wazero issue #2466): loop-heavy guests run several times slower. Go cannot
// interrupt machine code any other way: async preemption skips non-Go code
// and wazero has no interrupt hook in v1.12.0.
//
// So Floe adds the check to the module itself before compiling it without
// wazero's. Two mutable i32 globals are added and exported: $stop
// (stopGlobalName), raised by the host, and $budget (budgetGlobalName), a
// countdown. At every function entry (and at the header of a loop that
// takes parameters):
//
//	global.get $budget
//	i32.const 1
//	i32.lt_s                ;; budget <= 0: the slow path
//	if
//	  i32.const 0
//	  memory.grow 0         ;; grows nothing, but is an exit to Go
//	  drop
//	  global.get $stop
//	  if
//	    unreachable
//	  end
//	  i32.const yieldEvery
//	  global.set $budget
//	end
//	global.get $budget
//	i32.const 1
//	i32.sub
//	global.set $budget
//
// At the header of any other loop the same countdown branches out of the
// loop instead, to a wrapper that runs the slow path and re-enters it (see
// checkCode), so that the loop body itself holds no call.
//
// The common path is a load, a compare, a never-taken branch and a
// decrement: no exit to Go. Every yieldEvery checks the guest leaves to Go
// once (wazero runs memory.grow in Go), which is a point where the Go
// runtime can preempt the goroutine. Without it a guest spinning in a loop
// could never be preempted, so a garbage collection starting meanwhile
// would wait forever to stop the world, and the timer goroutine that would
// raise $stop is stopped with everything else: the whole process would
// hang. wazero's own checks do not have this problem because each one is an
// exit to Go; wazero PR #2482 counts checks the same way inside its
// compiler.
//
// When a call's deadline passes (or its context ends) the host raises $stop
// and zeroes $budget from the timer goroutine; the guest takes the slow path
// at its next check (or within yieldEvery checks, if its own decrement
// overwrote the zero) and traps, and the host reports a timeout because it
// knows it fired. Function entry is checked too, so recursion and tail
// calls without loops stop as well.
//
// A module the rewriter does not understand (an opcode it does not know,
// such as the exception-handling or GC proposals) or without a linear
// memory (no memory.grow to exit with) is compiled with wazero's checks
// instead.

// stopGlobalName and budgetGlobalName are the export names of the added
// globals.
const (
	stopGlobalName   = "__floe_stop"
	budgetGlobalName = "__floe_budget"
)

// yieldEvery is how many checks run between two exits to Go. An exit costs
// ~100-200 ns, a check a few instructions: at 8192 the exits add well under
// 1 % to the tightest loop, and a collection waits at most 8192 loop
// iterations for a spinning guest.
const yieldEvery = 8192

var errUnsupported = errors.New("unsupported")

// checkCode is the code the rewriter inserts for the globals stop and
// budget (see the comment at the top of this file).
type checkCode struct {
	// entry is the check at function entries (and at the header of a
	// loop that takes parameters): the slow path in place.
	entry []byte
	// loopHead is the check at the header of a wrapped loop: a countdown
	// that branches out of the loop (to the block the wrapper puts around
	// it) when the budget is spent, so the loop body holds no call.
	loopHead []byte
	// loopTail follows the wrapped loop's end: leave the wrapper with the
	// loop's results, or run the slow path and re-enter the loop.
	loopTail []byte
}

// Wrapping a loop (a loop's exit to Go, out of the loop):
//
//	block $done (bt)          ;; the loop's own block type
//	  loop $again
//	    block $spent
//	      loop (bt)           ;; the original loop
//	        budget check: spent → br $spent (br_if 1)
//	        ...body...        ;; branches out of the loop: depth + 3
//	      end
//	      br $done            ;; the loop finished: its results go out
//	    end
//	    slow path             ;; exit to Go, stop check, refill
//	    br $again             ;; re-enter the loop at its header
//	  end
//	  unreachable             ;; for the validator: $again never ends
//	end
//
// Re-entering at the header is what reaching the header again would have
// done: the check is the header's first instruction, locals keep their
// values and the operand stack outside the loop is untouched. Why: the
// exit is a call, and a call in a loop body, taken or not, costs wazero's
// register allocator registers across the whole loop; with the exit moved
// out, the C guest's c_add_fields took 345 ns per record instead of 550
// (BenchmarkDeadline).
const wrapDepth = 3

func stopCheck(stop, budget uint32) checkCode {
	get := func(b []byte, g uint32) []byte { return appendU32(append(b, 0x23), g) }
	set := func(b []byte, g uint32) []byte { return appendU32(append(b, 0x24), g) }
	slow := []byte{0x41, 0x00, 0x40, 0x00, 0x1a} // i32.const 0, memory.grow 0, drop
	slow = get(slow, stop)
	slow = append(slow, 0x04, 0x40, 0x00, 0x0b) // if unreachable end
	slow = appendS32(append(slow, 0x41), yieldEvery)
	slow = set(slow, budget)
	decrement := get(nil, budget)
	decrement = append(decrement, 0x41, 0x01, 0x6b) // i32.const 1, i32.sub
	decrement = set(decrement, budget)

	var c checkCode
	c.entry = get(nil, budget)
	c.entry = append(c.entry, 0x41, 0x01, 0x48, 0x04, 0x40) // i32.const 1, i32.lt_s, if
	c.entry = append(c.entry, slow...)
	c.entry = append(c.entry, 0x0b) // end
	c.entry = append(c.entry, decrement...)

	c.loopHead = get(nil, budget)
	c.loopHead = append(c.loopHead, 0x41, 0x01, 0x48, 0x0d, 0x01) // i32.const 1, i32.lt_s, br_if $spent
	c.loopHead = append(c.loopHead, decrement...)

	c.loopTail = []byte{0x0b, 0x0c, 0x02, 0x0b} // end (loop), br $done, end ($spent)
	c.loopTail = append(c.loopTail, slow...)
	c.loopTail = append(c.loopTail, 0x0c, 0x00, 0x0b, 0x00, 0x0b) // br $again, end, unreachable, end
	return c
}

// section ids and their order in a module (custom sections aside).
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secCode      = 10
	secDataCount = 12
	secTag       = 13
)

var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, secTag: 6, secGlobal: 7, secExport: 8, 8: 9, 9: 10, secDataCount: 11, secCode: 12, 11: 13}

type section struct {
	id   byte
	body []byte
}

// addStopChecks returns bin with the stop global and checks added; an
// error when the module uses something the rewriter does not decode (the
// caller then compiles bin with wazero's own checks).
func addStopChecks(bin []byte) ([]byte, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, fmt.Errorf("not a wasm module")
	}
	r := &reader{b: bin, off: 8}
	var secs []section
	for r.off < len(r.b) {
		id := r.byte()
		n := r.u32()
		if r.err != nil || r.off+int(n) > len(r.b) {
			return nil, fmt.Errorf("section %d at byte %d: truncated", id, r.off)
		}
		body := r.b[r.off : r.off+int(n)]
		r.off += int(n)
		if id == secCustom && isDebugSection(body) {
			// DWARF offsets would point into the old code: drop them.
			continue
		}
		secs = append(secs, section{id, body})
	}
	if r.err != nil {
		return nil, r.err
	}

	importedGlobals, definedGlobals := 0, 0
	memories := 0
	for _, s := range secs {
		switch s.id {
		case secImport:
			g, m, err := countImports(s.body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			importedGlobals = g
			memories += m
		case secMemory:
			sr := &reader{b: s.body}
			memories += int(sr.u32())
		case secGlobal:
			sr := &reader{b: s.body}
			definedGlobals = int(sr.u32())
			if sr.err != nil {
				return nil, fmt.Errorf("global section: %w", sr.err)
			}
		}
	}
	if memories == 0 {
		return nil, fmt.Errorf("no linear memory, so no memory.grow to leave to Go with: %w", errUnsupported)
	}
	gidx := uint32(importedGlobals + definedGlobals)
	check := stopCheck(gidx, gidx+1)

	out := append([]byte(nil), bin[:8]...)
	haveGlobal, haveExport := false, false
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b}                                    // $stop: mut i32 = i32.const 0
	newGlobal = append(appendS32(append(newGlobal, 0x7f, 0x01, 0x41), yieldEvery), 0x0b) // $budget: mut i32 = yieldEvery
	var newExport []byte
	for i, name := range []string{stopGlobalName, budgetGlobalName} {
		newExport = append(appendU32(newExport, uint32(len(name))), name...)
		newExport = appendU32(append(newExport, 0x03), gidx+uint32(i))
	}
	for _, s := range secs {
		if s.id != secCustom {
			rank := sectionRank[s.id]
			if !haveGlobal && rank > sectionRank[secGlobal] {
				emit(secGlobal, append(appendU32(nil, 2), newGlobal...))
				haveGlobal = true
			}
			if !haveExport && rank > sectionRank[secExport] {
				emit(secExport, append(appendU32(nil, 2), newExport...))
				haveExport = true
			}
		}
		switch s.id {
		case secGlobal:
			sr := &reader{b: s.body}
			n := sr.u32()
			body := appendU32(nil, n+2)
			body = append(body, s.body[sr.off:]...)
			emit(secGlobal, append(body, newGlobal...))
			haveGlobal = true
		case secExport:
			sr := &reader{b: s.body}
			n := sr.u32()
			body := appendU32(nil, n+2)
			body = append(body, s.body[sr.off:]...)
			emit(secExport, append(body, newExport...))
			haveExport = true
		case secCode:
			body, err := instrumentCode(s.body, check)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(secCode, body)
		default:
			emit(s.id, s.body)
		}
	}
	if !haveGlobal {
		emit(secGlobal, append(appendU32(nil, 2), newGlobal...))
	}
	if !haveExport {
		emit(secExport, append(appendU32(nil, 2), newExport...))
	}
	return out, nil
}

func isDebugSection(body []byte) bool {
	r := &reader{b: body}
	n := r.u32()
	if r.err != nil || r.off+int(n) > len(body) {
		return false
	}
	name := string(body[r.off : r.off+int(n)])
	return len(name) > 7 && name[:7] == ".debug_"
}

// countImports counts the globals and memories an import section imports.
func countImports(b []byte) (globals, memories int, err error) {
	r := &reader{b: b}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.skip(int(r.u32())) // module
		r.skip(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0: // func
			r.u32()
		case 1: // table
			r.byte()
			r.limits()
		case 2: // memory
			r.limits()
			memories++
		case 3: // global
			r.byte()
			r.byte()
			globals++
		case 4: // tag
			r.byte()
			r.u32()
		default:
			return 0, 0, fmt.Errorf("import kind %d: %w", kind, errUnsupported)
		}
	}
	return globals, memories, r.err
}

// instrumentCode rewrites the code section: check at the entry of every
// function body and after every loop's block type.
func instrumentCode(b []byte, check checkCode) ([]byte, error) {
	r := &reader{b: b}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(b)+len(b)/8), n)
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		if r.err != nil || r.off+int(size) > len(b) {
			return nil, fmt.Errorf("function %d: truncated", i)
		}
		body := b[r.off : r.off+int(size)]
		r.off += int(size)
		var err error
		fn, err = instrumentBody(fn[:0], body, check)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	return out, r.err
}

func instrumentBody(out, body []byte, check checkCode) ([]byte, error) {
	r := &reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups; i++ {
		r.u32()
		if t := r.byte(); t == 0x63 || t == 0x64 { // (ref null ht): GC proposal
			return nil, fmt.Errorf("local of reference type %#x: %w", t, errUnsupported)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	out = append(out, body[:r.off]...)
	out = append(out, check.entry...)
	last := r.off
	// wrapped holds, for every open control frame (the function body
	// first), whether it is a wrapped loop: a branch out of one crosses the
	// wrapper's three labels.
	wrapped := []bool{false}
	depth := func(d uint32) (uint32, error) {
		if int(d) >= len(wrapped) {
			return 0, fmt.Errorf("branch depth %d with %d frames open", d, len(wrapped))
		}
		extra := uint32(0)
		for _, w := range wrapped[len(wrapped)-int(d):] {
			if w {
				extra += wrapDepth
			}
		}
		return d + extra, nil
	}
	for r.off < len(body) && r.err == nil {
		op := r.byte()
		switch {
		case op == 0x03: // loop
			start := r.off - 1
			bt := r.off
			r.blockType()
			if r.err != nil {
				break
			}
			out = append(out, body[last:start]...)
			if isValueBlockType(body[bt]) {
				out = append(out, 0x02)
				out = append(out, body[bt:r.off]...)
				out = append(out, 0x03, 0x40, 0x02, 0x40)
				out = append(out, body[start:r.off]...)
				out = append(out, check.loopHead...)
				wrapped = append(wrapped, true)
			} else {
				// A type index: the loop may take parameters, which the
				// wrapper could not hand back on re-entry.
				out = append(out, body[start:r.off]...)
				out = append(out, check.entry...)
				wrapped = append(wrapped, false)
			}
			last = r.off
		case op == 0x0b: // end
			if len(wrapped) == 0 {
				return nil, fmt.Errorf("end at byte %d closes no block", r.off-1)
			}
			if wrapped[len(wrapped)-1] {
				out = append(out, body[last:r.off-1]...)
				out = append(out, check.loopTail...)
				last = r.off
			}
			wrapped = wrapped[:len(wrapped)-1]
		case op == 0x0c || op == 0x0d: // br, br_if
			at := r.off
			d, err := depth(r.u32())
			if err != nil {
				return nil, err
			}
			out = append(out, body[last:at]...)
			out = appendU32(out, d)
			last = r.off
		case op == 0x0e: // br_table
			out = append(out, body[last:r.off]...)
			k := r.u32()
			out = appendU32(out, k)
			for i := uint32(0); i <= k && r.err == nil; i++ { // k labels and the default
				d, err := depth(r.u32())
				if err != nil {
					return nil, err
				}
				out = appendU32(out, d)
			}
			last = r.off
		case op == 0x02 || op == 0x04: // block, if
			r.blockType()
			wrapped = append(wrapped, false)
		case op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15 ||
			op == 0xd2 || op == 0xd5 || op == 0xd6 || (op >= 0x20 && op <= 0x26) || op == 0x3f || op == 0x40:
			r.u32()
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			r.u32()
			r.u32()
		case op == 0x1c: // select t*
			r.skip(int(r.u32()))
		case op >= 0x28 && op <= 0x3e: // loads, stores
			r.memarg()
		case op == 0x41 || op == 0x42:
			r.leb()
		case op == 0x43:
			r.skip(4)
		case op == 0x44:
			r.skip(8)
		case op == 0xd0: // ref.null heaptype
			r.leb()
		case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0f ||
			op == 0x1a || op == 0x1b || op == 0xd1 || op == 0xd4 || (op >= 0x45 && op <= 0xc4):
		case op == 0xfc:
			switch sub := r.u32(); {
			case sub <= 7:
			case sub == 8, sub == 12, sub == 14, sub == 10:
				r.u32()
				r.u32()
			case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
				r.u32()
			default:
				return nil, fmt.Errorf("opcode 0xfc %d: %w", sub, errUnsupported)
			}
		case op == 0xfd:
			switch sub := r.u32(); {
			case sub <= 11 || sub == 92 || sub == 93:
				r.memarg()
			case sub == 12 || sub == 13:
				r.skip(16)
			case sub >= 21 && sub <= 34:
				r.skip(1)
			case sub >= 84 && sub <= 91:
				r.memarg()
				r.skip(1)
			case sub > 0xff:
				return nil, fmt.Errorf("opcode 0xfd %d: %w", sub, errUnsupported)
			}
		case op == 0xfe:
			if sub := r.u32(); sub == 0x03 {
				r.skip(1)
			} else if sub <= 0x4e {
				r.memarg()
			} else {
				return nil, fmt.Errorf("opcode 0xfe %d: %w", sub, errUnsupported)
			}
		default: // exception handling, GC, and anything newer
			return nil, fmt.Errorf("opcode %#x at byte %d: %w", op, r.off-1, errUnsupported)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(wrapped) != 0 {
		return nil, fmt.Errorf("%d blocks left open", len(wrapped))
	}
	return append(out, body[last:]...), nil
}

// isValueBlockType: an empty block type or one result type, as opposed
// to a type index (s33), which may declare parameters.
func isValueBlockType(b byte) bool {
	switch b {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return true
	}
	return false
}

// reader decodes the LEB128 and bytes of a wasm binary; the first error
// sticks and later reads return zero.
type reader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("truncated")

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) skip(n int) {
	if r.err != nil {
		return
	}
	if n < 0 || r.off+n > len(r.b) {
		r.err = errTruncated
		return
	}
	r.off += n
}

// leb skips a signed or unsigned LEB128 number of up to 10 bytes.
func (r *reader) leb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	if r.err == nil {
		r.err = errors.New("LEB128 too long")
	}
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	if r.err == nil {
		r.err = errors.New("u32 LEB128 too long")
	}
	return 0
}

func (r *reader) blockType() {
	if r.off < len(r.b) && isValueBlockType(r.b[r.off]) {
		r.off++
		return
	}
	r.leb() // s33 type index
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb() // offset (u64 with memory64)
}

func (r *reader) limits() {
	flags := r.byte()
	r.leb()
	if flags&1 != 0 {
		r.leb()
	}
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// appendS32 appends v as a signed LEB128, the encoding of i32.const: the
// unsigned encoding of 8192 reads back as -8192.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
