package app

import (
	"testing"

	"github.com/floe-io/floe/internal/config"
)

// http.pprof is a [SERVICE] key, off unless set.
func TestServicePprofKey(t *testing.T) {
	for _, tc := range []struct {
		props []config.Prop
		want  bool
	}{
		{nil, false},
		{[]config.Prop{{Key: "HTTP.Pprof", Value: "on"}}, true},
		{[]config.Prop{{Key: "http.pprof", Value: "off"}}, false},
	} {
		svc, err := ParseService(&config.Section{Type: config.TypeService, Header: "SERVICE", Props: tc.props})
		if err != nil {
			t.Fatalf("ParseService(%v): %v", tc.props, err)
		}
		if svc.Pprof != tc.want {
			t.Errorf("ParseService(%v).Pprof = %v, want %v", tc.props, svc.Pprof, tc.want)
		}
	}
	if _, err := ParseService(&config.Section{Type: config.TypeService, Header: "SERVICE",
		Props: []config.Prop{{Key: "http.pprof", Value: "maybe"}}}); err == nil {
		t.Error("http.pprof maybe: no error")
	}
}
