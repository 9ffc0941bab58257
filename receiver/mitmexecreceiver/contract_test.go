// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/origin"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/internal/wire"
)

// listedType is the contract's type of each attribute, by where it is put
// and its name.
func listedType() map[record.Where]map[string]record.Type {
	out := map[record.Where]map[string]record.Type{record.OnRecord: {}, record.OnResource: {}}
	for _, a := range record.Attributes() {
		out[a.Where][a.Name] = a.Type
	}
	return out
}

// typeOf is the contract's name of a value's type.
func typeOf(v pcommon.Value) record.Type {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return record.TypeString
	case pcommon.ValueTypeInt:
		return record.TypeInt
	case pcommon.ValueTypeBool:
		return record.TypeBool
	case pcommon.ValueTypeDouble:
		return record.TypeDouble
	case pcommon.ValueTypeSlice:
		if v.Slice().Len() > 0 && v.Slice().At(0).Type() == pcommon.ValueTypeStr {
			return record.TypeStrings
		}
	}
	return record.Type(v.Type().String())
}

// checkListed fails for every attribute of m the contract does not list on
// where with that type, and returns the names it saw.
func checkListed(t *testing.T, what string, where record.Where, m pcommon.Map) []string {
	t.Helper()
	listed := listedType()[where]
	var seen []string
	m.Range(func(k string, v pcommon.Value) bool {
		seen = append(seen, k)
		want, ok := listed[k]
		switch {
		case !ok:
			t.Errorf("%s: %s attribute %s is not in internal/record's table", what, where, k)
		case typeOf(v) != want:
			t.Errorf("%s: %s attribute %s is a %s, the table says %s", what, where, k, typeOf(v), want)
		}
		return true
	})
	return seen
}

// checkLogsListed checks every record of logs and its resource against
// the contract, and returns the names it saw, by where they were.
func checkLogsListed(t *testing.T, what string, logs []plog.Logs) map[record.Where]map[string]bool {
	t.Helper()
	seen := map[record.Where]map[string]bool{record.OnRecord: {}, record.OnResource: {}}
	see := func(where record.Where, names []string) {
		for _, n := range names {
			seen[where][n] = true
		}
	}
	for _, ld := range logs {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			see(record.OnResource, checkListed(t, what, record.OnResource, rl.Resource().Attributes()))
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if got := lrs.At(k).EventName(); got != record.EventName {
						t.Errorf("%s: EventName %q, want %q", what, got, record.EventName)
					}
					see(record.OnRecord, checkListed(t, what, record.OnRecord, lrs.At(k).Attributes()))
				}
			}
		}
	}
	return seen
}

