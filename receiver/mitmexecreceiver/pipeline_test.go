// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/record"
	"github.com/mitmexec/mitmexec/internal/wire"
	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

// drifting is a host whose answers change from one read to the next: each
// read of a process names another owner.
type drifting struct {
	mu             sync.Mutex
	process, files int
}

func (d *drifting) Process(*event.Exec) enrich.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.process++
	return enrich.Context{Owner: "qa-" + strconv.Itoa(d.process), ParentExecutable: "/usr/bin/make"}
}

func (d *drifting) FileSHA256(_ *event.Exec, c *enrich.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files++
	if c.SHA256 == "" {
		c.SHA256 = "feed"
	}
}

func (d *drifting) reads() (process, files int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.process, d.files
}

// Each detection reaches enrich once, and the allow-list decides on the
// very view the record carries: a host whose answers drift between two
// reads cannot make the record say what the allow-list did not see.
func TestEnrichOnceTheAllowListSeesWhatTheRecordSays(t *testing.T) {
	// GIVEN an allow entry for the owner the first read names, on a host
	// whose every read names another owner
	host := &drifting{}
	src := newFakeSource()
	sink := new(consumertest.LogsSink)
	r := newFakeReceiver(t, sink, src)
	r.cfg.Allow = []AllowConfig{{User: "qa-1"}}
	r.newEnricher = func(string, string, enrich.Hasher) processEnricher { return host }
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	// WHEN two tools run, one after the other
	first := toolExec("ettercap", 21)
	src.records <- event.Encode(&first)
	deadline := time.Now().Add(5 * time.Second)
	for r.suppressed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	second := toolExec("ettercap", 22)
	src.records <- event.Encode(&second)
	waitLogs(t, sink, 1)
	// THEN the first is silenced by what its one read said, the second is
	// reported with the owner its one read said, and the host was read
	// once per detection (the hash once, for the record, after the action)
	if r.suppressed.Load() != 1 {
		t.Errorf("suppressed %d, want 1 (the first read named qa-1)", r.suppressed.Load())
	}
	if owner := attrOf(t, sink, 0, record.AttrOwner); owner != "qa-2" {
		t.Errorf("record's owner %v, want qa-2, what the allow-list saw for it", owner)
	}
	if sum := attrOf(t, sink, 0, record.AttrExecutableSHA256); sum != "feed" {
		t.Errorf("record's hash %v, want the enrich stage's", sum)
	}
	if process, files := host.reads(); process != 2 || files != 1 {
		t.Errorf("host read %d times and hashed %d times for two detections (one silenced), want 2 and 1", process, files)
	}
}

// lookupFailing is an interface lookup that fails with err.
type lookupFailing struct{ err error }

func (l lookupFailing) Lookup(wire.InterfaceQuery, bool) (wire.Interface, error) {
	return wire.Interface{}, l.err
}

// A frame whose interface cannot be read is counted by why: the lookup's
// error wraps a sentinel of internal/wire, whatever its text says.
func TestFrameNotJudgedIsCountedByWhy(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want frameOutcome
	}{
		{fmt.Errorf("%w: ifindex 2 device \"\" in network namespace 4026532000: link not found", wire.ErrInterfaceGone), frameInterfaceGone},
		{fmt.Errorf("%w: pid 42, namespace 4026532000", wire.ErrNamespaceGone), frameNamespaceGone},
		{errors.New("netlink in network namespace 4026532000: the interface is gone"), frameNamespaceGone}, // text alone says nothing
	} {
		// GIVEN a receiver whose interface lookups fail with tc.err
		r := &mitmexecReceiver{set: receivertest.NewNopSettings(metadata.Type), frameCounts: newFrameCounts(), interfaces: lookupFailing{tc.err}}
		f := wire.Frame{PID: 42, NetNS: 4026532000, IfIndex: 2}
		c := wire.Claim{Class: wire.ClassARP, Address: netip.MustParseAddr("10.0.0.1")}
		// WHEN a frame is judged
		r.judgeFrame(&f, &c)
		// THEN it is counted under tc.want, and under nothing else
		for _, o := range frameOutcomes {
			want := uint64(0)
			if o == tc.want {
				want = 1
			}
			if got := r.frameCounts.Get(o); got != want {
				t.Errorf("lookup error %q: %s counted %d, want %d", tc.err, o, got, want)
			}
		}
	}
}
