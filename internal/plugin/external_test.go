package plugin

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/config"
)

func TestLoadExternalRefusesReservedKeyAndDuplicates(t *testing.T) {
	calls := 0
	r := NewRegistry().MustAdd(&Spec{Kind: KindOutput, Name: "stdout"})
	r.SetExternalLoader(func(_ context.Context, path string) (*Spec, error) {
		calls++
		switch {
		case strings.HasSuffix(path, "bad"):
			return &Spec{Kind: KindOutput, Name: "bad", Keys: []Key{{Name: "endpoint"}, {Name: "Workers"}}}, nil
		case strings.HasSuffix(path, "clash"):
			return &Spec{Kind: KindOutput, Name: "stdout"}, nil
		}
		return &Spec{Kind: KindOutput, Name: "good", Keys: []Key{{Name: "endpoint"}}}, nil
	})
	if _, err := r.LoadExternal(context.Background(), "/p/bad"); err == nil || !strings.Contains(err.Error(), `reserved key "Workers"`) {
		t.Fatalf("reserved key: %v", err)
	}
	if _, err := r.LoadExternal(context.Background(), "/p/clash"); err == nil || !strings.Contains(err.Error(), "already built in") {
		t.Fatalf("clash: %v", err)
	}
	s1, err := r.LoadExternal(context.Background(), "/p/good")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.LoadExternal(context.Background(), "/p/good")
	if err != nil || s1 != s2 || calls != 3 {
		t.Fatalf("reload: %v, same spec %v, loader calls %d", err, s1 == s2, calls)
	}
	if s, ok := r.Lookup(KindOutput, "GOOD"); !ok || s.Path != "/p/good" {
		t.Fatalf("lookup %+v %v", s, ok)
	}
}

func TestPluginPropsDropsCoreKeys(t *testing.T) {
	s := &config.Section{Props: []config.Prop{
		{Key: "name", Value: "x"}, {Key: "match", Value: "*"}, {Key: "Match_Regex", Value: ".*"},
		{Key: "alias", Value: "a"}, {Key: "retry_limit", Value: "3"}, {Key: "workers", Value: "2"},
		{Key: "tls", Value: "on"}, {Key: "tls.verify", Value: "off"}, {Key: "net.keepalive", Value: "on"},
		{Key: "storage.total_limit_size", Value: "5M"}, {Key: "log_level", Value: "debug"},
		{Key: "Endpoint", Value: "http://x"}, {Key: "id", Value: "1"}, {Key: "id", Value: "2"},
	}}
	got := PluginProps(NewProps(&Spec{Kind: KindOutput, AnyKey: true}, s))
	want := [][2]string{{"endpoint", "http://x"}, {"id", "1"}, {"id", "2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAnyKeySpecAcceptsUndeclaredKeys(t *testing.T) {
	r := NewRegistry().MustAdd(&Spec{Kind: KindOutput, Name: "gop", AnyKey: true})
	errs := r.ValidateSection(KindOutput, &config.Section{Props: []config.Prop{
		{Key: "name", Value: "gop"}, {Key: "whatever", Value: "1"}, {Key: "workers", Value: "two"},
	}})
	if len(errs) != 1 || errs[0].Key != "workers" {
		t.Fatalf("errors %v: want only the bad workers value", errs)
	}
}
