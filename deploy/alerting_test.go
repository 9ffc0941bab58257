// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const alertmanagerFile = "loki/alertmanager.yaml"

// rangeRe matches a range vector's duration in LogQL: [2m], [10m], [1h30m].
var rangeRe = regexp.MustCompile(`\[([0-9][0-9a-z]*)\]`)

func readRules(t *testing.T) ruleFile {
	t.Helper()
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
	return rf
}

// TestRuleWindows checks that every range in every rule is at least twice
// its group's evaluation interval: a record stamped just before one
// evaluation and ingested just after it must still be inside the next one's
// window.
func TestRuleWindows(t *testing.T) {
	for _, g := range readRules(t).Groups {
		interval, err := time.ParseDuration(g.Interval)
		if err != nil || interval <= 0 {
			t.Errorf("group %q: interval %q: the rule's windows are judged against it, write it out", g.Name, g.Interval)
			continue
		}
		for _, rule := range g.Rules {
			ranges := rangeRe.FindAllStringSubmatch(rule.Expr, -1)
			if len(ranges) == 0 {
				t.Errorf("rule %q: no range in %q", rule.Alert, rule.Expr)
			}
			for _, m := range ranges {
				w, err := time.ParseDuration(m[1])
				if err != nil {
					t.Errorf("rule %q: range [%s]: %v", rule.Alert, m[1], err)
					continue
				}
				if w < 2*interval {
					t.Errorf("rule %q: window %v is less than twice the evaluation interval %v: a detection ingested across an evaluation falls in no window", rule.Alert, w, interval)
				}
			}
		}
	}
}

func TestRuleWindowCheckCatchesShortWindows(t *testing.T) {
	m := rangeRe.FindAllStringSubmatch(`sum by (host_name) (count_over_time({service_name="mitmexec"} [1m])) > 0`, -1)
	if len(m) != 1 || m[0][1] != "1m" {
		t.Fatalf("ranges %v", m)
	}
}

// TestAlertmanagerGrouping checks that the example route groups the rules'
// alerts by exactly what tells one detection's alert from another's, so that
// the repeated evaluations of one detection page once.
func TestAlertmanagerGrouping(t *testing.T) {
	am := readYAML(t, alertmanagerFile)
	var route any
	for _, r := range list(dig(am, "route", "routes")) {
		for _, m := range list(dig(r, "matchers")) {
			if strings.Contains(str(m), "net_mitm_tool_exec") {
				route = r
			}
		}
	}
	if route == nil {
		t.Fatalf("%s: no route matching the rules' label rule=\"net_mitm_tool_exec\"", alertmanagerFile)
	}
	var groupBy []string
	for _, l := range list(dig(route, "group_by")) {
		groupBy = append(groupBy, str(l))
	}
	if !slices.Contains(groupBy, "alertname") {
		t.Errorf("group_by %v lacks alertname", groupBy)
	}
	if dig(route, "repeat_interval") == nil {
		t.Error("no repeat_interval: the default (4h) should be chosen, not inherited unseen")
	}
	receivers := map[string]bool{}
	for _, r := range list(dig(am, "receivers")) {
		receivers[str(dig(r, "name"))] = true
	}
	if !receivers[str(dig(route, "receiver"))] {
		t.Errorf("route's receiver %v is not defined", dig(route, "receiver"))
	}
	for _, g := range readRules(t).Groups {
		for _, rule := range g.Rules {
			if rule.Labels["rule"] != "net_mitm_tool_exec" {
				t.Errorf("rule %q: label rule=%q is not routed", rule.Alert, rule.Labels["rule"])
			}
			toks, err := tokenize(rule.Expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range outputLabels(toks) {
				if !slices.Contains(groupBy, l) {
					t.Errorf("rule %q: its alerts differ by %s, which group_by %v does not include: two detections would share one notification", rule.Alert, l, groupBy)
				}
			}
		}
	}
}
