package vivo

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

// http_server.http2 on (the default): HTTP/2 without TLS by prior knowledge
// besides HTTP/1.1; off: HTTP/1.1 only.
func TestHTTP2PriorKnowledge(t *testing.T) {
	e := newEnv(t)
	e.publishLogs("app", `{"a":1}`)
	res, err := h2cClient().Get(e.url + "/api/v1/logs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || res.Header.Get("vivo-stream-start-id") != "0" || len(body) == 0 {
		t.Errorf("h2c: %s %v %q", res.Proto, res.Header, body)
	}
	off := newEnv(t, "http_server.http2", "off")
	if _, err := h2cClient().Get(off.url + "/api/v1/logs"); err == nil {
		t.Error("HTTP/2 answered with http_server.http2 off")
	}
	if res := off.get("/api/v1/logs"); res.status != 200 {
		t.Errorf("HTTP/1.1 with http2 off: %d", res.status)
	}
}

// http_server.max_connections bounds concurrent connections: a second
// client waits until the first leaves.
func TestMaxConnections(t *testing.T) {
	e := newEnv(t, "http_server.max_connections", "1")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/logs?follow=1", nil)
	res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		r, err := (&http.Client{Transport: &http.Transport{}}).Get(e.url + "/")
		if err != nil {
			done <- 0
			return
		}
		r.Body.Close()
		done <- r.StatusCode
	}()
	select {
	case <-done:
		t.Fatal("a second connection was served while the limit was taken")
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	res.Body.Close()
	select {
	case code := <-done:
		if code != 200 {
			t.Errorf("second client: %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second client not served after the first left")
	}
}

// A stream not declared (yet) is 503, never "empty, next id 0", which
// would send a client polling with from=<next id> back to id 0.
func TestUndeclaredStreamIsUnavailable(t *testing.T) {
	e := newEnv(t)
	s, err := New(e.js, Config{Exporters: []Exporter{{Name: "other", ID: "nostreams", Props: exporterProps(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Listening()
	res := doGet(t, "http://"+s.Addrs()[0]+"/api/v1/logs")
	if _, _, next := res.ids(); res.status != 503 || next != "" || res.header.Get("Retry-After") != "1" {
		t.Errorf("%d %q next %q", res.status, res.body, next)
	}
}
