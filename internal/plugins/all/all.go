// Package all is the explicit registry of Floe's built-in plugins. There are
// no init() side effects: a build lists what it ships here.
package all

import (
	"github.com/floe-io/floe/internal/goplugin"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/expect"
	"github.com/floe-io/floe/internal/plugins/filter/grep"
	"github.com/floe-io/floe/internal/plugins/filter/kubernetes"
	"github.com/floe-io/floe/internal/plugins/filter/logtometrics"
	luafilter "github.com/floe-io/floe/internal/plugins/filter/lua"
	"github.com/floe-io/floe/internal/plugins/filter/modify"
	multilinefilter "github.com/floe-io/floe/internal/plugins/filter/multiline"
	"github.com/floe-io/floe/internal/plugins/filter/nest"
	otelwasmfilter "github.com/floe-io/floe/internal/plugins/filter/otelwasm"
	parserfilter "github.com/floe-io/floe/internal/plugins/filter/parser"
	"github.com/floe-io/floe/internal/plugins/filter/recordmodifier"
	"github.com/floe-io/floe/internal/plugins/filter/rewritetag"
	"github.com/floe-io/floe/internal/plugins/filter/throttle"
	"github.com/floe-io/floe/internal/plugins/filter/typeconverter"
	"github.com/floe-io/floe/internal/plugins/filter/wasm"
	"github.com/floe-io/floe/internal/plugins/input/dummy"
	execin "github.com/floe-io/floe/internal/plugins/input/exec"
	"github.com/floe-io/floe/internal/plugins/input/execwasi"
	"github.com/floe-io/floe/internal/plugins/input/fluentbitmetrics"
	forwardin "github.com/floe-io/floe/internal/plugins/input/forward"
	httpin "github.com/floe-io/floe/internal/plugins/input/http"
	"github.com/floe-io/floe/internal/plugins/input/opentelemetry"
	otelwasmin "github.com/floe-io/floe/internal/plugins/input/otelwasm"
	"github.com/floe-io/floe/internal/plugins/input/stdin"
	"github.com/floe-io/floe/internal/plugins/input/syslog"
	"github.com/floe-io/floe/internal/plugins/input/tail"
	"github.com/floe-io/floe/internal/plugins/input/tcp"
	"github.com/floe-io/floe/internal/plugins/input/udp"
	"github.com/floe-io/floe/internal/plugins/output/counter"
	"github.com/floe-io/floe/internal/plugins/output/es"
	"github.com/floe-io/floe/internal/plugins/output/file"
	forwardout "github.com/floe-io/floe/internal/plugins/output/forward"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
	"github.com/floe-io/floe/internal/plugins/output/kafka"
	"github.com/floe-io/floe/internal/plugins/output/loki"
	natsout "github.com/floe-io/floe/internal/plugins/output/nats"
	"github.com/floe-io/floe/internal/plugins/output/null"
	otlpout "github.com/floe-io/floe/internal/plugins/output/opentelemetry"
	otelwasmout "github.com/floe-io/floe/internal/plugins/output/otelwasm"
	"github.com/floe-io/floe/internal/plugins/output/prometheus"
	s3out "github.com/floe-io/floe/internal/plugins/output/s3"
	"github.com/floe-io/floe/internal/plugins/output/stdout"
	syslogout "github.com/floe-io/floe/internal/plugins/output/syslog"
	tcpout "github.com/floe-io/floe/internal/plugins/output/tcp"
	"github.com/floe-io/floe/internal/plugins/output/vivo"
)

// Registry returns every built-in plugin.
func Registry() *plugin.Registry {
	return plugin.NewRegistry().MustAdd(
		dummy.Spec(),
		stdin.Spec(),
		tail.Spec(),
		execwasi.Spec(),
		fluentbitmetrics.Spec(),
		forwardin.Spec(),
		httpin.Spec(),
		tcp.Spec(),
		udp.Spec(),
		syslog.Spec(),
		execin.Spec(),
		opentelemetry.Spec(),
		otelwasmin.Spec(),
		grep.Spec(),
		modify.Spec(),
		nest.Spec(),
		multilinefilter.Spec(),
		luafilter.Spec(),
		rewritetag.Spec(),
		expect.Spec(),
		throttle.Spec(),
		typeconverter.Spec(),
		parserfilter.Spec(),
		recordmodifier.Spec(),
		wasm.Spec(),
		otelwasmfilter.Spec(),
		stdout.Spec(),
		otelwasmout.Spec(),
		file.Spec(),
		httpout.Spec(),
		forwardout.Spec(),
		tcpout.Spec(),
		syslogout.Spec(),
		natsout.Spec(),
		kafka.Spec(),
		s3out.Spec(),
		null.Spec(),
		counter.Spec(),
		vivo.Spec(),
		es.Spec(),
		es.OpenSearchSpec(),
		loki.Spec(),
		prometheus.ExporterSpec(),
		prometheus.RemoteWriteSpec(),
		otlpout.Spec(),
		kubernetes.Spec(),
		logtometrics.Spec(),
	).SetExternalLoader(goplugin.Load) // plugins_file, plugins:, -e
}
