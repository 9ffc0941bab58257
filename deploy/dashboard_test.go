// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/record"
)

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
	rf := readRules(t)
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
