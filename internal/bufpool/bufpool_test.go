package bufpool

import "testing"

func TestPoolKeepsAtMostItsCapacityAndOnlyLargeEnoughBuffers(t *testing.T) {
	p := New(2)
	if _, ok := p.Get(1); ok {
		t.Fatal("an empty pool handed out a buffer")
	}
	a, b, c := make([]byte, 10, 100), make([]byte, 0, 200), make([]byte, 0, 300)
	p.Put(a)
	p.Put(b)
	p.Put(c) // full: dropped
	p.Put(nil)
	got, ok := p.Get(50)
	if !ok || len(got) != 0 || &got[:1][0] != &a[:1][0] {
		t.Fatalf("Get(50) = len %d cap %d %v, want a's buffer emptied", len(got), cap(got), ok)
	}
	if _, ok := p.Get(250); ok {
		t.Fatal("Get(250) handed out the 200-byte buffer")
	}
	if _, ok := p.Get(1); ok {
		t.Fatal("the third buffer was kept in a pool of two, or the small one was not dropped")
	}
}
