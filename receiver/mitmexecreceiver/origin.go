// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/mitmexec/mitmexec/internal/origin"
)

// readOrigin puts the code that started the tool on the record
// (docs/record.md, "Origin"): the nearest package script, build, test or
// script up the kernel's ancestor chain. Like readCI it runs after the
// action. An origin that may have been among processes gone before the
// read is left off and counted (receiver_mitmexec_origin_unread).
func (r *mitmexecReceiver) readOrigin(rec *detectionRecord) {
	e := &rec.Exec
	var script origin.InterpreterFunc = func([]string) (string, bool) { return "", false }
	if r.catalog != nil {
		script = r.catalog.ScriptOf
	}
	res := origin.Lookup(origin.ProcReader{ProcRoot: r.procRoot}, script, e.PID, e.StartBootTimeNs, e.Ancestors)
	rec.Origin = res.Origin
	if res.Origin.Kind == origin.KindNone && res.Gone > 0 {
		r.originUnread.Add(1)
	}
}

// putOrigin adds the origin's attributes, none when there is none.
func putOrigin(a pcommon.Map, o origin.Origin) {
	for _, kv := range o.Attributes() {
		switch v := kv.Value.(type) {
		case string:
			a.PutStr(kv.Key, v)
		case int64:
			a.PutInt(kv.Key, v)
		case bool:
			a.PutBool(kv.Key, v)
		}
	}
}
