// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

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
