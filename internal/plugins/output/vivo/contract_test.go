package vivo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	vivoout "github.com/floe-io/floe/internal/plugins/output/vivo"
	"github.com/floe-io/floe/internal/testutil/natstest"
	"github.com/floe-io/floe/services/vivo"
)

// vivo_exporter has no Flush of its own: the router publishes each chunk a
// vivo_exporter matches to the exporter's JetStream stream and the vivo
// stage serves that stream over HTTP. The output under contract is that
// path: route (below, the router's publish for a Vivo route: the same
// subject, chunk id and jsx.Publisher) and the Vivo stream API, read as a
// user reads it (GET /api/v1/logs).
const exporterID = "contract"

// route is the router's delivery of one chunk to a Vivo route
// (services/router handle). The router's handler gives up when its work
// context ends and the message is redelivered; the bound here is that
// context, so a JetStream outage is seen as a RETRY.
type route struct{ pub *jsx.Publisher }

func (r route) Flush(ctx context.Context, c *chunk.Chunk) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	oc := *c
	oc.ID = c.ID + ">" + exporterID
	return r.pub.PublishAll(ctx, []jsx.Pending{{Subject: jsx.VivoSubject(exporterID, c.Signal(), c.Tag), Chunk: &oc}})
}

// vivoSink is an embedded JetStream with the exporter's streams, declared as
// the app declares them, and a running vivo stage. Its transient fault is
// JetStream down until Heal starts it again; a Vivo stream never refuses a
// chunk (it discards the oldest beyond stream_queue_size), so there is no
// permanent fault. Restart restarts the NATS server on the same storage.
type vivoSink struct {
	nats  *natstest.Server
	js    jetstream.JetStream
	props *plugin.Props
	url   string
}

func newVivoSink(t *testing.T) *vivoSink {
	s := &vivoSink{nats: natstest.Run(t)}
	_, s.js = s.nats.Connect(t)
	s.props = plugintest.Props(vivoout.Spec(), s.Config()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := jsx.EnsureTopology(ctx, s.js, jsx.Topology{Vivo: []jsx.VivoStream{{ID: exporterID, MaxBytes: s.props.Size("stream_queue_size")}}}); err != nil {
		t.Fatal(err)
	}
	svc, err := vivo.New(s.js, vivo.Config{Exporters: []vivo.Exporter{{Name: "vivo_exporter.0", ID: exporterID, Props: s.props}}, JSON: event.DefaultJSON})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("vivo stage: %v", err)
		}
	})
	select {
	case <-svc.Listening():
	case err := <-done:
		t.Fatalf("vivo stage did not start: %v", err)
	}
	s.url = "http://" + svc.Addrs()[0]
	return s
}

func (s *vivoSink) Config() []string { return []string{"host 127.0.0.1", "port 0"} }

// Seqs reads the whole logs stream through /api/v1/logs: one JSON object
// per chunk, its records as [[ns, metadata], body].
func (s *vivoSink) Seqs(t testing.TB) []int64 {
	resp, err := http.Get(s.url + "/api/v1/logs")
	if err != nil {
		t.Fatalf("GET /api/v1/logs: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/logs: %d %v", resp.StatusCode, err)
	}
	var seqs []int64
	dec := json.NewDecoder(strings.NewReader(string(body)))
	for dec.More() {
		var c struct {
			Tag     string `json:"tag"`
			Records [][2]json.RawMessage
		}
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("/api/v1/logs is not one JSON object per chunk: %v\n%s", err, body)
		}
		if c.Tag != plugintest.Tag {
			t.Errorf("chunk served with the tag %q", c.Tag)
		}
		for _, r := range c.Records {
			var rec struct {
				Seq     *int64 `json:"seq"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(r[1], &rec); err != nil || rec.Seq == nil || rec.Message != "record "+strconv.FormatInt(*rec.Seq, 10) {
				t.Fatalf("record %s is not a contract record: %v", r[1], err)
			}
			var hdr []json.Number
			_ = json.Unmarshal(r[0], &hdr) // the metadata ({}) does not decode as a number; the time does
			if want := json.Number(strconv.FormatInt((1700000000+*rec.Seq)*1e9+123456789, 10)); len(hdr) == 0 || hdr[0] != want {
				t.Errorf("record %d served with the header %s, want the time %s", *rec.Seq, r[0], want)
			}
			seqs = append(seqs, *rec.Seq)
		}
	}
	return seqs
}

func (s *vivoSink) Inject(f outputtest.Fault) bool {
	if f == outputtest.Permanent {
		return false
	}
	s.nats.Shutdown()
	return true
}

func (s *vivoSink) Heal(t testing.TB) { s.nats.Restart() }

func (s *vivoSink) Restart(t testing.TB) { s.nats.Restart() }

func TestContract(t *testing.T) {
	var cur *vivoSink
	spec := vivoout.Spec()
	spec.NewOutput = func(context.Context, plugin.Settings, *plugin.Props) (plugin.Output, error) {
		return route{pub: jsx.NewPublisher(cur.js)}, nil
	}
	outputtest.Run(t, spec, func(t *testing.T) outputtest.Sink {
		cur = newVivoSink(t)
		return cur
	}, outputtest.Options{})
}
