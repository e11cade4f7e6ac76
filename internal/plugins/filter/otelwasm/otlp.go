package otelwasm

import (
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/floe-io/floe/internal/otelwasm"
)

func consumeName(p *otelwasm.Plugin, sig otelwasm.Signal) string {
	return p.ConsumeExport(sig)
}

// countOTLP counts what Floe counts as records of a metrics or traces
// chunk (data points, spans), checking the guest's result decodes.
func countOTLP(sig otelwasm.Signal, b []byte) (int, error) {
	if sig == otelwasm.Traces {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
		if err != nil {
			return 0, err
		}
		return td.SpanCount(), nil
	}
	md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
	if err != nil {
		return 0, err
	}
	return md.DataPointCount(), nil
}
