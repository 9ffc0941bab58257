// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mitmexec/mitmexec/internal/k8s"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/internal/testenv"
	receiver "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"
)

const (
	builderConfig    = "../builder-config.yaml"
	defaultCollector = "../_build/otelcol-custom"
	collectorEnvName = "MITMEXEC_OTELCOL" // as in test/e2e
	dashboardFile    = "grafana/mitmexec-dashboard.json"
	rulesFile        = "loki/rules.yaml"
	daemonSetFile    = "kubernetes/daemonset.yaml"
	configMapFile    = "kubernetes/configmap.yaml"
	helmValuesFile   = "kubernetes/helm-values.yaml"
	dockerfile       = "Dockerfile"
	dsVariable       = "DS_LOKI"
	hostProcMount    = "/host/proc"
)

// lokiBuiltins are the names Loki's OTLP ingestion adds itself that a query
// may use besides the receiver's attributes: severity_text (the record's
// SeverityText, as structured metadata), detected_level (derived from the
// severity number) and __error__ (set by failing pipeline stages).
var lokiBuiltins = []string{"detected_level", "severity_text", "__error__"}

// lokiIndexLabels are the resource attributes Loki keeps as index labels by
// default (distributor.otlp_config's defaults) that the receiver sets; every
// other attribute is structured metadata, which a stream selector cannot
// use. service_instance_id makes each host its own stream.
var lokiIndexLabels = []string{"service_name", "service_instance_id", "k8s_namespace_name", "k8s_pod_name", "k8s_container_name"}

// frameFields are the fields of a Grafana data frame of Loki log lines
// besides the labels extracted from it.
var frameFields = []string{"Time", "Line", "labels", "tsNs", "id", "labelTypes"}

// The files the receiver reads on the host (receiver/receiver.go): a pod
// must see the host's, not the image's.
var hostFiles = []string{"/etc/passwd", "/etc/machine-id"}

// hostDirs are the host paths the DaemonSet must mount.
var hostDirs = []string{"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf", "/proc"}

// ---- What the receiver emits: internal/record, the contract ----

// lokiName is an attribute's name in Loki: every character a label name
// cannot hold (dots) becomes an underscore.
func lokiName(attr string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, attr)
}

// emittedRules derives the allowed names from the contract's table (every
// attribute and resource attribute the receiver sets; the receiver's
// tests hold what it emits to that table).
func emittedRules(t *testing.T) nameRules {
	t.Helper()
	fields := map[string]bool{}
	for _, n := range record.Names() {
		fields[lokiName(n)] = true
	}
	stream := map[string]bool{}
	for _, l := range lokiIndexLabels {
		if !fields[l] {
			t.Fatalf("index label %s is not among the receiver's attributes %v", l, sortedKeys(fields))
		}
		stream[l] = true
	}
	for _, b := range lokiBuiltins {
		fields[b] = true
	}
	values := map[string]string{lokiName(record.AttrRuleName): record.RuleName}
	return nameRules{Stream: stream, Fields: fields, Values: values, ServiceName: receiver.NewFactory().Type().String()}
}

// ---- The collector configurations ----

func underCI() bool { return testenv.UnderCI() }

// collector returns the built collector, or skips (fails under CI=true).
func collector(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(collectorEnvName)
	if bin == "" {
		bin = defaultCollector
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		if underCI() {
			t.Fatalf("CI=true, cannot skip: the collector %s is missing (run `make otelcol`): %v", abs, err)
		}
		t.Skipf("the collector %s is missing: run `make otelcol` to validate the configurations", abs)
	}
	return abs
}

// validate runs `otelcol-custom validate` on config with env added to a
// clean environment. A run that fails without a configuration error (the
// binary being rebuilt at that moment) is retried.
func validate(t *testing.T, bin, config string, env map[string]string) {
	t.Helper()
	var lastErr error
	var out []byte
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(2 * time.Second)
		}
		cmd := exec.Command(bin, "validate", "--config="+config)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, lastErr = cmd.CombinedOutput()
		if lastErr == nil {
			return
		}
		var exitErr *exec.ExitError
		if errors.As(lastErr, &exitErr) && exitErr.ExitCode() == 1 && bytes.Contains(out, []byte("Error:")) {
			break // a real configuration error
		}
	}
	t.Errorf("%s does not validate: %v\n%s", config, lastErr, out)
}

