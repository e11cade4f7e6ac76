package kubernetes

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// merge_log on records whose "log" is not a JSON object string, as Fluent
// Bit's merge_log_handler and pack_map_content treat them.
func TestMergeLogCases(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	tests := []struct {
		name  string
		lines []string
		body  event.Map
		want  string
	}{
		{"array is not merged", nil, plugintest.KV("log", "[1,2]"), `{"log":"[1,2]"}`},
		{"invalid JSON is kept", []string{"keep_log off"}, plugintest.KV("log", "{oops"), `{"log":"{oops"}`},
		{"two JSON values are not merged", nil, plugintest.KV("log", `{"a":1} {"b":2}`), `{"log":"{\"a\":1} {\"b\":2}"}`},
		{"a map is merged as is", nil, plugintest.KV("log", plugintest.KV("a", "x\n")), `{"log":{"a":"x\n"},"a":"x\n"}`},
		{"a map, keep_log off", []string{"keep_log off"}, plugintest.KV("x", int64(1), "log", plugintest.KV("a", int64(2))), `{"x":1,"a":2}`},
		{"empty object under merge_log_key adds nothing", []string{"merge_log_key k"}, plugintest.KV("log", "{}"), `{"log":"{}"}`},
		{"only the first log key", nil, plugintest.KV("log", `{"a":1}`, "log", `{"b":2}`), `{"log":"{\"a\":1}","log":"{\"b\":2}","a":1}`},
		{"not a string nor a map, keep_log off: dropped as upstream", []string{"keep_log off"}, plugintest.KV("log", int64(5), "y", true), `{"y":true}`},
		{"nested values are not trimmed", nil, plugintest.KV("log", `{"a":{"b":"c\n"},"d":"e\\n"}`), `{"log":"{\"a\":{\"b\":\"c\\n\"},\"d\":\"e\\\\n\"}","a":{"b":"c\n"},"d":"e"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFilter(t, append([]string{"kube_url " + srv.URL, "merge_log on", "labels off"}, tc.lines...)...)
			in := plugintest.Chunk(tc.body)
			in.Tag = docTag
			got := records(t, run(t, f, in), docTag)
			want := strings.TrimSuffix(tc.want, "}") + `,"kubernetes":` + kubeMap(kPod, kNamespace, kPodID, kHost, kPodIP, kContainer, kDockerID, kHash, kImage) + "}"
			if len(got) != 1 || got[0] != want {
				t.Errorf("got %v\nwant [%s]", got, want)
			}
		})
	}
}
