// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/record"
)

// TestPerHostStream checks what keeps each host its own Loki stream: the
// receiver sets service.instance.id on the resource, Loki indexes it by
// default, and no configuration here overwrites or drops it (one value for
// the fleet would put every host in one stream, and Loki refuses a host's
// backlog older than that stream's newest entry minus max_chunk_age/2).
func TestPerHostStream(t *testing.T) {
	onResource := func(a record.Attribute) bool {
		return a.Name == record.AttrServiceInstanceID && a.Where == record.OnResource
	}
	if !slices.ContainsFunc(record.Attributes(), onResource) {
		t.Fatalf("the contract (internal/record) does not put %s on the resource", record.AttrServiceInstanceID)
	}
	if !slices.Contains(lokiIndexLabels, lokiName(record.AttrServiceInstanceID)) {
		t.Error("service_instance_id is not among the index labels this package assumes")
	}
	cfgs := embeddedConfigs(t)
	for _, f := range hostConfigs(t) {
		cfgs[f] = readYAML(t, f)
	}
	for where, cfg := range cfgs {
		for _, err := range instanceIDOverrides(cfg) {
			t.Errorf("%s: %v", where, err)
		}
	}
}

// instanceIDOverrides lists the resource processors of cfg that touch
// service.instance.id.
func instanceIDOverrides(cfg map[string]any) []error {
	var errs []error
	procs, _ := dig(cfg, "processors").(map[string]any)
	for name, p := range procs {
		if name != "resource" && !strings.HasPrefix(name, "resource/") {
			continue
		}
		for _, a := range list(dig(p, "attributes")) {
			if dig(a, "key") == "service.instance.id" {
				errs = append(errs, fmt.Errorf("processor %s sets service.instance.id (action %v): every host must keep its own", name, dig(a, "action")))
			}
		}
	}
	return errs
}

func TestPerHostStreamCatchesOverride(t *testing.T) {
	cfg := map[string]any{"processors": map[string]any{"resource/cluster": map[string]any{"attributes": []any{
		map[string]any{"key": "k8s.cluster.name", "value": "prod", "action": "upsert"},
		map[string]any{"key": "service.instance.id", "value": "fleet", "action": "upsert"},
	}}}}
	if errs := instanceIDOverrides(cfg); len(errs) != 1 {
		t.Errorf("override found %d times, want 1", len(errs))
	}
}