// validationEnv is what the configurations read from the environment.
func validationEnv(t *testing.T) map[string]string {
	return map[string]string{
		"OTLP_ENDPOINT":        "localhost:4317",
		"MITMEXEC_STORAGE_DIR": filepath.Join(t.TempDir(), "file_storage"),
		"MY_POD_IP":            "127.0.0.1",
		"K8S_NODE_NAME":        "node-1",
	}
}

// hostConfigs are the collector configurations in deploy/.
func hostConfigs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no collector configurations in deploy/: %v", err)
	}
	return files
}

func readYAML(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

// readYAMLDocs reads every document of a multi-document file.
func readYAMLDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	return docs
}

// dig walks nested maps and lists (a list index as a decimal string).
func dig(v any, keys ...string) any {
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// withoutNulls drops every map entry whose value is null, as Helm does when
// it merges values into the chart's defaults.
func withoutNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e != nil {
				out[k] = withoutNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutNulls(e)
		}
		return out
	}
	return v
}

// embeddedConfigs returns the collector configurations inside the
// Kubernetes files, by name: the ConfigMap's keys and the Helm values'
// config (nulls removed).
func embeddedConfigs(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, doc := range readYAMLDocs(t, configMapFile) {
		if doc["kind"] != "ConfigMap" {
			continue
		}
		data, _ := doc["data"].(map[string]any)
		for key, v := range data {
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(str(v)), &cfg); err != nil {
				t.Fatalf("%s key %s: %v", configMapFile, key, err)
			}
			out[configMapFile+":"+key] = cfg
		}
	}
	helm := readYAML(t, helmValuesFile)
	cfg, _ := withoutNulls(helm["config"]).(map[string]any)
	if cfg == nil {
		t.Fatalf("%s has no config", helmValuesFile)
	}
	out[helmValuesFile+":config"] = cfg
	return out
}

func TestCollectorConfigsValidate(t *testing.T) {
	bin := collector(t)
	for _, f := range hostConfigs(t) {
		t.Run(f, func(t *testing.T) {
			validate(t, bin, f, validationEnv(t))
		})
	}
	for name, cfg := range embeddedConfigs(t) {
		t.Run(name, func(t *testing.T) {
			b, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			validate(t, bin, f, validationEnv(t))
		})
	}
}

// TestCollectorConfigsShape checks what validation does not: every
// configuration runs the mitmexec receiver in a logs pipeline, and every
// exporter to a backend queues on disk and retries until it gets through.
func TestCollectorConfigsShape(t *testing.T) {
	configs := embeddedConfigs(t)
	for _, f := range hostConfigs(t) {
		configs[f] = readYAML(t, f)
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			receivers := list(dig(cfg, "service", "pipelines", "logs", "receivers"))
			if !slices.Contains(receivers, any("mitmexec")) {
				t.Errorf("the logs pipeline's receivers %v lack mitmexec", receivers)
			}
			extensions := list(dig(cfg, "service", "extensions"))
			for _, e := range list(dig(cfg, "service", "pipelines", "logs", "exporters")) {
				id := str(e)
				if id == "debug" || strings.HasPrefix(id, "debug/") {
					continue
				}
				exp := dig(cfg, "exporters", id)
				storage := str(dig(exp, "sending_queue", "storage"))
				if storage == "" || dig(exp, "sending_queue", "enabled") != true {
					t.Errorf("exporter %s: sending_queue is not enabled on a storage extension", id)
				} else if !slices.Contains(extensions, any(storage)) || !strings.HasPrefix(storage, "file_storage") {
					t.Errorf("exporter %s: sending_queue.storage %q is not a file_storage extension in service.extensions %v", id, storage, extensions)
				}
				if dig(exp, "retry_on_failure", "enabled") != true {
					t.Errorf("exporter %s: retry_on_failure is not enabled", id)
				}
				if m := dig(exp, "retry_on_failure", "max_elapsed_time"); m != 0 {
					if d, err := time.ParseDuration(fmt.Sprint(m)); err != nil || d < 24*time.Hour {
						t.Errorf("exporter %s: retry_on_failure.max_elapsed_time %v gives up within a day", id, m)
					}
				}
			}
			if fs := dig(cfg, "extensions", "file_storage"); fs != nil && dig(fs, "create_directory") != true {
				t.Errorf("file_storage does not create its directory")
			}
		})
	}
}

