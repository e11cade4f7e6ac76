package deploy

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/floe-io/floe/internal/app"
)

// composeFile is the part of the Compose specification Floe's files use.
// Decoding is strict: a misspelt key fails the test instead of being
// ignored by this test (Compose would reject it).
type composeFile struct {
	Services   map[string]composeService `yaml:"services"`
	Volumes    map[string]any            `yaml:"volumes"`
	Extensions map[string]any            `yaml:",inline"` // x-… anchors
}

type composeService struct {
	Image           string                      `yaml:"image"`
	Command         []string                    `yaml:"command"`
	Hostname        string                      `yaml:"hostname"`
	ContainerName   string                      `yaml:"container_name"`
	Ports           []string                    `yaml:"ports"`
	Restart         string                      `yaml:"restart"`
	StopGracePeriod string                      `yaml:"stop_grace_period"`
	Environment     map[string]string           `yaml:"environment"`
	Volumes         []string                    `yaml:"volumes"`
	DependsOn       map[string]composeDependsOn `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck         `yaml:"healthcheck"`
}

type composeDependsOn struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

func loadCompose(t *testing.T, rel string) *composeFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	for k := range f.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: unknown top-level key %q", rel, k)
		}
	}
	return &f
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_]+):-([^}]*)\}`)

// expand applies Compose's ${VAR:-default} with the defaults.
func expand(s string) string { return composeVar.ReplaceAllString(s, "$2") }

// checkCompose checks a Compose file running Floe: natsServices are the
// --stage=nats services, the others are the four pipeline stages.
func checkCompose(t *testing.T, rel string, natsServices []string) {
	t.Helper()
	f := loadCompose(t, rel)
	dir := filepath.Dir(filepath.Join(repoRoot(t), rel))
	want := append(append([]string(nil), natsServices...), "ingest", "filter", "router", "output")
	var got []string
	for name := range f.Services {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: services %v, want %v", rel, got, want)
	}
	clientPorts := map[string]bool{} // nats service:port
	var dialed [][2]string           // service, nats host:port
	serverNames := map[string]string{}
	for name, s := range f.Services {
		id := rel + ": " + name
		if expand(s.Image) != "floe:dev" || !strings.Contains(s.Image, "FLOE_IMAGE") {
			t.Errorf("%s: image %q, want ${FLOE_IMAGE:-floe:dev}", id, s.Image)
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", id, s.Restart)
		}
		if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test[:3], []string{"CMD", "/floe", "healthcheck"}) {
			t.Errorf("%s: no `floe healthcheck` healthcheck", id)
		}
		if s.ContainerName != "" || len(s.Ports) > 0 {
			t.Errorf("%s: container_name and host ports prevent --scale and parallel projects", id)
		}
		if len(s.Command) == 0 || s.Command[0] != "run" {
			t.Errorf("%s: command %q does not start with run", id, s.Command)
			continue
		}
		flags := map[string]string{}
		for i := 1; i < len(s.Command); i++ {
			a := s.Command[i]
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "--") {
				flags[k] = v
			} else if a == "-c" && i+1 < len(s.Command) {
				flags["-c"] = s.Command[i+1]
				i++
			}
		}
		// The mounted configuration, validated with the service's environment.
		var plan *app.Plan
		if c := flags["-c"]; c != "" {
			host := ""
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				if len(parts) >= 2 && parts[1] == c {
					host = parts[0]
					if len(parts) < 3 || parts[2] != "ro" {
						t.Errorf("%s: mount the configuration read-only (%s)", id, v)
					}
				}
			}
			if host == "" || !strings.HasPrefix(host, ".") {
				t.Errorf("%s: -c %s is not a file of the repository mounted into the container", id, c)
			} else {
				data, err := os.ReadFile(filepath.Join(dir, host))
				if err != nil {
					t.Errorf("%s: %v", id, err)
				} else {
					env := map[string]string{"HOSTNAME": s.Hostname}
					for k, v := range s.Environment {
						env[k] = v
					}
					plan = floePlan(t, filepath.Base(host), data, env)
				}
			}
		}
		if slices.Contains(natsServices, name) {
			if flags["--stage"] != "nats" {
				t.Errorf("%s: --stage=%s, want nats", id, flags["--stage"])
			}
			listen, storage, httpOn := flags["--nats-listen"], flags["--storage-path"], flags["--http-port"] == "2020"
			if plan != nil {
				listen, storage = plan.Service.NATSListen, plan.Service.StoragePath
				httpOn = httpOn || (plan.Service.HTTPServer && plan.Service.HTTPPort == "2020")
			}
			if !strings.HasPrefix(listen, "0.0.0.0:") {
				t.Errorf("%s: NATS listens on %q: the stages cannot reach it", id, listen)
			}
			clientPorts[name+":"+portOf(listen)] = true
			if !httpOn {
				t.Errorf("%s: no HTTP server on 2020 for the healthcheck", id)
			}
			named := false
			for _, v := range s.Volumes {
				src, dst, _ := strings.Cut(v, ":")
				if dst == storage && f.Volumes != nil {
					_, named = f.Volumes[src]
				}
			}
			if storage == "" || !named {
				t.Errorf("%s: JetStream storage %q is not on a named volume", id, storage)
			}
			if len(natsServices) > 1 {
				checkComposeCluster(t, id, s, plan, natsServices)
				if plan != nil {
					if other := serverNames[plan.Service.ServerName]; other != "" {
						t.Errorf("%s: nats.server_name %q is %s's too", id, plan.Service.ServerName, other)
					}
					serverNames[plan.Service.ServerName] = name
				}
			}
			continue
		}
		// A pipeline stage.
		if flags["--stage"] != name {
			t.Errorf("%s: --stage=%s, want %s", id, flags["--stage"], name)
		}
		if flags["-c"] == "" || plan == nil {
			t.Errorf("%s: no valid configuration", id)
		}
		if flags["--http-port"] != "2020" {
			t.Errorf("%s: --http-port=%q, want 2020 (the healthcheck)", id, flags["--http-port"])
		}
		for _, n := range natsServices {
			if s.DependsOn[n].Condition != "service_healthy" {
				t.Errorf("%s: depends_on %s condition %q, want service_healthy", id, n, s.DependsOn[n].Condition)
			}
		}
		urls := flags["--nats-url"]
		if urls == "" {
			t.Errorf("%s: no --nats-url", id)
		}
		for _, raw := range strings.Split(urls, ",") {
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != "nats" {
				t.Errorf("%s: --nats-url %q", id, raw)
				continue
			}
			if !slices.Contains(natsServices, u.Hostname()) {
				t.Errorf("%s: --nats-url host %q is not a NATS service", id, u.Hostname())
			}
			dialed = append(dialed, [2]string{id, u.Host})
		}
		if plan != nil && plan.Service.Replicas > len(natsServices) {
			t.Errorf("%s: storage.replicas %d on %d NATS servers", id, plan.Service.Replicas, len(natsServices))
		}
		if plan != nil && len(natsServices) == 3 && plan.Service.Replicas != 3 {
			t.Errorf("%s: storage.replicas %d on a three-node cluster, want 3", id, plan.Service.Replicas)
		}
	}
	for _, d := range dialed {
		if !clientPorts[d[1]] {
			t.Errorf("%s: --nats-url %s: no NATS service listens there", d[0], d[1])
		}
	}
}

