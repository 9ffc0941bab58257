// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/mitmexec/mitmexec/internal/testenv"
)

// TestEveryProgramVerifies loads each program of the object on its own, the
// raw-tracepoint fallbacks included, which the other tests never attach on a
// kernel where tp_btf works, and the bounded-scan variants, which only
// kernels without bpf_loop load. BPF LSM is not loadable on every kernel; it
// is reported, not required.
func TestEveryProgramVerifies(t *testing.T) {
	testenv.RequireRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	spec, err := loadMitmexec()
	if err != nil {
		t.Fatal(err)
	}
	for name := range spec.Programs {
		one := spec.Copy()
		for other := range one.Programs {
			if other != name {
				delete(one.Programs, other)
			}
		}
		// The statistics say how close each program comes to the
		// verifier's budget (1M instructions processed).
		coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
			Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats},
		})
		if err != nil {
			var ve *ebpf.VerifierError
			detail := err.Error()
			if errors.As(err, &ve) {
				detail = fmt.Sprintf("%+v", ve)
				if len(detail) > 3000 {
					detail = detail[len(detail)-3000:]
				}
			}
			// the kernel matrix checks both attach where the BPF LSM is on (guest.sh)
			if name == "bprm_check_deny" || name == "frame_check" {
				t.Logf("%s does not load here (expected where BPF LSM is off): %v", name, err)
				continue
			}
			if name == "frame_sent" && !kernelHasFrameTracepoint(t) {
				t.Logf("%s does not load here (expected before Linux 6.4, which added sock_send_length): %v", name, err)
				continue
			}
			t.Errorf("%s: %s", name, detail)
			continue
		}
		if p := coll.Programs[name]; p != nil {
			log := strings.Split(strings.TrimSpace(p.VerifierLog), "\n")
			t.Logf("%s: %d instructions; %s", name, len(one.Programs[name].Instructions), log[len(log)-1])
		}
		coll.Close()
	}
}

// The bounded variants serve kernels before 5.17: a bpf_loop call left in
// them, even where this kernel verifies it, would fail to load there.
func TestBoundedProgramsAvoidBPFLoop(t *testing.T) {
	spec, err := loadMitmexec()
	if err != nil {
		t.Fatal(err)
	}
	for _, flavor := range []string{"btf", "raw"} {
		for _, scan := range []string{envScanLoop, envScanBounded} {
			name := execProgram(flavor, scan)
			prog, ok := spec.Programs[name]
			if !ok {
				t.Errorf("program %s is not in the object", name)
				continue
			}
			calls := 0
			for _, ins := range prog.Instructions {
				if ins.IsBuiltinCall() && ins.Constant == int64(asm.FnLoop) {
					calls++
				}
			}
			if scan == envScanBounded && calls > 0 {
				t.Errorf("%s calls bpf_loop %d times", name, calls)
			}
			if scan == envScanLoop && calls == 0 {
				t.Errorf("%s does not call bpf_loop", name)
			}
		}
	}
}