// ---- Dashboard ----

var legendRef = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// dashboardProblems checks a dashboard (decoded JSON) and returns every
// problem found.
func dashboardProblems(r nameRules, dash map[string]any, severityText string) []error {
	var errs []error
	vars := map[string]map[string]any{}
	for _, v := range list(dig(dash, "templating", "list")) {
		m, _ := v.(map[string]any)
		vars[str(m["name"])] = m
	}
	if ds := vars[dsVariable]; ds == nil || ds["type"] != "datasource" || ds["query"] != "loki" {
		errs = append(errs, fmt.Errorf("no datasource variable %s of type loki", dsVariable))
	}
	for _, name := range []string{"tool", "host", "severity"} {
		if vars[name] == nil {
			errs = append(errs, fmt.Errorf("no template variable %q", name))
		}
	}
	if sev := vars["severity"]; sev != nil && sev["type"] == "custom" {
		if opts := strings.Split(str(sev["query"]), ","); !slices.Contains(opts, severityText) {
			errs = append(errs, fmt.Errorf("severity variable options %q lack the receiver's %q", opts, severityText))
		}
	}

	checkDS := func(where string, ds any) {
		if ds == nil {
			return
		}
		if dig(ds, "type") != "loki" || dig(ds, "uid") != "${"+dsVariable+"}" {
			errs = append(errs, fmt.Errorf("%s: datasource %v, want loki ${%s}", where, ds, dsVariable))
		}
	}
	var panels []map[string]any
	var collect func(v any)
	collect = func(v any) {
		for _, p := range list(v) {
			m, _ := p.(map[string]any)
			panels = append(panels, m)
			collect(m["panels"]) // rows
		}
	}
	collect(dash["panels"])
	nQueries := 0
	for _, p := range panels {
		where := fmt.Sprintf("panel %q", str(p["title"]))
		if p["type"] == "row" {
			continue
		}
		checkDS(where, p["datasource"])
		for _, tg := range list(p["targets"]) {
			checkDS(where, dig(tg, "datasource"))
			expr := str(dig(tg, "expr"))
			if expr == "" {
				errs = append(errs, fmt.Errorf("%s: a target without expr", where))
				continue
			}
			nQueries++
			errs = append(errs, r.checkExpr(expr)...)
			var refs []string
			for _, m := range legendRef.FindAllStringSubmatch(str(dig(tg, "legendFormat")), -1) {
				refs = append(refs, m[1])
			}
			errs = append(errs, r.checkTemplateRefs(expr, refs, where+" legend")...)
		}
		errs = append(errs, r.checkFieldNames(where, panelFieldNames(p, &errs))...)
	}
	if nQueries == 0 {
		errs = append(errs, errors.New("the dashboard has no queries"))
	}
	return errs
}

// panelFieldNames returns the field names a panel's transformations and
// field overrides refer to; unknown transformations are problems.
func panelFieldNames(p map[string]any, errs *[]error) []string {
	var names []string
	where := fmt.Sprintf("panel %q", str(p["title"]))
	for _, tr := range list(p["transformations"]) {
		opts := dig(tr, "options")
		switch id := str(dig(tr, "id")); id {
		case "extractFields":
			names = append(names, str(dig(opts, "source")))
		case "filterFieldsByName":
			for _, k := range []string{"include", "exclude"} {
				for _, n := range list(dig(opts, k, "names")) {
					names = append(names, str(n))
				}
			}
		case "organize":
			for _, k := range []string{"indexByName", "renameByName", "excludeByName", "includeByName"} {
				m, _ := dig(opts, k).(map[string]any)
				names = slices.AppendSeq(names, maps.Keys(m))
			}
		case "sortBy":
			for _, s := range list(dig(opts, "sort")) {
				names = append(names, str(dig(s, "field")))
			}
		default:
			*errs = append(*errs, fmt.Errorf("%s: transformation %q is not checked by this test; teach deploy_test.go about it", where, id))
		}
	}
	for _, o := range list(dig(p, "fieldConfig", "overrides")) {
		if dig(o, "matcher", "id") == "byName" {
			names = append(names, str(dig(o, "matcher", "options")))
		}
	}
	return names
}

