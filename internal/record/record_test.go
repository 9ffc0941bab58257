// SPDX-License-Identifier: Apache-2.0

package record

import (
	"regexp"
	"slices"
	"testing"
)

func TestAttributesAreWellFormed(t *testing.T) {
	name := regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)
	types := []Type{TypeString, TypeInt, TypeBool, TypeDouble, TypeStrings}
	seen := map[string]bool{}
	for _, a := range Attributes() {
		key := string(a.Where) + " " + a.Name
		if seen[key] {
			t.Errorf("%s is listed twice on the %s", a.Name, a.Where)
		}
		seen[key] = true
		if !name.MatchString(a.Name) {
			t.Errorf("%q is not a dotted lower-case attribute name", a.Name)
		}
		if !slices.Contains(types, a.Type) {
			t.Errorf("%s: type %q is not one of %v", a.Name, a.Type, types)
		}
		if !slices.Contains(Sections(), a.Section) {
			t.Errorf("%s: section %q is not one of %v", a.Name, a.Section, Sections())
		}
		if (a.Where == OnResource) != (a.Section == SectionResource) {
			t.Errorf("%s: on the %s but in section %s", a.Name, a.Where, a.Section)
		}
		if a.Section == SectionCICD {
			if a.GitHub == "" || a.GitLab == "" {
				t.Errorf("%s: a CI attribute names its GitHub and GitLab sources (\"-\" for none)", a.Name)
			}
		} else if a.Meaning == "" {
			t.Errorf("%s: no meaning", a.Name)
		}
	}
}

func TestOnlyContainerIDIsOnBoth(t *testing.T) {
	where := map[string][]Where{}
	for _, a := range Attributes() {
		where[a.Name] = append(where[a.Name], a.Where)
	}
	for n, w := range where {
		if len(w) > 1 && n != AttrContainerID {
			t.Errorf("%s is on %v: only %s is on the resource and the record both", n, w, AttrContainerID)
		}
	}
	if len(where[AttrContainerID]) != 2 {
		t.Errorf("%s is on %v, want the resource and the record", AttrContainerID, where[AttrContainerID])
	}
	if got := len(Names()); got != len(where) {
		t.Errorf("Names() has %d names, the table %d", got, len(where))
	}
}

func TestOutcomesAreDistinct(t *testing.T) {
	seen := map[Outcome]bool{}
	for _, o := range Outcomes() {
		if o == "" || seen[o] {
			t.Errorf("outcome %q is empty or repeated", o)
		}
		seen[o] = true
	}
	if !seen[OutcomeAlerted] || !seen[OutcomeKilled] || !seen[OutcomeKilledLate] || !seen[OutcomeDenied] || !seen[OutcomeKillFailed] {
		t.Errorf("Outcomes() = %v misses one of the constants", Outcomes())
	}
}
