package jsx

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/natsembed"
)

// incompressible returns n random bytes: chunks that take their full size in
// the store whatever storage.compression says.
func incompressible(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fillUntilRefused publishes 100 kB chunks on subject, one attempt each,
// until JetStream refuses one and returns the bytes accepted and that error.
func fillUntilRefused(t *testing.T, js jetstream.JetStream, subject string) (int, error) {
	t.Helper()
	data := incompressible(100_000) // so that the store fills at 100 kB a chunk
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := js.PublishMsg(ctx, chunk.ToMsg(subject, &chunk.Chunk{ID: subject + "-" + strconv.Itoa(i), Tag: "t", Type: chunk.Logs, Records: 1, Data: data}))
		cancel()
		if err != nil {
			return i * len(data), err
		}
	}
	t.Fatalf("%s: 20 MB accepted by a 4 MB store", subject)
	return 0, nil
}

// With the inner streams bounded to a quarter of the store each (what
// storage.max_file_store sets up), FLOE_IN and FLOE_FILTERED fill up on their
// own limits without filling the store: there is always room to move a chunk
// on. Only the output streams fill the store, which the server reports as
// storage full, and an output acknowledging frees room again.
func TestFullStoreIsReportedAndInnerHopsCannotFillIt(t *testing.T) {
	const store = 4_000_000
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), MaxFileStore: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	nc, err := nats.Connect("", srv.ConnectOption())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo := Topology{InMaxBytes: store / 4, FilteredMaxBytes: store / 4, Outputs: []OutputStream{{ID: "o"}}}
	if err := EnsureTopology(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(js)

	for _, subject := range []string{InSubject("t"), FilteredSubject("t")} {
		n, err := fillUntilRefused(t, js, subject)
		if !IsStreamFull(err) || IsStorageFull(err) {
			t.Fatalf("%s refused after %d bytes with %v; want its own stream limit, not a full store", subject, n, err)
		}
	}
	n, err := fillUntilRefused(t, js, OutSubject("o", "t"))
	if !IsStorageFull(err) || !IsStreamFull(err) {
		t.Fatalf("output stream refused after %d bytes with %v; want the store full", n, err)
	}
	// The Publisher keeps retrying while the store is full and, when its
	// context ends, still says why.
	full, cancelFull := context.WithTimeout(ctx, 3*time.Second)
	err = p.Publish(full, OutSubject("o", "t"), &chunk.Chunk{ID: "refused", Tag: "t", Type: chunk.Logs, Records: 1, Data: []byte{0x90}})
	cancelFull()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrStreamFull) || !IsStorageFull(err) {
		t.Fatalf("Publish into a full store: %v; want the deadline with the full store as its cause", err)
	}
	if n < store/2-200_000 {
		t.Errorf("the store filled with only %d bytes in the output stream; the inner streams took more than half", n)
	}
	// An output acknowledging (work-queue retention) frees room at once.
	cons, err := js.CreateOrUpdateConsumer(ctx, OutputStreamName("o"), jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := p.Publish(pctx, OutSubject("o", "t"), &chunk.Chunk{ID: "after", Tag: "t", Type: chunk.Logs, Records: 1, Data: []byte{0x90}}); err != nil {
		t.Fatalf("publish after the output freed room: %v", err)
	}
}
