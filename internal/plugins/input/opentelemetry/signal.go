package opentelemetry

import (
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// signalPart is one metrics or traces chunk: an OTLP Export*ServiceRequest
// in protobuf and its record count (data points or spans).
type signalPart struct {
	data    []byte
	records int
}

// metricParts encodes a metrics request as chunks of at most maxSignal
// bytes. A protobuf body that fits is passed on as received (it decoded, so
// it is valid); a JSON body is re-encoded as protobuf.
func metricParts(req pmetricotlp.ExportRequest, body []byte, isJSON bool) []signalPart {
	md := req.Metrics()
	if !isJSON && len(body) <= maxSignal {
		return []signalPart{{body, md.DataPointCount()}}
	}
	var parts []signalPart
	splitMetrics(md, func(m pmetric.Metrics) {
		data, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(m)
		parts = append(parts, signalPart{data, m.DataPointCount()})
	})
	return parts
}

// splitMetrics hands out pieces of md that encode to at most maxSignal bytes
// where it can: by resource, then scope, then halves of a scope's metrics. A
// single metric larger than that is handed out alone (and refused later).
func splitMetrics(md pmetric.Metrics, emit func(pmetric.Metrics)) {
	if (&pmetric.ProtoMarshaler{}).MetricsSize(md) <= maxSignal {
		emit(md)
		return
	}
	rms := md.ResourceMetrics()
	if rms.Len() > 1 {
		for i := 0; i < rms.Len(); i++ {
			one := pmetric.NewMetrics()
			rms.At(i).CopyTo(one.ResourceMetrics().AppendEmpty())
			splitMetrics(one, emit)
		}
		return
	}
	if rms.Len() == 0 {
		return
	}
	rm := rms.At(0)
	sms := rm.ScopeMetrics()
	if sms.Len() > 1 {
		for i := 0; i < sms.Len(); i++ {
			one := pmetric.NewMetrics()
			orm := one.ResourceMetrics().AppendEmpty()
			rm.Resource().CopyTo(orm.Resource())
			orm.SetSchemaUrl(rm.SchemaUrl())
			sms.At(i).CopyTo(orm.ScopeMetrics().AppendEmpty())
			splitMetrics(one, emit)
		}
		return
	}
	if sms.Len() == 0 || sms.At(0).Metrics().Len() < 2 {
		emit(md)
		return
	}
	sm := sms.At(0)
	n := sm.Metrics().Len()
	for _, half := range [][2]int{{0, n / 2}, {n / 2, n}} {
		one := pmetric.NewMetrics()
		orm := one.ResourceMetrics().AppendEmpty()
		rm.Resource().CopyTo(orm.Resource())
		orm.SetSchemaUrl(rm.SchemaUrl())
		osm := orm.ScopeMetrics().AppendEmpty()
		sm.Scope().CopyTo(osm.Scope())
		osm.SetSchemaUrl(sm.SchemaUrl())
		for i := half[0]; i < half[1]; i++ {
			sm.Metrics().At(i).CopyTo(osm.Metrics().AppendEmpty())
		}
		splitMetrics(one, emit)
	}
}

// traceParts is metricParts for traces.
func traceParts(req ptraceotlp.ExportRequest, body []byte, isJSON bool) []signalPart {
	td := req.Traces()
	if !isJSON && len(body) <= maxSignal {
		return []signalPart{{body, td.SpanCount()}}
	}
	var parts []signalPart
	splitTraces(td, func(t ptrace.Traces) {
		data, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(t)
		parts = append(parts, signalPart{data, t.SpanCount()})
	})
	return parts
}

func splitTraces(td ptrace.Traces, emit func(ptrace.Traces)) {
	if (&ptrace.ProtoMarshaler{}).TracesSize(td) <= maxSignal {
		emit(td)
		return
	}
	rss := td.ResourceSpans()
	if rss.Len() > 1 {
		for i := 0; i < rss.Len(); i++ {
			one := ptrace.NewTraces()
			rss.At(i).CopyTo(one.ResourceSpans().AppendEmpty())
			splitTraces(one, emit)
		}
		return
	}
	if rss.Len() == 0 {
		return
	}
	rs := rss.At(0)
	sss := rs.ScopeSpans()
	if sss.Len() > 1 {
		for i := 0; i < sss.Len(); i++ {
			one := ptrace.NewTraces()
			ors := one.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(ors.Resource())
			ors.SetSchemaUrl(rs.SchemaUrl())
			sss.At(i).CopyTo(ors.ScopeSpans().AppendEmpty())
			splitTraces(one, emit)
		}
		return
	}
	if sss.Len() == 0 || sss.At(0).Spans().Len() < 2 {
		emit(td)
		return
	}
	ss := sss.At(0)
	n := ss.Spans().Len()
	for _, half := range [][2]int{{0, n / 2}, {n / 2, n}} {
		one := ptrace.NewTraces()
		ors := one.ResourceSpans().AppendEmpty()
		rs.Resource().CopyTo(ors.Resource())
		ors.SetSchemaUrl(rs.SchemaUrl())
		oss := ors.ScopeSpans().AppendEmpty()
		ss.Scope().CopyTo(oss.Scope())
		oss.SetSchemaUrl(ss.SchemaUrl())
		for i := half[0]; i < half[1]; i++ {
			ss.Spans().At(i).CopyTo(oss.Spans().AppendEmpty())
		}
		splitTraces(one, emit)
	}
}
