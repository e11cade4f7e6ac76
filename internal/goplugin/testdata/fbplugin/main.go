// Command fbplugin is a fluent-bit-go output plugin for Floe's tests, built
// with `go build -buildmode=c-shared -o out_floetest.so .`. Each instance
// appends one JSON line per record to the file named by its `Out` property,
// tagged with its `Id`; `Retries N` answers FLB_RETRY to the first N
// attempts of every chunk, `Mode error` answers FLB_ERROR, `Delay_ms` slows
// each flush down, and `Read_Key K` asks for key K in FLBPluginInit.
package main

import (
	"C"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

type instance struct {
	id      string
	out     string
	retries int
	mode    string
	delay   time.Duration

	mu       sync.Mutex
	attempts map[[32]byte]int
}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "floetest", "Floe test output")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	in := &instance{
		id:       output.FLBPluginConfigKey(plugin, "id"),
		out:      output.FLBPluginConfigKey(plugin, "out"),
		mode:     output.FLBPluginConfigKey(plugin, "mode"),
		attempts: map[[32]byte]int{},
	}
	in.retries, _ = strconv.Atoi(output.FLBPluginConfigKey(plugin, "retries"))
	ms, _ := strconv.Atoi(output.FLBPluginConfigKey(plugin, "delay_ms"))
	in.delay = time.Duration(ms) * time.Millisecond
	if k := output.FLBPluginConfigKey(plugin, "read_key"); k != "" {
		_ = output.FLBPluginConfigKey(plugin, k)
	}
	if in.out == "" {
		fmt.Fprintln(os.Stderr, "floetest: no Out property")
		return output.FLB_ERROR
	}
	// What this instance was given, so the test can check each saw its own.
	props := map[string]string{}
	for _, k := range []string{"id", "out", "color", "name"} {
		props[k] = output.FLBPluginConfigKey(plugin, k)
	}
	line, _ := json.Marshal(map[string]any{"init": in.id, "props": props})
	if err := appendLines(in.out, append(line, '\n')); err != nil {
		fmt.Fprintln(os.Stderr, "floetest:", err)
		return output.FLB_ERROR
	}
	output.FLBPluginSetContext(plugin, in)
	return output.FLB_OK
}

//export FLBPluginFlush
func FLBPluginFlush(data unsafe.Pointer, length C.int, tag *C.char) int {
	fmt.Fprintln(os.Stderr, "floetest: FLBPluginFlush called although FLBPluginFlushCtx exists")
	return output.FLB_ERROR
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	in, ok := output.FLBPluginGetContext(ctx).(*instance)
	if !ok {
		fmt.Fprintln(os.Stderr, "floetest: flush without a context")
		return output.FLB_ERROR
	}
	raw := C.GoBytes(data, length)
	if in.delay > 0 {
		time.Sleep(in.delay)
	}
	switch in.mode {
	case "error":
		return output.FLB_ERROR
	}
	if in.retries > 0 {
		key := sha256.Sum256(append([]byte(C.GoString(tag)+"\x00"), raw...))
		in.mu.Lock()
		in.attempts[key]++
		n := in.attempts[key]
		in.mu.Unlock()
		if n <= in.retries {
			return output.FLB_RETRY
		}
	}
	dec := output.NewDecoder(data, int(length))
	var lines []byte
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		var sec, nsec int64
		switch t := ts.(type) {
		case output.FLBTime:
			sec, nsec = t.Unix(), int64(t.Nanosecond())
		case uint64:
			sec = int64(t)
		}
		rec := map[string]any{}
		for k, v := range record {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			rec[fmt.Sprint(k)] = v
		}
		line, _ := json.Marshal(map[string]any{"id": in.id, "tag": C.GoString(tag), "sec": sec, "nsec": nsec, "record": rec})
		lines = append(append(lines, line...), '\n')
	}
	if err := appendLines(in.out, lines); err != nil {
		fmt.Fprintln(os.Stderr, "floetest:", err)
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) int {
	if in, ok := output.FLBPluginGetContext(ctx).(*instance); ok {
		line, _ := json.Marshal(map[string]any{"exit": in.id})
		_ = appendLines(in.out, append(line, '\n'))
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int { return output.FLB_OK }

// appendLines writes in one call so a killed process leaves whole lines.
func appendLines(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

func main() {}
