package positions

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/testutil/natstest"
)

func TestPositionsSurviveServerRestart(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	s, err := Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	key := Key("tail.0", "/var/log/app 1.log")
	if _, ok, err := s.Get(ctx, key); err != nil || ok {
		t.Fatalf("fresh key: ok=%v err=%v", ok, err)
	}
	if err := s.Commit(ctx, key, Position{Offset: 4096, Inode: 77}); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	_, js = srv.Connect(t)
	s, err = Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := s.Get(ctx, key)
	if err != nil || !ok || p.Offset != 4096 || p.Inode != 77 {
		t.Fatalf("after restart: %+v ok=%v err=%v", p, ok, err)
	}
	if err := s.Forget(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(ctx, key); ok {
		t.Fatal("forgotten position still there")
	}
}

func TestKeyIsValidAndDistinct(t *testing.T) {
	a, b := Key("tail.0", "/a/b.log"), Key("tail.0", "/a.b/log")
	if a == b {
		t.Fatalf("keys collide: %s", a)
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=' || c == '.') {
			t.Fatalf("invalid key char %q in %s", c, a)
		}
	}
}
