package deploy

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/floe-io/floe/internal/app"
)

const k8sDir = "deploy/kubernetes"

// kustomization is the part of kustomize's Kustomization that the manifests
// use; decoding is strict, so a field kustomize does not know (or this test
// does not check yet) fails the test.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Namespace  string           `json:"namespace"`
	Resources  []string         `json:"resources"`
	Images     []kustomizeImage `json:"images"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
}

// k8sObjects are the decoded manifests, by name.
type k8sObjects struct {
	namespaces   map[string]*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]*policyv1.PodDisruptionBudget
}

// workload is what Deployments and StatefulSets have in common.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	template   *corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim
}

func (w workload) String() string { return w.kind + "/" + w.name }

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeStrict decodes a YAML document the way the API server's strict field
// validation does: duplicate keys, unknown fields and fields spelt in another
// case (which encoding/json would accept) are errors.
func decodeStrict(doc []byte, obj any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(data, obj)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		var msgs []string
		for _, e := range strict {
			msgs = append(msgs, e.Error())
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// loadKubernetes reads the kustomization and decodes every document of every
// resource it lists strictly into its typed Kubernetes object: unknown or
// duplicate fields, wrong types and unparsable quantities are errors, as
// `kubectl apply --dry-run=client` would report them.
func loadKubernetes(t *testing.T) (*kustomization, *k8sObjects) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), k8sDir)
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := decodeStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", k.APIVersion, k.Kind)
	}
	objs := &k8sObjects{
		namespaces:   map[string]*corev1.Namespace{},
		configMaps:   map[string]*corev1.ConfigMap{},
		services:     map[string]*corev1.Service{},
		deployments:  map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{},
		hpas:         map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, res := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, res))
		if err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", res, err)
			continue
		}
		for i, doc := range docSeparator.Split(string(data), -1) {
			where := fmt.Sprintf("%s (document %d)", res, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if tm.APIVersion == "" && tm.Kind == "" {
				if strings.TrimSpace(stripComments(doc)) != "" {
					t.Errorf("%s: a document without apiVersion and kind", where)
				}
				continue
			}
			if err := objs.add(tm, []byte(doc)); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	return &k, objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// add decodes one document strictly by its apiVersion and kind.
func (o *k8sObjects) add(tm metav1.TypeMeta, doc []byte) error {
	decode := func(obj any, meta *metav1.ObjectMeta) (string, error) {
		if err := decodeStrict(doc, obj); err != nil {
			return "", fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
		}
		if meta.Name == "" {
			return "", fmt.Errorf("%s without metadata.name", tm.Kind)
		}
		return meta.Name, nil
	}
	var name string
	var err error
	dup := func(exists bool) error {
		if exists {
			return fmt.Errorf("%s %s defined twice", tm.Kind, name)
		}
		return nil
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		var x corev1.Namespace
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.namespaces[name] != nil)
			o.namespaces[name] = &x
		}
	case "v1 ConfigMap":
		var x corev1.ConfigMap
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.configMaps[name] != nil)
			o.configMaps[name] = &x
		}
	case "v1 Service":
		var x corev1.Service
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.services[name] != nil)
			o.services[name] = &x
		}
	case "apps/v1 Deployment":
		var x appsv1.Deployment
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.deployments[name] != nil)
			o.deployments[name] = &x
		}
	case "apps/v1 StatefulSet":
		var x appsv1.StatefulSet
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.statefulSets[name] != nil)
			o.statefulSets[name] = &x
		}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		var x autoscalingv2.HorizontalPodAutoscaler
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.hpas[name] != nil)
			o.hpas[name] = &x
		}
	case "policy/v1 PodDisruptionBudget":
		var x policyv1.PodDisruptionBudget
		if name, err = decode(&x, &x.ObjectMeta); err == nil {
			err = dup(o.pdbs[name] != nil)
			o.pdbs[name] = &x
		}
	default:
		return fmt.Errorf("unexpected apiVersion %q kind %q (add it to this test's decoder)", tm.APIVersion, tm.Kind)
	}
	return err
}

func (o *k8sObjects) workloads() []workload {
	var out []workload
	for _, d := range o.deployments {
		r := int32(1)
		if d.Spec.Replicas != nil {
			r = *d.Spec.Replicas
		}
		out = append(out, workload{kind: "Deployment", name: d.Name, replicas: r, selector: d.Spec.Selector, template: &d.Spec.Template})
	}
	for _, s := range o.statefulSets {
		r := int32(1)
		if s.Spec.Replicas != nil {
			r = *s.Spec.Replicas
		}
		out = append(out, workload{kind: "StatefulSet", name: s.Name, replicas: r, selector: s.Spec.Selector,
			template: &s.Spec.Template, claims: s.Spec.VolumeClaimTemplates})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// objectMeta is one object's kind and metadata.
type objectMeta struct {
	kind       string
	meta       *metav1.ObjectMeta
	namespaced bool
}

// metas lists every object's kind, metadata and whether it is namespaced.
func (o *k8sObjects) metas() []objectMeta {
	var out []objectMeta
	for _, x := range o.namespaces {
		out = append(out, objectMeta{"Namespace", &x.ObjectMeta, false})
	}
	for _, x := range o.configMaps {
		out = append(out, objectMeta{"ConfigMap", &x.ObjectMeta, true})
	}
	for _, x := range o.services {
		out = append(out, objectMeta{"Service", &x.ObjectMeta, true})
	}
	for _, x := range o.deployments {
		out = append(out, objectMeta{"Deployment", &x.ObjectMeta, true})
	}
	for _, x := range o.statefulSets {
		out = append(out, objectMeta{"StatefulSet", &x.ObjectMeta, true})
	}
	for _, x := range o.hpas {
		out = append(out, objectMeta{"HorizontalPodAutoscaler", &x.ObjectMeta, true})
	}
	for _, x := range o.pdbs {
		out = append(out, objectMeta{"PodDisruptionBudget", &x.ObjectMeta, true})
	}
	return out
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	k, _ := loadKubernetes(t)
	dir := filepath.Join(repoRoot(t), k8sDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("kustomization.yaml lists %s twice", r)
		}
		listed[r] = true
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || n == "kustomization.yaml" || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		if !listed[n] {
			t.Errorf("%s/%s is not listed in kustomization.yaml resources", k8sDir, n)
		}
	}
	if k.Namespace == "" {
		t.Error("kustomization.yaml sets no namespace")
	}
	if len(k.Images) == 0 {
		t.Error("kustomization.yaml has no images entry for the floe image")
	}
}

func TestKubernetesManifestsAreValid(t *testing.T) {
	k, objs := loadKubernetes(t)
	if t.Failed() {
		t.FailNow()
	}

	// Names, namespaces, labels.
	for _, m := range objs.metas() {
		id := m.kind + "/" + m.meta.Name
		var errs []string
		switch m.kind {
		case "Namespace":
			errs = validation.IsDNS1123Label(m.meta.Name)
		case "Service":
			errs = validation.IsDNS1035Label(m.meta.Name)
		default:
			errs = validation.IsDNS1123Subdomain(m.meta.Name)
		}
		for _, e := range errs {
			t.Errorf("%s: name: %s", id, e)
		}
		if m.namespaced && m.meta.Namespace != "" && m.meta.Namespace != k.Namespace {
			t.Errorf("%s: namespace %q, kustomization says %q", id, m.meta.Namespace, k.Namespace)
		}
		if !m.namespaced && m.meta.Namespace != "" {
			t.Errorf("%s: a cluster-scoped object with a namespace", id)
		}
		checkLabels(t, id, m.meta.Labels)
	}
	if objs.namespaces[k.Namespace] == nil {
		t.Errorf("no Namespace %q among the manifests", k.Namespace)
	}

	imageNames := map[string]bool{}
	for _, img := range k.Images {
		imageNames[img.Name] = true
	}
	for _, w := range objs.workloads() {
		checkWorkload(t, w, objs, imageNames)
	}
	checkServices(t, objs)
	checkHPAs(t, objs)
	for _, p := range objs.pdbs {
		id := "PodDisruptionBudget/" + p.Name
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("%s: set exactly one of minAvailable and maxUnavailable", id)
		}
		if len(selected(t, id, p.Spec.Selector, objs)) == 0 {
			t.Errorf("%s: its selector matches no workload", id)
		}
	}
}

func checkLabels(t *testing.T, id string, l map[string]string) {
	t.Helper()
	for key, v := range l {
		for _, e := range validation.IsQualifiedName(key) {
			t.Errorf("%s: label key %q: %s", id, key, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s value %q: %s", id, key, v, e)
		}
	}
}

// selected returns the workloads whose pod template a selector matches.
func selected(t *testing.T, id string, sel *metav1.LabelSelector, objs *k8sObjects) []workload {
	t.Helper()
	if sel == nil {
		t.Errorf("%s: no selector", id)
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", id, err)
		return nil
	}
	if s.Empty() {
		t.Errorf("%s: an empty selector selects everything", id)
		return nil
	}
	var out []workload
	for _, w := range objs.workloads() {
		if s.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// checkWorkload checks a Deployment or StatefulSet: selector, containers,
// probes, resources, the restricted Pod Security profile, volumes and the
// Floe configuration its arguments point at.
func checkWorkload(t *testing.T, w workload, objs *k8sObjects, imageNames map[string]bool) {
	t.Helper()
	id := w.String()
	if w.selector == nil {
		t.Errorf("%s: no selector", id)
	} else if s, err := metav1.LabelSelectorAsSelector(w.selector); err != nil {
		t.Errorf("%s: selector: %v", id, err)
	} else if s.Empty() || !s.Matches(labels.Set(w.template.Labels)) {
		t.Errorf("%s: selector %v does not match the pod template labels %v", id, w.selector.MatchLabels, w.template.Labels)
	}
	checkLabels(t, id+" template", w.template.Labels)
	pod := &w.template.Spec
	if len(pod.Containers) == 0 {
		t.Fatalf("%s: no containers", id)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: Floe needs no Kubernetes API token; set automountServiceAccountToken: false", id)
	}

	volumes := map[string]*corev1.Volume{}
	for i := range pod.Volumes {
		v := &pod.Volumes[i]
		if volumes[v.Name] != nil {
			t.Errorf("%s: volume %s twice", id, v.Name)
		}
		volumes[v.Name] = v
		for _, e := range validation.IsDNS1123Label(v.Name) {
			t.Errorf("%s: volume name %q: %s", id, v.Name, e)
		}
		switch {
		case v.ConfigMap != nil:
			cm := objs.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Errorf("%s: volume %s: no ConfigMap %q", id, v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("%s: volume %s: ConfigMap %s has no key %q", id, v.Name, cm.Name, it.Key)
				}
			}
		case v.EmptyDir != nil, v.Secret != nil, v.Projected != nil, v.PersistentVolumeClaim != nil, v.DownwardAPI != nil:
		default:
			t.Errorf("%s: volume %s: a type the restricted Pod Security profile does not allow or this test does not know", id, v.Name)
		}
	}
	claims := map[string]bool{}
	for _, c := range w.claims {
		claims[c.Name] = true
		if _, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			t.Errorf("%s: volumeClaimTemplate %s requests no storage", id, c.Name)
		}
		if len(c.Spec.AccessModes) == 0 {
			t.Errorf("%s: volumeClaimTemplate %s has no accessModes", id, c.Name)
		}
	}

	// Pod Security "restricted", which namespace.yaml enforces.
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, c := range pod.Containers {
		cid := id + " container " + c.Name
		for _, e := range validation.IsDNS1123Label(c.Name) {
			t.Errorf("%s: name: %s", cid, e)
		}
		csc := c.SecurityContext
		if csc == nil {
			t.Errorf("%s: no securityContext", cid)
			csc = &corev1.SecurityContext{}
		}
		nonRoot := csc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", cid)
		}
		user := csc.RunAsUser
		if user == nil {
			user = psc.RunAsUser
		}
		if user == nil || *user != 65532 {
			t.Errorf("%s: runAsUser should be the image's user 65532", cid)
		}
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", cid)
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", cid)
		}
		if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", cid)
		}
		seccomp := csc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
			t.Errorf("%s: seccompProfile must be RuntimeDefault", cid)
		}

		// Image: the one kustomization.yaml's images entry rewrites.
		repo := c.Image
		if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
			repo = repo[:i]
		}
		if !imageNames[repo] {
			t.Errorf("%s: image %q is not covered by kustomization.yaml images %v", cid, c.Image, imageNames)
		}

		// Ports and probes.
		ports := map[string]int32{}
		numbers := map[int32]bool{}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				t.Errorf("%s: port %d out of range", cid, p.ContainerPort)
			}
			if numbers[p.ContainerPort] {
				t.Errorf("%s: port %d twice", cid, p.ContainerPort)
			}
			numbers[p.ContainerPort] = true
			if p.Name != "" {
				for _, e := range validation.IsValidPortName(p.Name) {
					t.Errorf("%s: port name %q: %s", cid, p.Name, e)
				}
				if _, dup := ports[p.Name]; dup {
					t.Errorf("%s: port name %s twice", cid, p.Name)
				}
				ports[p.Name] = p.ContainerPort
			}
		}
		probePort := func(what string, p *corev1.Probe, wantPath string) int32 {
			if p == nil {
				t.Errorf("%s: no %s", cid, what)
				return 0
			}
			if p.HTTPGet == nil {
				t.Errorf("%s: %s is not an httpGet probe", cid, what)
				return 0
			}
			if p.HTTPGet.Path != wantPath {
				t.Errorf("%s: %s path %q, want %q", cid, what, p.HTTPGet.Path, wantPath)
			}
			n := resolvePort(p.HTTPGet.Port, ports, numbers)
			if n == 0 {
				t.Errorf("%s: %s port %s is not a container port", cid, what, p.HTTPGet.Port.String())
			}
			return n
		}
		readyPort := probePort("readinessProbe", c.ReadinessProbe, "/api/v1/ready")
		livePort := probePort("livenessProbe", c.LivenessProbe, "/api/v1/health")

		// Resources.
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[r]
			lim, okLim := c.Resources.Limits[r]
			if !okReq || !okLim {
				t.Errorf("%s: set both requests and limits for %s", cid, r)
				continue
			}
			if req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s above its limit %s", cid, r, req.String(), lim.String())
			}
		}

		// Mounts.
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			if volumes[m.Name] == nil && !claims[m.Name] {
				t.Errorf("%s: volumeMount %s: no such volume or volumeClaimTemplate", cid, m.Name)
			}
			mounts[m.MountPath] = m
		}
		checkFloeArgs(t, w, c, volumes, mounts, objs, readyPort, livePort)
	}
}

func resolvePort(p intstr.IntOrString, names map[string]int32, numbers map[int32]bool) int32 {
	if p.Type == intstr.String {
		return names[p.StrVal]
	}
	if numbers[p.IntVal] {
		return p.IntVal
	}
	return 0
}

// checkFloeArgs checks `floe run --stage=S -c FILE`: the file is a
// ConfigMap key mounted in the container, it validates, and its HTTP server,
// health check, NATS URL and (for --stage=nats) cluster settings fit the
// manifests.
func checkFloeArgs(t *testing.T, w workload, c corev1.Container, volumes map[string]*corev1.Volume,
	mounts map[string]corev1.VolumeMount, objs *k8sObjects, readyPort, livePort int32) {
	t.Helper()
	cid := w.String() + " container " + c.Name
	args := append(append([]string(nil), c.Command...), c.Args...)
	if len(args) == 0 || args[0] != "run" {
		t.Errorf("%s: args %q do not start with run (the image's entrypoint is /floe)", cid, args)
		return
	}
	var stage, cfgPath string
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case strings.HasPrefix(a, "--stage="):
			stage = strings.TrimPrefix(a, "--stage=")
		case (a == "-c" || a == "--config") && i+1 < len(args):
			cfgPath = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			cfgPath = strings.TrimPrefix(a, "--config=")
		}
	}
	if _, err := app.ParseStages([]string{stage}); stage == "" || err != nil {
		t.Errorf("%s: --stage %q: %v", cid, stage, err)
	}
	if cfgPath == "" {
		t.Errorf("%s: no -c FILE", cid)
		return
	}
	// The file must come from a ConfigMap mounted at its directory.
	m, ok := mounts[path.Dir(cfgPath)]
	if !ok || volumes[m.Name] == nil || volumes[m.Name].ConfigMap == nil {
		t.Errorf("%s: -c %s is not in a mounted ConfigMap", cid, cfgPath)
		return
	}
	vol := volumes[m.Name].ConfigMap
	key := path.Base(cfgPath)
	if len(vol.Items) > 0 {
		key = ""
		for _, it := range vol.Items {
			if it.Path == path.Base(cfgPath) {
				key = it.Key
			}
		}
	}
	cm := objs.configMaps[vol.Name]
	if cm == nil {
		return // reported with the volume
	}
	data, ok := cm.Data[key]
	if !ok {
		t.Errorf("%s: -c %s: ConfigMap %s has no such key", cid, cfgPath, cm.Name)
		return
	}
	name := fmt.Sprintf("ConfigMap %s key %s", cm.Name, key)
	env := map[string]string{"HOSTNAME": w.name + "-0"}
	plan := floePlan(t, name, []byte(data), env)
	if plan == nil {
		return
	}
	svc := plan.Service
	if !svc.HTTPServer || svc.HTTPPort != strconv.Itoa(int(readyPort)) || readyPort != livePort {
		t.Errorf("%s: the probes use port %d/%d but %s serves HTTP_Server %v on HTTP_Port %s", cid, readyPort, livePort, name, svc.HTTPServer, svc.HTTPPort)
	}
	if !svc.HealthCheck {
		t.Errorf("%s: the liveness probe uses /api/v1/health, which needs Health_Check On in %s", cid, name)
	}
	if stage == app.StageNATS {
		checkNATSCluster(t, w, c, svc, mounts, objs, name)
		return
	}
	// A pipeline stage: nats.url must name a Service in front of the NATS StatefulSet.
	if svc.NATS.URL == "" {
		t.Errorf("%s: %s sets no nats.url", cid, name)
		return
	}
	for _, raw := range strings.Split(svc.NATS.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			t.Errorf("%s: nats.url %q: %v", name, raw, err)
			continue
		}
		host := strings.Split(u.Hostname(), ".")[0]
		s := objs.services[host]
		if s == nil {
			t.Errorf("%s: nats.url host %q is not a Service of the manifests", name, u.Hostname())
			continue
		}
		found := false
		for _, p := range s.Spec.Ports {
			if strconv.Itoa(int(p.Port)) == u.Port() {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: Service %s has no port %s", name, s.Name, u.Port())
		}
		natsPods := false
		for _, sw := range selected(t, "Service/"+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, objs) {
			for _, sc := range sw.template.Spec.Containers {
				if slices.Contains(sc.Args, "--stage=nats") {
					natsPods = true
					if svc.Replicas > int(sw.replicas) {
						t.Errorf("%s: storage.replicas %d but %s has %d nodes", name, svc.Replicas, sw, sw.replicas)
					}
				}
			}
		}
		if !natsPods {
			t.Errorf("%s: Service %s does not select the NATS pods", name, s.Name)
		}
	}
}

// checkNATSCluster checks the NATS StatefulSet against its configuration:
// client and cluster ports, storage on the volume claim, and routes naming
// every pod through the headless Service.
func checkNATSCluster(t *testing.T, w workload, c corev1.Container, svc *app.Service, mounts map[string]corev1.VolumeMount, objs *k8sObjects, name string) {
	t.Helper()
	id := w.String()
	sts := objs.statefulSets[w.name]
	if sts == nil {
		t.Errorf("%s: run --stage=nats as a StatefulSet (stable names and volumes)", id)
		return
	}
	hs := objs.services[sts.Spec.ServiceName]
	if hs == nil || hs.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("%s: serviceName %q is not a headless Service of the manifests", id, sts.Spec.ServiceName)
		return
	}
	if !hs.Spec.PublishNotReadyAddresses {
		t.Errorf("Service/%s: set publishNotReadyAddresses so that NATS nodes find each other before they are ready", hs.Name)
	}
	portNamed := func(n string) string {
		for _, p := range c.Ports {
			if p.Name == n {
				return strconv.Itoa(int(p.ContainerPort))
			}
		}
		return ""
	}
	if got := portOf(svc.NATSListen); got == "" || got != portNamed("client") {
		t.Errorf("%s: nats.listen %q does not match the container port named client (%s)", name, svc.NATSListen, portNamed("client"))
	}
	if sts.Spec.Replicas != nil && *sts.Spec.Replicas > 1 {
		if svc.ServerName != w.name+"-0" {
			t.Errorf("%s: nats.server_name %q: every node needs its own name, e.g. ${HOSTNAME}", name, svc.ServerName)
		}
		clusterPort := portNamed("cluster")
		if got := portOf(svc.ClusterListen); got == "" || got != clusterPort {
			t.Errorf("%s: nats.cluster.listen %q does not match the container port named cluster (%s)", name, svc.ClusterListen, clusterPort)
		}
		var want []string
		for i := 0; i < int(*sts.Spec.Replicas); i++ {
			want = append(want, fmt.Sprintf("nats-route://%s-%d.%s:%s", sts.Name, i, hs.Name, clusterPort))
		}
		got := append([]string(nil), svc.Routes...)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: nats.cluster.routes %v, want %v", name, got, want)
		}
	}
	m, ok := mounts[svc.StoragePath]
	if !ok || !slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m.Name }) {
		t.Errorf("%s: storage.path %q is not a volumeClaimTemplate mount", name, svc.StoragePath)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("%s: podManagementPolicy should be Parallel: the nodes need each other to elect a JetStream leader", id)
	}
}

// checkServices: each Service selects pods and its target ports exist on them.
func checkServices(t *testing.T, objs *k8sObjects) {
	t.Helper()
	for _, s := range objs.services {
		id := "Service/" + s.Name
		ws := selected(t, id, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, objs)
		if len(ws) == 0 {
			t.Errorf("%s: its selector %v matches no pod template", id, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			for _, w := range ws {
				found := false
				for _, c := range w.template.Spec.Containers {
					names := map[string]int32{}
					numbers := map[int32]bool{}
					for _, cp := range c.Ports {
						names[cp.Name] = cp.ContainerPort
						numbers[cp.ContainerPort] = true
					}
					if resolvePort(target, names, numbers) != 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: port %s targets %s, which %s does not expose", id, p.Name, target.String(), w)
				}
			}
		}
	}
}

// checkHPAs: the target exists, the bounds make sense and every container of
// the target requests the resources the metrics measure in utilization.
func checkHPAs(t *testing.T, objs *k8sObjects) {
	t.Helper()
	if objs.hpas["filter"] == nil || objs.hpas["filter"].Spec.ScaleTargetRef.Name != "filter" {
		t.Error("no HorizontalPodAutoscaler for the filter Deployment")
	}
	for _, h := range objs.hpas {
		id := "HorizontalPodAutoscaler/" + h.Name
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" {
			t.Errorf("%s: scaleTargetRef %s %s, want apps/v1 Deployment", id, ref.APIVersion, ref.Kind)
			continue
		}
		d := objs.deployments[ref.Name]
		if d == nil {
			t.Errorf("%s: no Deployment %q", id, ref.Name)
			continue
		}
		minR := int32(1)
		if h.Spec.MinReplicas != nil {
			minR = *h.Spec.MinReplicas
		}
		if minR < 1 || h.Spec.MaxReplicas < minR {
			t.Errorf("%s: replicas %d..%d", id, minR, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("%s: no metrics", id)
		}
		for _, m := range h.Spec.Metrics {
			if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
				continue
			}
			if m.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
				if m.Resource.Target.AverageUtilization == nil || *m.Resource.Target.AverageUtilization <= 0 {
					t.Errorf("%s: %s utilization without averageUtilization", id, m.Resource.Name)
				}
				for _, c := range d.Spec.Template.Spec.Containers {
					if q, ok := c.Resources.Requests[m.Resource.Name]; !ok || q.Cmp(resource.Quantity{}) <= 0 {
						t.Errorf("%s: %s utilization needs a %s request on container %s of Deployment/%s", id, m.Resource.Name, m.Resource.Name, c.Name, d.Name)
					}
				}
			}
		}
	}
}

// Every stage has its Deployment and NATS its StatefulSet, each running the
// stage its name says.
func TestKubernetesRunsEveryStage(t *testing.T) {
	_, objs := loadKubernetes(t)
	stageOf := func(w workload) string {
		for _, a := range w.template.Spec.Containers[0].Args {
			if s, ok := strings.CutPrefix(a, "--stage="); ok {
				return s
			}
		}
		return ""
	}
	got := map[string]string{}
	for _, w := range objs.workloads() {
		if len(w.template.Spec.Containers) == 0 {
			continue
		}
		got[stageOf(w)] = w.String()
	}
	for stage, want := range map[string]string{
		"nats": "StatefulSet/nats", "ingest": "Deployment/ingest", "filter": "Deployment/filter",
		"router": "Deployment/router", "output": "Deployment/output",
	} {
		if got[stage] != want {
			t.Errorf("--stage=%s runs in %q, want %s", stage, got[stage], want)
		}
	}
}