// checkFieldNames checks data frame field names: the receiver's
// attributes, Loki's own, and the frame's fixed fields.
func (r nameRules) checkFieldNames(where string, names []string) []error {
	var errs []error
	for _, n := range names {
		if !r.Fields[n] && !r.Stream[n] && !slices.Contains(frameFields, n) {
			errs = append(errs, fmt.Errorf("%s: field %q is neither an attribute the receiver emits nor a field of Loki's log frames", where, n))
		}
	}
	return errs
}

func TestDashboardNames(t *testing.T) {
	r := emittedRules(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, err := range dashboardProblems(r, dash, record.SeverityText) {
		t.Error(err)
	}
}

// TestDashboardCheckCatchesBogusNames runs the dashboard check on a copy
// of the dashboard with one bogus name at a time.
func TestDashboardCheckCatchesBogusNames(t *testing.T) {
	r := emittedRules(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var table, series string
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range list(dash["panels"]) {
		switch dig(p, "type") {
		case "table":
			table = str(dig(p, "title"))
		case "timeseries":
			if strings.Contains(str(dig(p, "targets", "0", "legendFormat")), "{{") {
				series = str(dig(p, "title"))
			}
		}
	}
	if table == "" || series == "" {
		t.Fatal("the dashboard has no table or no series with a legend")
	}
	for name, mutate := range map[string]func(map[string]any){
		"expr": func(d map[string]any) {
			tg := dig(d, "panels", "0", "targets", "0").(map[string]any)
			tg["expr"] = strings.Replace(str(tg["expr"]), `security_rule_name=`, `security_rule=`, 1)
		},
		"legend": func(d map[string]any) {
			for _, p := range list(d["panels"]) {
				if dig(p, "title") == series {
					dig(p, "targets", "0").(map[string]any)["legendFormat"] = "{{tool}}"
				}
			}
		},
		"table field": func(d map[string]any) {
			for _, p := range list(d["panels"]) {
				if dig(p, "title") == table {
					for _, tr := range list(dig(p, "transformations")) {
						if dig(tr, "id") == "organize" {
							dig(tr, "options", "renameByName").(map[string]any)["process_cmdline"] = "Command"
						}
					}
				}
			}
		},
		"datasource": func(d map[string]any) {
			dig(d, "panels", "0").(map[string]any)["datasource"] = map[string]any{"type": "prometheus", "uid": "x"}
		},
	} {
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		mutate(d)
		if errs := dashboardProblems(r, d, "CRITICAL"); len(errs) == 0 {
			t.Errorf("bogus %s accepted", name)
		}
	}
}

// ---- Loki rules ----

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var labelsRef = regexp.MustCompile(`\$labels\.([A-Za-z_][A-Za-z0-9_]*)`)

func TestLokiRules(t *testing.T) {
	r := emittedRules(t)
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, rule := range g.Rules {
			where := fmt.Sprintf("rule %q", rule.Alert+rule.Record)
			if rule.Alert == "" || rule.Record != "" {
				t.Errorf("%s: only alerting rules are expected", where)
			}
			alerts[rule.Alert] = true
			if rule.Labels["severity"] == "" {
				t.Errorf("%s: no severity label", where)
			}
			for _, err := range r.checkExpr(rule.Expr) {
				t.Errorf("%s: %v", where, err)
			}
			var refs []string
			for _, text := range slices.Concat(slices.Collect(maps.Values(rule.Annotations)), slices.Collect(maps.Values(rule.Labels))) {
				for _, m := range labelsRef.FindAllStringSubmatch(text, -1) {
					refs = append(refs, m[1])
				}
			}
			for _, err := range r.checkTemplateRefs(rule.Expr, refs, where+" template") {
				t.Error(err)
			}
			if q := rule.Annotations["query"]; q != "" {
				for _, err := range r.checkExpr(q) {
					t.Errorf("%s query annotation: %v", where, err)
				}
			}
		}
	}
	for _, want := range []string{"MitmToolExecuted", "MitmToolBurstAcrossHosts"} {
		if !alerts[want] {
			t.Errorf("alert %s is missing", want)
		}
	}
}

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
