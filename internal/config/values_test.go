package config

import (
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1K", 1000, false}, // decimal, not 1024
		{"1k", 1000, false},
		{"1KB", 1000, false},
		{"1kb", 1000, false},
		{"1M", 1000000, false},
		{"20M", 20000000, false},
		{"1MB", 1000000, false},
		{"1G", 1000000000, false},
		{"1gB", 1000000000, false},
		{"1.5K", 1500, false},
		{"0.5M", 500000, false},
		{"100", 100, false},
		{"1.9", 1, false}, // truncated
		{"-1", -1, false},
		{"1e3", 1000, false}, // atof reads exponents
		{"0x10", 16, false},  // and hex
		{" 5K", 5000, false}, // atof skips leading space
		{"false", 0, false},
		{"FALSE", 0, false},
		{"K", 0, false}, // index 0 is never a suffix: atof("K") = 0
		{"", 0, true},
		{"1X", 0, true},
		{"1KX", 0, true},  // two letters must end in B
		{"1KiB", 0, true}, // three letters
		{"1 K", 0, true},  // " K" is a two-char suffix not ending in B
		{"1K ", 0, true},
		{"5B", 0, true},
		{"abc", 0, true},
		{"10000000000G", 0, true}, // over the overflow guard
		{"9223372036854775808", 0, true},
		{"true", 0, true},
		{"0x1.8K", 1500, false}, // hex fraction read by atof
		{"0x1p4", 16, false},
		{"-0x10", -16, false},
		{".5K", 500, false},
		{"+2K", 2000, false},
		{"1.e1", 10, false},
		{"1e", 0, true},   // 'e' is the suffix
		{"0x", 0, true},   // 'x' is the suffix
		{"inf5", 0, true}, // atof gives +Inf
		{"1e400", 0, true},
		{"nan1", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSize(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"true", true, false}, {"On", true, false}, {"YES", true, false},
		{"false", false, false}, {"off", false, false}, {"No", false, false},
		{"1", false, true}, {"0", false, true}, {"", false, true}, {" on", false, true}, {"y", false, true},
	}
	for _, tt := range tests {
		got, err := ParseBool(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"5", 5, false},
		{"0.5", 0.5, false},
		{".25", 0.25, false},
		{"10s", 10, false},
		{"1m", 60, false},
		{"1.5M", 90, false},
		{"2h", 7200, false},
		{"1d", 86400, false},
		{"1D", 86400, false},
		{"1e2", 100, false},
		{" 3 ", 3, false},
		{"", 0, true},
		{"abc", 0, true},
		{"5x", 0, true},
		{"m", 0, true},
		{"1.2.3", 0, true},
		{"inf", 0, true},
		{"0x10", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSeconds(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSeconds(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSeconds(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"X": "1", "EMPTY": "", "REF": "${X}", "BOTH": "from-config"}
	env := envOf(map[string]string{"HOME": "/home/u", "ENVEMPTY": "", "BOTH": "from-env"})
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"${X}", "1"},
		{"a-${X}-b", "a-1-b"},
		{"${X}${X}", "11"},
		{"${HOME}/x", "/home/u/x"},
		{"${BOTH}", "from-config"}, // config variables win
		{"${UNSET}", ""},
		{"x${UNSET}y", "xy"},
		{"${UNSET:-dflt}", "dflt"},
		{"${X:-dflt}", "1"},
		{"${EMPTY:-d}", "d"},    // empty config variable → default
		{"${ENVEMPTY:-d}", "d"}, // empty env counts as unset
		{"${ENVEMPTY}", ""},
		{"${UNSET:-}", ""},
		{"${REF}", "${X}"}, // not expanded twice
		{"${X", "${X"},     // unterminated: literal
		{"${}", "${}"},
		{"${}${X}", "${}1"},
		{"$X", "$X"},
		{"}${X}", "}1"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, vars, env); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Expand("${X}", nil, nil); got != "" {
		t.Errorf("Expand with nil vars/env = %q, want empty", got)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.conf", Line: 3, Key: "tag", Msg: "bad"}, "a.conf:3: key tag: bad"},
		{Error{File: "a.conf", Line: 3, Msg: "bad"}, "a.conf:3: bad"},
		{Error{File: "a.conf", Msg: "bad"}, "a.conf: bad"},
		{Error{File: "a.conf", Key: "k", Msg: "bad"}, "a.conf: key k: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	l := ErrorList{{File: "a", Line: 1, Msg: "x"}, {File: "b", Line: 2, Msg: "y"}}
	if got := l.Error(); got != "a:1: x\nb:2: y" {
		t.Errorf("ErrorList.Error() = %q", got)
	}
	if ErrorList(nil).Err() != nil {
		t.Error("empty ErrorList.Err() must be nil")
	}
	if l.Err() == nil {
		t.Error("non-empty ErrorList.Err() must not be nil")
	}
}
