// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mitmexec/mitmexec/internal/record"
)

const docPath = "../../../../docs/record.md"

// TestDocInStep fails when docs/record.md's tables are not what the record
// package says: run `go generate ./internal/record` and commit.
func TestDocInStep(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rewrite(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(b) {
		t.Fatalf("docs/record.md's tables drifted from internal/record: run `go generate ./internal/record` and commit")
	}
}

// TestDocListsEveryName: every attribute of the record package is in a
// table of the doc, as a table's first cell.
func TestDocListsEveryName(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range record.Attributes() {
		if !strings.Contains(string(b), "| `"+a.Name+"` |") {
			t.Errorf("%s (%s) is in no table of docs/record.md", a.Name, a.Where)
		}
	}
}

func TestRewriteKeepsProse(t *testing.T) {
	// GIVEN a doc with prose around every table's markers, stale tables inside
	var in, want strings.Builder
	for _, name := range tables() {
		prose := "prose before " + name + "\n\n"
		in.WriteString(prose + fmt.Sprintf(beginMarker, name) + "| stale |\n" + fmt.Sprintf(endMarker, name))
		want.WriteString(prose + fmt.Sprintf(beginMarker, name) + render(name) + fmt.Sprintf(endMarker, name))
	}
	in.WriteString("\nclosing prose\n")
	want.WriteString("\nclosing prose\n")

	// WHEN it is rewritten
	got, err := rewrite(in.String())

	// THEN the tables are new and the prose is untouched
	if err != nil {
		t.Fatal(err)
	}
	if got != want.String() {
		t.Errorf("rewrite:\n%s\nwant:\n%s", got, want.String())
	}
}

func TestRewriteRefusesMissingOrExtraMarkers(t *testing.T) {
	full := func() string {
		var b strings.Builder
		for _, name := range tables() {
			b.WriteString(fmt.Sprintf(beginMarker, name) + fmt.Sprintf(endMarker, name))
		}
		return b.String()
	}
	for name, doc := range map[string]string{
		"no markers":  "just prose\n",
		"no end":      strings.Replace(full(), fmt.Sprintf(endMarker, record.SectionNetwork), "", 1),
		"wrong order": fmt.Sprintf(beginMarker, record.SectionOrigin) + fmt.Sprintf(endMarker, record.SectionOrigin) + full(),
		"unknown":     full() + fmt.Sprintf(beginMarker, "telemetry") + fmt.Sprintf(endMarker, "telemetry"),
	} {
		if _, err := rewrite(doc); err == nil {
			t.Errorf("%s: rewrite accepted it", name)
		}
	}
}

func TestRenderCICDAndOrigin(t *testing.T) {
	cicd := render(string(record.SectionCICD))
	if !strings.Contains(cicd, "| `cicd.pipeline.task.run.id` | - | `CI_JOB_ID` |\n") {
		t.Errorf("cicd table:\n%s", cicd)
	}
	origin := render(string(record.SectionOrigin))
	if !strings.Contains(origin, "| `mitmexec.origin.project.dir` | string, package scripts | ") {
		t.Errorf("origin table:\n%s", origin)
	}
}
