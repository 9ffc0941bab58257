// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mitmexec/mitmexec/internal/k8s"
)

// ---- Kubernetes ----

type mount struct {
	HostPath, MountPath string
	ReadOnly            bool
}

// podMounts pairs the container's volume mounts with the pod's volumes:
// host path (or "configMap:NAME") -> mount.
func podMounts(volumes, mounts []any) map[string]mount {
	byName := map[string]string{}
	for _, v := range volumes {
		switch {
		case dig(v, "hostPath") != nil:
			byName[str(dig(v, "name"))] = str(dig(v, "hostPath", "path"))
		case dig(v, "configMap") != nil:
			byName[str(dig(v, "name"))] = "configMap:" + str(dig(v, "configMap", "name"))
		}
	}
	out := map[string]mount{}
	for _, m := range mounts {
		src, ok := byName[str(dig(m, "name"))]
		if !ok {
			continue
		}
		out[src] = mount{HostPath: src, MountPath: str(dig(m, "mountPath")), ReadOnly: dig(m, "readOnly") == true}
	}
	return out
}

// checkHostMounts checks the host paths the receiver needs.
func checkHostMounts(t *testing.T, where string, mounts map[string]mount) {
	t.Helper()
	for _, p := range hostDirs {
		m, ok := mounts[p]
		switch {
		case !ok:
			t.Errorf("%s: host path %s is not mounted", where, p)
		case p == "/proc" && m.MountPath != hostProcMount:
			t.Errorf("%s: the host's /proc is mounted at %s, want %s", where, m.MountPath, hostProcMount)
		case p == "/proc" && !m.ReadOnly:
			t.Errorf("%s: the host's /proc is writable", where)
		}
	}
	for _, p := range hostFiles {
		if m, ok := mounts[p]; !ok || m.MountPath != p || !m.ReadOnly {
			t.Errorf("%s: the host's %s must be mounted read-only at %s (got %+v)", where, p, p, m)
		}
	}
}

// healthPort is the port of the config's health_check endpoint.
func healthPort(cfg map[string]any) string {
	ep := str(dig(cfg, "extensions", "health_check", "endpoint"))
	return ep[strings.LastIndexByte(ep, ':')+1:]
}

// storageDir is where the config's file_storage writes, with env applied.
func storageDir(cfg map[string]any, env map[string]string) string {
	dir := str(dig(cfg, "extensions", "file_storage", "directory"))
	m := regexp.MustCompile(`^\$\{env:([A-Za-z_0-9]+)(?::-(.*))?\}$`).FindStringSubmatch(dir)
	if m == nil {
		return dir
	}
	if v, ok := env[m[1]]; ok {
		return v
	}
	return m[2]
}

// checkSearchPaths checks that the receiver reads the host's binaries
// through the mounted host /proc.
func checkSearchPaths(t *testing.T, where string, cfg map[string]any) {
	t.Helper()
	paths := list(dig(cfg, "receivers", "mitmexec", "search_paths"))
	if len(paths) == 0 {
		t.Errorf("%s: the receiver's search_paths are the image's, not the host's", where)
	}
	for _, p := range paths {
		if !strings.HasPrefix(str(p), hostProcMount+"/1/root/") {
			t.Errorf("%s: search path %v is not under %s/1/root", where, p, hostProcMount)
		}
	}
}

func containerEnv(c any) map[string]string {
	env := map[string]string{}
	for _, e := range list(dig(c, "env")) {
		env[str(dig(e, "name"))] = str(dig(e, "value"))
	}
	return env
}

