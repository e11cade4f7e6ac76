package app

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/config"
)

// memory.soft_limit is a size, off (0) unless set; a bad value names the key.
func TestServiceMemorySoftLimitKey(t *testing.T) {
	for _, tc := range []struct {
		props []config.Prop
		want  int64
	}{
		{nil, 0},
		{[]config.Prop{{Key: "memory.soft_limit", Value: "64M"}}, 64_000_000}, // Fluent Bit's sizes: M is 1000*1000
		{[]config.Prop{{Key: "Memory.Soft_Limit", Value: "0"}}, 0},
	} {
		svc, err := ParseService(&config.Section{Type: config.TypeService, Header: "SERVICE", Props: tc.props})
		if err != nil {
			t.Fatalf("ParseService(%v): %v", tc.props, err)
		}
		if svc.MemorySoftLimit != tc.want {
			t.Errorf("ParseService(%v).MemorySoftLimit = %d, want %d", tc.props, svc.MemorySoftLimit, tc.want)
		}
	}
	_, err := ParseService(&config.Section{Type: config.TypeService, Header: "SERVICE",
		Props: []config.Prop{{Key: "memory.soft_limit", Value: "lots"}}})
	if err == nil || !strings.Contains(err.Error(), "memory.soft_limit") {
		t.Errorf("memory.soft_limit lots: error %v, want one naming the key", err)
	}
}
