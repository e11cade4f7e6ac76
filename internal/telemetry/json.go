package telemetry

import (
	"encoding/json"
	"strconv"
)

// MetricsJSON renders the metrics in Fluent Bit's /api/v1/metrics shape:
//
//	{"input":{"dummy.0":{"records":N,"bytes":N}},
//	 "filter":{"grep.0":{"drop_records":N,"add_records":N,"records":N,"bytes":N,"drop_bytes":N}},
//	 "output":{"stdout.0":{"proc_records":N,"proc_bytes":N,"errors":N,"retries":N,
//	           "retries_failed":N,"dropped_records":N,"retried_records":N}},
//	 "floe":{"stage":{"ingest":{"chunks_in":N,"chunks_out":N,"records_in":N,
//	           "redeliveries":N,"dead_letters":N,"unmatched":N,"unmatched_records":N,"pending":N}},
//	         "filter":{"grep.0":{"errors":N}},
//	         "output":{"stdout.0":{"dead_letters":N}},
//	         "dropped":{"ingest":{"stdin.0":{"not_json":N}},"router":{"router":{"unmatched":N}}},
//	         "wasm":{"wasm.0":{"calls":N,...}},   (only when WASM filters exist)
//	         "net_input":{"http.0":{"connections":N,...}}}}   (only with network inputs)
//
// Instances appear in registration order and keys in Fluent Bit's order.
// "input", "filter", "output" and "floe" are always present (possibly empty
// objects). The Fluent Bit objects carry only Fluent Bit's keys so existing
// tools see exactly what they expect; Floe-only values live under "floe".
func (r *Registry) MetricsJSON() []byte {
	l := r.lists()
	b := make([]byte, 0, 256+128*(len(l.inputs)+len(l.filters)+len(l.outputs)+len(l.stages)))

	b = append(b, `{"input":{`...)
	for i, e := range l.inputs {
		b = objStart(b, i, e.name)
		b = kv(b, "records", e.m.Records.Load(), true)
		b = kv(b, "bytes", e.m.Bytes.Load(), false)
		b = append(b, '}')
	}
	b = append(b, `},"filter":{`...)
	for i, e := range l.filters {
		b = objStart(b, i, e.name)
		b = kv(b, "drop_records", e.m.DropRecords.Load(), true)
		b = kv(b, "add_records", e.m.AddRecords.Load(), false)
		b = kv(b, "records", e.m.Records.Load(), false)
		b = kv(b, "bytes", e.m.Bytes.Load(), false)
		b = kv(b, "drop_bytes", e.m.DropBytes.Load(), false)
		b = append(b, '}')
	}
	b = append(b, `},"output":{`...)
	for i, e := range l.outputs {
		b = objStart(b, i, e.name)
		b = kv(b, "proc_records", e.m.ProcRecords.Load(), true)
		b = kv(b, "proc_bytes", e.m.ProcBytes.Load(), false)
		b = kv(b, "errors", e.m.Errors.Load(), false)
		b = kv(b, "retries", e.m.Retries.Load(), false)
		b = kv(b, "retries_failed", e.m.RetriesFailed.Load(), false)
		b = kv(b, "dropped_records", e.m.DroppedRecords.Load(), false)
		b = kv(b, "retried_records", e.m.RetriedRecords.Load(), false)
		b = append(b, '}')
	}
	b = append(b, `},"floe":{"stage":{`...)
	for i, e := range l.stages {
		b = objStart(b, i, e.name)
		b = kv(b, "chunks_in", e.m.ChunksIn.Load(), true)
		b = kv(b, "chunks_out", e.m.ChunksOut.Load(), false)
		b = kv(b, "records_in", e.m.RecordsIn.Load(), false)
		b = kv(b, "redeliveries", e.m.Redeliveries.Load(), false)
		b = kv(b, "dead_letters", e.m.DeadLetters.Load(), false)
		b = kv(b, "unmatched", e.m.Unmatched.Load(), false)
		b = kv(b, "unmatched_records", e.m.UnmatchedRecords.Load(), false)
		b = kv(b, "duplicates", e.m.Duplicates.Load(), false)
		for _, g := range []struct {
			k string
			v int64
		}{{"pending", e.m.Pending.Load()}, {"paused_inputs", e.m.Paused.Load()}, {"storage_full", e.m.StorageFull.Load()}, {"stream_depth", e.m.Depth.Load()}, {"dlq_depth", e.m.DLQDepth.Load()}} {
			b = append(b, `,"`...)
			b = append(b, g.k...)
			b = append(b, `":`...)
			b = strconv.AppendInt(b, g.v, 10)
		}
		b = append(b, '}')
	}
	b = append(b, `},"filter":{`...)
	for i, e := range l.filters {
		b = objStart(b, i, e.name)
		b = kv(b, "errors", e.m.Errors.Load(), true)
		b = append(b, '}')
	}
	b = append(b, `},"output":{`...)
	for i, e := range l.outputs {
		b = objStart(b, i, e.name)
		b = kv(b, "dead_letters", e.m.DeadLetters.Load(), true)
		b = append(b, '}')
	}
	b = append(b, '}')
	b = appendDropsJSON(b, r.dropList())
	b = appendWasmJSON(b, r.wasmList())
	b = appendGoPluginJSON(b, r.goPluginList())
	b = appendNetInputJSON(b, r.netInputList())
	b = append(b, `}}`...)
	return b
}

// objStart appends `[,]"name":{`.
func objStart(b []byte, i int, name string) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = appendJSONString(b, name)
	return append(b, ':', '{')
}

func kv(b []byte, key string, v uint64, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendJSONString(b []byte, s string) []byte {
	q, err := json.Marshal(s) // never fails for a string; invalid UTF-8 becomes U+FFFD
	if err != nil {
		return append(b, `""`...)
	}
	return append(b, q...)
}
