// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"gopkg.in/yaml.v3"
)

// TestReadmeConfigReference keeps README's configuration reference and the
// Config struct in step: every key the code accepts is documented, and the
// documented example is a valid configuration.
func TestReadmeConfigReference(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)## Configuration.*?```yaml\n(.*?)```").FindSubmatch(b)
	if section == nil {
		t.Fatal("README has no yaml block under ## Configuration")
	}
	var doc struct {
		Receivers map[string]map[string]any `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(section[1], &doc); err != nil {
		t.Fatalf("README's config reference is not YAML: %v", err)
	}
	documented := map[string]bool{}
	collectKeys(doc.Receivers["mitmexec"], "", documented)
	accepted := map[string]bool{}
	structKeys(reflect.TypeOf(Config{}), "", accepted)
	var missing, unknown []string
	for k := range accepted {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !accepted[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	if len(missing) > 0 {
		t.Errorf("config keys missing from README: %v", missing)
	}
	if len(unknown) > 0 {
		t.Errorf("README documents keys the code does not accept: %v", unknown)
	}
	cfg := createDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(doc.Receivers["mitmexec"]).Unmarshal(cfg); err != nil {
		t.Fatalf("README's example does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("README's example is invalid: %v", err)
	}
}

func collectKeys(v any, prefix string, out map[string]bool) {
	switch m := v.(type) {
	case map[string]any:
		for k, sub := range m {
			out[prefix+k] = true
			collectKeys(sub, prefix+k+".", out)
		}
	case []any:
		for _, el := range m {
			collectKeys(el, prefix, out)
		}
	}
}

func structKeys(t reflect.Type, prefix string, out map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		out[prefix+tag] = true
		ft := f.Type
		for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			structKeys(ft, prefix+tag+".", out)
		}
	}
}
