// out_gstdout is fluent-bit-go's classic example output, unchanged: Floe runs
// it exactly as Fluent Bit does. Build: go build -buildmode=c-shared -o out_gstdout.so .
package main

import (
	"C"
	"fmt"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

type config struct{ prefix string }

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "gstdout", "Stdout GO!")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	// One context per [OUTPUT] section: several instances of one .so.
	output.FLBPluginSetContext(plugin, &config{prefix: output.FLBPluginConfigKey(plugin, "prefix")})
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	cfg := output.FLBPluginGetContext(ctx).(*config)
	dec := output.NewDecoder(data, int(length))
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		var t time.Time
		switch v := ts.(type) {
		case output.FLBTime:
			t = v.Time
		case uint64:
			t = time.Unix(int64(v), 0)
		}
		fields := map[string]string{}
		for k, v := range record {
			if b, ok := v.([]byte); ok {
				fields[fmt.Sprint(k)] = string(b) // fluent-bit-go gives strings as []byte
			} else {
				fields[fmt.Sprint(k)] = fmt.Sprint(v)
			}
		}
		fmt.Printf("%s[%s] %s %v\n", cfg.prefix, C.GoString(tag), t.UTC().Format(time.RFC3339Nano), fields)
	}
	return output.FLB_OK
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) int { return output.FLB_OK }

func main() {}