func checkComposeCluster(t *testing.T, id string, s composeService, plan *app.Plan, nodes []string) {
	t.Helper()
	if plan == nil {
		t.Errorf("%s: a cluster node needs its configuration", id)
		return
	}
	svc := plan.Service
	if s.Hostname == "" || svc.ServerName != s.Hostname {
		t.Errorf("%s: nats.server_name %q, hostname %q: every node needs its own name", id, svc.ServerName, s.Hostname)
	}
	port := portOf(svc.ClusterListen)
	var want []string
	for _, n := range nodes {
		want = append(want, "nats-route://"+n+":"+port)
	}
	got := append([]string(nil), svc.Routes...)
	slices.Sort(got)
	if port == "" || !slices.Equal(got, want) {
		t.Errorf("%s: nats.cluster.routes %v, want %v", id, got, want)
	}
}

func TestDockerComposeFile(t *testing.T) {
	checkCompose(t, "docker-compose.yml", []string{"nats"})
}

func TestComposeClusterVariant(t *testing.T) {
	checkCompose(t, "deploy/compose/cluster.yml", []string{"nats-1", "nats-2", "nats-3"})
}

// The Dockerfile has what the Compose files and manifests rely on.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	for _, want := range []string{
		"FROM scratch",
		"USER 65532:65532",
		`VOLUME ["/data"]`,
		`ENTRYPOINT ["/floe"]`,
		"COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("deploy/Dockerfile: no line %q", want)
		}
	}
	hc := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "HEALTHCHECK ") })
	if hc < 0 || !strings.Contains(lines[hc], `CMD ["/floe", "healthcheck"`) {
		t.Error("deploy/Dockerfile: no HEALTHCHECK running floe healthcheck")
	}
}