// contractRecords are the records the translate tests pin, and those that
// carry what the golden ones do not: a behaviour record, a CI job read
// from a fake /proc, an origin of every field, a late kill of a record
// that summarises others and whose paths the kernel cut.
func contractRecords(t *testing.T) map[string]detectionRecord {
	t.Helper()
	out := map[string]detectionRecord{}
	for _, g := range goldenRecords(t) {
		out["golden "+g.name] = g.rec
	}
	late := goldenRecords(t)[0].rec
	late.Exec.Flags |= event.FlagExePathTruncated | event.FlagCgroupTruncated
	late.Outcome, late.ActionDelay, late.SummarizedCount = record.OutcomeKilledLate, 12*time.Millisecond, 4
	out["late kill"] = late

	lie := goldenRecords(t)[0].rec
	lie.Detection = detect.Detection{Tool: &detect.Tool{Name: "arp_spoofer", Technique: "T1557.002"}, Match: detect.MatchNetworkBehaviour, Detail: "ARP reply claims ..."}
	lie.Wire = &wireClaim{
		Claim: wire.Claim{Class: wire.ClassARP, Address: netip.MustParseAddr("192.0.2.1"),
			MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Target: netip.MustParseAddr("192.0.2.7")},
		Interface: "eth0", IfIndex: 2, NetNS: 4026531840, SenderPID: 4243, Behaviour: "arp_spoofer",
	}
	out["network behaviour"] = lie

	root := t.TempDir()
	fakeProcEntry(t, root, 200, 400, []string{"GITLAB_CI=true", "CI_PROJECT_PATH=g/p", "CI_PIPELINE_ID=5",
		"CI_PIPELINE_URL=https://gl/g/p/-/pipelines/5", "CI_JOB_NAME=test", "CI_JOB_ID=9", "CI_JOB_URL=https://gl/g/p/-/jobs/9",
		"CI_RUNNER_DESCRIPTION=shared", "CI_PROJECT_URL=https://gl/g/p", "CI_COMMIT_REF_NAME=topic", "CI_COMMIT_SHA=abc",
		"CI_MERGE_REQUEST_IID=4"})
	ci := detectionRecord{
		Exec:      event.Exec{PID: 300, StartBootTimeNs: 500 * 1e7, Name: "arpspoof", Ancestors: []event.Ancestor{{PID: 200, StartBootTime: 400 * 1e7, Comm: "bash"}}},
		Detection: detect.Detection{Tool: tool(t, "arpspoof"), Match: detect.MatchExecutableName},
		Time:      execTime,
	}
	(&mitmexecReceiver{procRoot: root}).readCI(&ci)
	out["gitlab job"] = ci

	dependency := true
	for _, o := range []origin.Origin{
		{Kind: origin.KindPackageJS, Manager: "npm", PackageName: "left-pad", PackageVersion: "1.3.0", Dependency: &dependency,
			LifecycleEvent: "postinstall", File: "/src/app/node_modules/left-pad/package.json", ProjectDir: "/src/app", PID: 200, Depth: 1},
		{Kind: origin.KindPytest, Test: "tests/test_net.py::test_proxy", File: "tests/test_net.py", PID: 210, Depth: 2},
		{Kind: origin.KindMake, MakeTarget: "check", File: "/src/Makefile", PID: 220, Depth: 3},
	} {
		rec := goldenRecords(t)[1].rec
		rec.Origin = o
		out["origin "+string(o.Kind)] = rec
	}
	return out
}

// TestEmittedNamesAreTheContract: every attribute a translated record or
// its resource carries is in internal/record's table, with the table's
// type, and every name of the table is carried by one of these records.
// The records are built here rather than sent by a kernel, so none of the
// table's names is out of their reach; the privileged tests hold the
// records a kernel sends to the same table (assertContract).
func TestEmittedNamesAreTheContract(t *testing.T) {
	pod := testResource
	pod.ServiceInstanceID, pod.NodeName = instanceID(pod.HostID, ""), "worker-3"
	pod.Pod = podResource{ContainerID: podContainerID, UID: "0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		Name: "debug-shell", Namespace: "payments", Container: "toolbox", Image: "registry.example:5000/tools/debug"}
	seen := map[record.Where]map[string]bool{record.OnRecord: {}, record.OnResource: {}}
	for name, rec := range contractRecords(t) {
		var logs []plog.Logs
		for _, res := range []resourceInfo{testResource, pod} {
			ld, sl := newLogs(res)
			appendDetection(sl, &rec, observedTime, defaultMaxArgsBytes)
			logs = append(logs, ld)
		}
		for where, names := range checkLogsListed(t, name, logs) {
			maps.Copy(seen[where], names)
		}
	}
	for _, a := range record.Attributes() {
		if !seen[a.Where][a.Name] {
			t.Errorf("the table lists %s on the %s, and no translated record carries it", a.Name, a.Where)
		}
	}
}

// ciContractNames are the names of the contract's CI/CD table.
func ciContractNames() []string {
	var out []string
	for _, a := range record.Attributes() {
		if a.Section == record.SectionCICD {
			out = append(out, a.Name)
		}
	}
	return slices.Clip(out)
}
