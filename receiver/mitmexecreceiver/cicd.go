// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/mitmexec/mitmexec/internal/cicd"
)

// readCI puts the CI job the tool ran in on the record (docs/record.md,
// "CI/CD context"). It runs after the action: a kill must not wait for
// /proc reads, and a tool already killed or gone is served by its
// nearest living ancestor (the step's shell), which holds the same job
// variables. Only allow-listed variables are read into the record.
func (r *mitmexecReceiver) readCI(rec *detectionRecord) {
	e := &rec.Exec
	res := cicd.Lookup(r.procRoot, e.PID, e.StartBootTimeNs, e.Ancestors)
	rec.CI = res.Context
}

// putCI adds the CI attributes that have something true to say.
func putCI(a pcommon.Map, c cicd.Context) {
	for _, kv := range c.Attributes() {
		a.PutStr(kv.Key, kv.Value)
	}
}
