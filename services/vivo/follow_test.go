package vivo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stream opens a following request and delivers its lines.
type stream struct {
	res   *http.Response
	lines chan string
}

func (e *env) open(t *testing.T, path string, hdr ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{res: res, lines: make(chan string, 1000)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { res.Body.Close() })
	return s
}

func (s *stream) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatal("stream ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
	return ""
}

// nextData skips SSE framing lines other than id and data.
func (s *stream) nextEvent(t *testing.T) (id string, data []string) {
	t.Helper()
	for {
		l := s.next(t)
		switch {
		case strings.HasPrefix(l, "id: "):
			id = l[4:]
		case strings.HasPrefix(l, "data: "):
			data = append(data, l[6:])
		case l == "" && id != "":
			return id, data
		}
	}
}

func (s *stream) ended(t *testing.T) {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if ok {
			t.Fatalf("unexpected line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end")
	}
}

func TestFollowNDJSON(t *testing.T) {
	e := newEnv(t)
	e.publishLogs("app", `{"n":0}`)
	s := e.open(t, "/api/v1/logs?follow=1")
	if s.res.StatusCode != 200 || s.res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", s.res.StatusCode, s.res.Header)
	}
	if l := s.next(t); !strings.Contains(l, `"n":0`) {
		t.Fatalf("existing chunk first: %s", l)
	}
	for i := 1; i <= 3; i++ {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
		if l := s.next(t); !strings.Contains(l, fmt.Sprintf(`"n":%d`, i)) {
			t.Fatalf("chunk %d: %s", i, l)
		}
	}
	// from the next id: only new chunks; limit ends the response.
	s2 := e.open(t, "/logs?follow=1&from=4&limit=2")
	e.publishLogs("other", `{"n":4}`, `{"n":4.5}`)
	e.publishLogs("app", `{"n":5}`)
	e.publishLogs("app", `{"n":6}`)
	for _, want := range []string{`"_tag":"other"}],{"n":4}]`, `{"n":4.5}]`, `{"n":5}]`} {
		if l := s2.next(t); !strings.HasSuffix(l, want) {
			t.Errorf("got %s want …%s", l, want)
		}
	}
	s2.ended(t)
	// to ends it too; tag filters.
	s3 := e.open(t, "/api/v1/logs?follow=1&from=5&to=8&tag=app")
	for i := 7; i <= 9; i++ {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
	}
	for _, want := range []string{`"n":5`, `"n":6`, `"n":7`, `"n":8`} {
		if l := s3.next(t); !strings.Contains(l, want) {
			t.Errorf("got %s want %s", l, want)
		}
	}
	s3.ended(t)
	// The documented API: a to id still to come ends a follower there.
	s4 := e.open(t, "/logs?follow=1&from=10&to=11")
	for i := 10; i <= 12; i++ {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
	}
	for _, want := range []string{`{"n":10}]`, `{"n":11}]`} {
		if l := s4.next(t); !strings.HasSuffix(l, want) {
			t.Errorf("got %s want …%s", l, want)
		}
	}
	s4.ended(t)
}

func TestFollowServerSentEvents(t *testing.T) {
	e := newEnv(t)
	e.publishLogs("app", `{"n":0}`)
	e.publishLogs("app", `{"n":1}`, `{"n":1.5}`)
	s := e.open(t, "/logs", "Accept", "text/event-stream")
	if ct := s.res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	id, data := s.nextEvent(t)
	if id != "0" || len(data) != 1 {
		t.Fatalf("event %s %q", id, data)
	}
	id, data = s.nextEvent(t)
	if id != "1" || len(data) != 2 || !strings.HasSuffix(data[1], `{"n":1.5}]`) {
		t.Fatalf("event %s %q", id, data)
	}
	e.publishLogs("app", `{"n":2}`)
	if id, _ := s.nextEvent(t); id != "2" {
		t.Fatalf("live event id %s", id)
	}
	// A reconnecting EventSource resumes after Last-Event-ID.
	r := e.open(t, "/api/v1/logs?follow=1", "Accept", "text/event-stream", "Last-Event-ID", "1")
	id, data = r.nextEvent(t)
	if id != "2" || !strings.Contains(data[0], `"n":2`) {
		t.Fatalf("resume: %s %q", id, data)
	}
}

// Stopping the stage ends followers instead of waiting for them.
func TestShutdownEndsFollowers(t *testing.T) {
	e := newEnv(t)
	s := e.open(t, "/api/v1/logs?follow=1", "Accept", "text/event-stream")
	e.publishLogs("app", `{"n":0}`)
	s.nextEvent(t)
	start := time.Now()
	e.stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %s", d)
	}
	done := make(chan struct{})
	go func() {
		for range s.lines {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("follower not ended")
	}
}

// A follower with empty_stream_on_read consumes what it is sent.
func TestFollowEmptiesOnRead(t *testing.T) {
	e := newEnv(t, "empty_stream_on_read", "on")
	s := e.open(t, "/api/v1/logs?follow=1")
	e.publishLogs("app", `{"n":0}`)
	s.next(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// HEAD reads without consuming.
		req, _ := http.NewRequest(http.MethodHead, e.url+"/api/v1/logs", nil)
		hr, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, hr.Body)
		hr.Body.Close()
		if hr.Header.Get("vivo-stream-start-id") == "" && hr.Header.Get("vivo-stream-next-id") == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not emptied: %v", hr.Header)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