func TestDaemonSet(t *testing.T) {
	var ds map[string]any
	for _, doc := range readYAMLDocs(t, daemonSetFile) {
		if doc["kind"] == "DaemonSet" {
			ds = doc
		}
	}
	if ds == nil {
		t.Fatalf("%s has no DaemonSet", daemonSetFile)
	}
	spec := dig(ds, "spec", "template", "spec")
	if dig(spec, "hostPID") != true {
		t.Error("hostPID is not true: the receiver reads /proc/<host pid>")
	}
	if dig(spec, "hostNetwork") == true && dig(spec, "dnsPolicy") != "ClusterFirstWithHostNet" {
		t.Error("hostNetwork without dnsPolicy ClusterFirstWithHostNet cannot resolve the gateway's Service")
	}
	if !slices.ContainsFunc(list(dig(spec, "tolerations")), func(v any) bool {
		return dig(v, "operator") == "Exists" && dig(v, "key") == nil
	}) {
		t.Error("no toleration for every taint")
	}
	containers := list(dig(spec, "containers"))
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	checkPrivileges(t, "DaemonSet", dig(c, "securityContext"))
	if dig(c, "resources", "limits", "memory") == nil || dig(c, "resources", "limits", "cpu") == nil {
		t.Error("no memory and cpu limits")
	}
	if !slices.ContainsFunc(list(dig(c, "env")), func(e any) bool {
		return dig(e, "name") == "K8S_NODE_NAME" && dig(e, "valueFrom", "fieldRef", "fieldPath") == "spec.nodeName"
	}) {
		t.Error("no K8S_NODE_NAME from spec.nodeName")
	}
	mounts := podMounts(list(dig(spec, "volumes")), list(dig(c, "volumeMounts")))
	checkHostMounts(t, "DaemonSet", mounts)
	checkCRISocket(t, "DaemonSet", mounts)

	// --config=<dir>/<file> must be a key of the ConfigMap mounted at <dir>.
	var config string
	for _, a := range list(dig(c, "args")) {
		if s, ok := strings.CutPrefix(str(a), "--config="); ok {
			config = s
		}
	}
	if config == "" {
		t.Fatal("no --config argument")
	}
	dir, file := path.Split(config)
	var cmName, key string
	for src, m := range mounts {
		if name, ok := strings.CutPrefix(src, "configMap:"); ok && path.Clean(m.MountPath) == path.Clean(dir) {
			cmName, key = name, file
		}
	}
	if cmName == "" {
		t.Fatalf("no ConfigMap mounted at %s for --config=%s", dir, config)
	}
	for _, v := range list(dig(spec, "volumes")) {
		if dig(v, "configMap", "name") == cmName {
			if items := list(dig(v, "configMap", "items")); len(items) > 0 {
				key = ""
				for _, it := range items {
					if dig(it, "path") == file {
						key = str(dig(it, "key"))
					}
				}
			}
		}
	}
	var cfg map[string]any
	for _, doc := range readYAMLDocs(t, configMapFile) {
		if doc["kind"] == "ConfigMap" && dig(doc, "metadata", "name") == cmName {
			if dig(doc, "metadata", "namespace") != dig(ds, "metadata", "namespace") {
				t.Errorf("ConfigMap %s is in namespace %v, the DaemonSet in %v", cmName, dig(doc, "metadata", "namespace"), dig(ds, "metadata", "namespace"))
			}
			if s := str(dig(doc, "data", key)); s != "" {
				if err := yaml.Unmarshal([]byte(s), &cfg); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if cfg == nil {
		t.Fatalf("--config=%s: ConfigMap %q in %s has no key %q", config, cmName, configMapFile, key)
	}

	port := healthPort(cfg)
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if p := fmt.Sprint(dig(c, probe, "httpGet", "port")); p != port {
			t.Errorf("%s port %s, health_check listens on %s", probe, p, port)
		}
	}
	dirStorage := storageDir(cfg, containerEnv(c))
	found := false
	for _, m := range mounts {
		if path.Clean(m.MountPath) == path.Clean(dirStorage) && !m.ReadOnly && !strings.HasPrefix(m.HostPath, "configMap:") {
			found = true
		}
	}
	if !found {
		t.Errorf("file_storage directory %s is not on a writable host volume: the queue would not survive the pod", dirStorage)
	}
	checkSearchPaths(t, configMapFile, cfg)
}

// checkPrivileges accepts privileged: true or the BPF capabilities.
func checkPrivileges(t *testing.T, where string, sc any) {
	t.Helper()
	if dig(sc, "privileged") == true {
		return
	}
	caps := list(dig(sc, "capabilities", "add"))
	for _, want := range []string{"BPF", "PERFMON"} {
		if !slices.Contains(caps, any(want)) && !slices.Contains(caps, any("CAP_"+want)) {
			t.Errorf("%s: neither privileged nor capability %s", where, want)
		}
	}
}

func TestHelmValues(t *testing.T) {
	v := readYAML(t, helmValuesFile)
	if v["mode"] != "daemonset" {
		t.Errorf("mode %v, want daemonset", v["mode"])
	}
	dist := readYAML(t, builderConfig)
	name := str(dig(dist, "dist", "name"))
	if got := dig(v, "command", "name"); got != name {
		t.Errorf("command.name %v, the distribution's binary is %s", got, name)
	}
	for _, doc := range readYAMLDocs(t, daemonSetFile) {
		if doc["kind"] == "DaemonSet" {
			image := str(dig(doc, "spec", "template", "spec", "containers", "0", "image"))
			if repo, _, _ := strings.Cut(image, ":"); repo != dig(v, "image", "repository") {
				t.Errorf("image.repository %v, the DaemonSet runs %s", dig(v, "image", "repository"), image)
			}
		}
	}
	checkPrivileges(t, "helm values", v["securityContext"])
	if v["hostNetwork"] == true && v["dnsPolicy"] != "ClusterFirstWithHostNet" {
		t.Error("hostNetwork without dnsPolicy ClusterFirstWithHostNet")
	}
	for preset, p := range func() map[string]any { m, _ := v["presets"].(map[string]any); return m }() {
		if dig(p, "enabled") == true {
			t.Errorf("preset %s is enabled", preset)
		}
	}
	mounts := podMounts(list(v["extraVolumes"]), list(v["extraVolumeMounts"]))
	checkHostMounts(t, "helm values", mounts)

	// The same host mounts as the DaemonSet.
	for _, doc := range readYAMLDocs(t, daemonSetFile) {
		if doc["kind"] != "DaemonSet" {
			continue
		}
		spec := dig(doc, "spec", "template", "spec")
		dsMounts := podMounts(list(dig(spec, "volumes")), list(dig(spec, "containers", "0", "volumeMounts")))
		for src, m := range dsMounts {
			if strings.HasPrefix(src, "configMap:") {
				continue
			}
			if mounts[src] != m {
				t.Errorf("host path %s: DaemonSet mounts %+v, helm values %+v", src, m, mounts[src])
			}
		}
	}

	cfg, _ := withoutNulls(v["config"]).(map[string]any)
	port := healthPort(cfg)
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if p := fmt.Sprint(dig(v, probe, "httpGet", "port")); p != port {
			t.Errorf("%s port %s, health_check listens on %s", probe, p, port)
		}
	}
	if pipelines, _ := dig(cfg, "service", "pipelines").(map[string]any); len(pipelines) != 1 || pipelines["logs"] == nil {
		t.Errorf("pipelines %v: want only logs (null the chart's metrics and traces)", slices.Collect(maps.Keys(pipelines)))
	}
	dirStorage := storageDir(cfg, containerEnv(map[string]any{"env": v["extraEnvs"]}))
	if m, ok := func() (mount, bool) {
		for _, m := range mounts {
			if path.Clean(m.MountPath) == path.Clean(dirStorage) {
				return m, true
			}
		}
		return mount{}, false
	}(); !ok || m.ReadOnly {
		t.Errorf("file_storage directory %s is not on a writable host volume", dirStorage)
	}
	checkSearchPaths(t, helmValuesFile, cfg)

	// The chart has had hostPID since 0.143.1: no post-renderer.
	if v["hostPID"] != true {
		t.Error("hostPID is not true: the receiver reads /proc/<host pid>")
	}
	if !slices.ContainsFunc(list(v["extraEnvs"]), func(e any) bool {
		return dig(e, "name") == "K8S_NODE_NAME" && dig(e, "valueFrom", "fieldRef", "fieldPath") == "spec.nodeName"
	}) {
		t.Error("no K8S_NODE_NAME from spec.nodeName")
	}
	checkCRISocket(t, "helm values", mounts)
	if _, err := os.Stat("kubernetes/helm-postrender"); err == nil {
		t.Error("kubernetes/helm-postrender is back: the chart sets hostPID itself, and Helm 4 refuses the post-renderer as written")
	}
}

// checkCRISocket checks that a CRI socket the receiver looks for is mounted
// read-only at the path it looks at.
func checkCRISocket(t *testing.T, where string, mounts map[string]mount) {
	t.Helper()
	for _, sock := range k8s.DefaultSockets() {
		if m, ok := mounts[sock]; ok {
			if m.MountPath != sock || !m.ReadOnly {
				t.Errorf("%s: CRI socket %s must be mounted read-only at %s (got %+v)", where, sock, sock, m)
			}
			return
		}
	}
	t.Errorf("%s: no CRI socket (%v) mounted: pods would not be named", where, k8s.DefaultSockets())
}

// TestDockerfile checks that the image holds the binary ocb builds, under
// the name the manifests run.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	dist := readYAML(t, builderConfig)
	name := str(dig(dist, "dist", "name"))
	out := path.Clean(str(dig(dist, "dist", "output_path")))
	for _, want := range []string{
		"make otelcol TARGETARCH=${TARGETARCH}", // the image's platform, cross-built
		"FROM --platform=$BUILDPLATFORM",
		"/" + path.Join(out, name) + " /" + name,
		`ENTRYPOINT ["/` + name + `"]`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q", dockerfile, want)
		}
	}
	for _, f := range slices.Concat(hostConfigs(t)) {
		if !bytes.Contains(b, []byte("deploy/"+f)) {
			t.Errorf("%s does not copy deploy/%s into the image", dockerfile, f)
		}
	}
}
