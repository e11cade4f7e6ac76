package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugins/output/internal/inputsink"
)

// secureCluster is a kfake cluster that takes only TLS connections (its
// certificate made at test time, also its own CA) and SASL: a PLAIN user
// floe/s3cret and a SCRAM-SHA-256 user scram/p4ss.
func secureCluster(t *testing.T) (c *kfake.Cluster, caFile string, reader func(t *testing.T) []int64) {
	crt, key := inputsink.SelfSigned(t)
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "secure"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "floe", "s3cret"), kfake.Superuser("SCRAM-SHA-256", "scram", "p4ss"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pem, err := os.ReadFile(crt)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	reader = func(t *testing.T) []int64 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("secure"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
			kgo.SASL(plain.Auth{User: "floe", Pass: "s3cret"}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var seqs []int64
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := cl.PollFetches(ctx)
			cancel()
			n := 0
			fs.EachRecord(func(r *kgo.Record) {
				var v struct{ Seq int64 }
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatalf("value %q: %v", r.Value, err)
				}
				seqs = append(seqs, v.Seq)
				n++
			})
			if n == 0 {
				return seqs
			}
		}
	}
	return c, crt, reader
}

// SASL PLAIN and SCRAM-SHA-256 over TLS (sasl_ssl, the CA in tls.ca_file)
// deliver; a wrong password or the wrong CA is a RETRY that stores
// nothing, and the wrong CA's says why.
func TestSASLOverTLS(t *testing.T) {
	c, ca, read := secureCluster(t)
	base := []string{"brokers " + strings.Join(c.ListenAddrs(), ","), "topics secure",
		"rdkafka.security.protocol sasl_ssl", "tls.ca_file " + ca}
	var want []int64
	for i, auth := range [][]string{
		{"rdkafka.sasl.mechanism PLAIN", "rdkafka.sasl.username floe", "rdkafka.sasl.password s3cret"},
		{"rdkafka.sasl.mechanism SCRAM-SHA-256", "rdkafka.sasl.username scram", "rdkafka.sasl.password p4ss"},
	} {
		out := openOut(t, append(append([]string{"timeout 10s"}, base...), auth...)...)
		if err := out.Flush(context.Background(), outputtest.Chunk(int64(i*10), 10)); err != nil {
			t.Fatalf("%v: %v", auth, err)
		}
		want = append(want, seqRangeK(int64(i*10), 10)...)
	}

	bad := openOut(t, append(append([]string{"timeout 1s"}, base...), "rdkafka.sasl.mechanism PLAIN", "rdkafka.sasl.username floe", "rdkafka.sasl.password wrong")...)
	err := bad.Flush(context.Background(), outputtest.Chunk(100, 5))
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("wrong password answered %v, want RETRY", err)
	}
	// kfake drops the connection on bad credentials (36_sasl_authenticate.go
	// answers "invalid sasl" by closing it) where a real broker answers
	// SASL_AUTHENTICATION_FAILED, so the reason cannot be checked here: the
	// RETRY reads "last err: EOF".
	t.Logf("wrong password: %v", err)

	otherCA, _ := inputsink.SelfSigned(t)
	badCA := openOut(t, "brokers "+strings.Join(c.ListenAddrs(), ","), "topics secure", "timeout 1s",
		"rdkafka.security.protocol sasl_ssl", "tls.ca_file "+otherCA,
		"rdkafka.sasl.mechanism PLAIN", "rdkafka.sasl.username floe", "rdkafka.sasl.password s3cret")
	err = badCA.Flush(context.Background(), outputtest.Chunk(200, 5))
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("wrong CA answered %v, want RETRY", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the wrong CA's RETRY does not say why: %v", err)
	}
	t.Logf("wrong CA: %v", err)

	if err := outputtest.Diff(want, read(t)); err != nil {
		t.Fatal(err)
	}
}

func seqRangeK(first int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = first + int64(i)
	}
	return s
}
