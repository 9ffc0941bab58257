// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mitmexec/mitmexec/internal/k8s"
	"github.com/mitmexec/mitmexec/internal/testenv"
)

// Tools run inside the containers, from the host's /usr mounted there.
const (
	ettercap  = "/usr/bin/ettercap"
	bettercap = "/usr/bin/bettercap"
	arpspoof  = "/usr/sbin/arpspoof"
	python3   = "/usr/bin/python3" // Debian's, with mitmproxy's modules
)

// naming says which of the runtime's names a record must carry.
type naming int

const (
	unnamed    naming = iota // none: the runtime did not answer
	named                    // all of them: pod, namespace, container, image
	namedOrNot               // all or none, never some or another pod's
)

// arpLie sends ARP replies on eth0 claiming that sys.argv[1] (an address
// the interface does not hold) is at the interface's own MAC, ten in a
// second as a spoofer repeats them: the receiver judges a lie against the
// sender's network namespace while the sender lives, and one frame from a
// process that exits at once can be lost on a loaded machine.
const arpLie = `import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = s.getsockname()[4]
claim = socket.inet_aton(sys.argv[1])
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + claim + b"\xff" * 6 + claim
for _ in range(10):
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
    time.sleep(0.1)
`

// expect is what a detection's resource and process must say.
type expect struct {
	tool  string
	ctr   *ctr
	named naming
	vpid  int // the pid inside the container when the test knows it
}

func TestRealRuntime(t *testing.T) {
	testenv.RequireRoot(t)
	requireFiles(t, ettercap, bettercap, arpspoof, python3, hostBusybox, filepath.Join(cniBinDir, "ptp"), filepath.Join(cniBinDir, "host-local"))
	collectorBinary(t)
	images := t.TempDir()
	pause, busybox := buildImages(t, images)
	for _, spec := range []func(*testing.T) runtimeSpec{debianContainerd, builtContainerd} {
		s := spec(t)
		t.Run(s.name, func(t *testing.T) { runtimeSuite(t, s, pause, busybox) })
	}
}

// runtimeSuite runs one containerd with two collectors: one asking the
// runtime's socket directly, one through the gate (proxy_linux_test.go).
func runtimeSuite(t *testing.T, spec runtimeSpec, pauseArchive, busyboxArchive string) {
	// GIVEN the test's containerd with the images imported
	c := startContainerd(t, spec)
	c.importImage(t, pauseArchive)
	c.importImage(t, busyboxArchive)
	// AND a collector asking it, and one asking it through the gate
	direct := startCollector(t, "direct", c.sock)
	gate := newGateProxy(t, c.dir, c.sock)
	gated := startCollector(t, "gated", gate.path)

	// AND two pods on the node's network, each with a running container
	attacker := c.runPod(t, "attacker-5f7d", "shop", false)
	toolbox := c.createContainer(t, attacker, "toolbox", []string{"/bin/sleep", "3600"}, true)
	bystander := c.runPod(t, "bystander-0a1b", "web", false)
	app := c.createContainer(t, bystander, "app", []string{"/bin/sleep", "3600"}, true)
	mark := func(step string) string { return fmt.Sprintf("cri-%d-%s-%s", os.Getpid(), spec.name, step) }

	t.Run("tools in a pod are attributed to it", func(t *testing.T) {
		// WHEN real tools run in the attacker's container: by name
		// (through a shell that says its pid first), a renamed copy, a
		// python module
		m := mark("ettercap")
		vpid := shellPid(t, c.execSync(t, toolbox, "/bin/sh", "-c", `echo $$; exec `+ettercap+` --version "$0"`, m))
		checkDetection(t, direct, m, expect{tool: "ettercap", ctr: toolbox, named: named, vpid: vpid})
		checkDetection(t, gated, m, expect{tool: "ettercap", ctr: toolbox, named: named, vpid: vpid})

		m = mark("arpspoof")
		c.execSync(t, toolbox, arpspoof, "-h", m)
		checkDetection(t, direct, m, expect{tool: "arpspoof", ctr: toolbox, named: named})

		m = mark("renamed")
		c.execSync(t, toolbox, "/bin/cp", bettercap, "/tmp/netcheck")
		c.execSync(t, toolbox, "/tmp/netcheck", "-version", m)
		checkDetection(t, direct, m, expect{tool: "bettercap", ctr: toolbox, named: named})

		m = mark("python")
		c.execSync(t, toolbox, python3, "-m", "mitmproxy.tools.dump", "--version", m)
		checkDetection(t, direct, m, expect{tool: "mitmdump", ctr: toolbox, named: named})

		// a python that names no module in its arguments: the module's
		// open (fanotify) gives it away, and its record is the pod's too
		m = mark("module")
		c.execSync(t, toolbox, python3, "-c", `import importlib, sys; importlib.import_module("mitmproxy.tools." + "dump")`, m)
		checkDetection(t, direct, m, expect{tool: "mitmdump", ctr: toolbox, named: named})

		// AND in the bystander's: a second pod's process is its own
		m = mark("bystander")
		vpid = shellPid(t, c.execSync(t, app, "/bin/sh", "-c", `echo $$; exec `+ettercap+` --version "$0"`, m))
		checkDetection(t, direct, m, expect{tool: "ettercap", ctr: app, named: named, vpid: vpid})
	})

	t.Run("pod with its own network namespace", func(t *testing.T) {
		// GIVEN a pod the CNI (ptp, host-local) gave its own namespace
		p := c.runPod(t, "netpod-9c2e", "shop", true)
		state, ip, _ := c.sandboxStatus(t, p)
		if state != runtimeapi.PodSandboxState_SANDBOX_READY || !inCNISubnet(ip) {
			t.Fatalf("pod %s: state %v ip %q, want ready with an address in %s", p.name, state, ip, cniSubnet)
		}
		k := c.createContainer(t, p, "shell", []string{"/bin/sleep", "3600"}, true)
		// WHEN a tool runs in it THEN it is that pod's
		m := mark("netns")
		c.execSync(t, k, ettercap, "--version", m)
		checkDetection(t, direct, m, expect{tool: "ettercap", ctr: k, named: named})

		// WHEN a program no catalog names (python3 with a raw socket) tells
		// a lie on the pod's interface: an ARP reply claiming the CNI
		// gateway's address, sent into the test's namespace only
		m = mark("spoofer")
		c.execSync(t, k, python3, "-c", arpLie, cniGateway, m)
		// THEN the behaviour tier's record is that pod's too
		checkDetection(t, direct, m, expect{tool: "arp_spoofer", ctr: k, named: named})
	})

	t.Run("sandbox not ready", func(t *testing.T) {
		// GIVEN a pod whose pause process died: the runtime reports the
		// sandbox NotReady, its container still runs
		p := c.runPod(t, "orphan-77aa", "batch", false)
		k := c.createContainer(t, p, "worker", []string{"/bin/sleep", "3600"}, true)
		_, _, pausePid := c.sandboxStatus(t, p)
		if pausePid <= 0 {
			t.Fatalf("no pause pid for %s", p.name)
		}
		if err := syscall.Kill(pausePid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill pause %d: %v", pausePid, err)
		}
		waitFor(t, 30*time.Second, "sandbox NotReady", func() bool {
			state, _, _ := c.sandboxStatus(t, p)
			return state == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		})
		// WHEN a tool runs in the container THEN the record names its pod
		m := mark("notready")
		c.execSync(t, k, ettercap, "--version", m)
		checkDetection(t, direct, m, expect{tool: "ettercap", ctr: k, named: named})
	})

	t.Run("container exited before the lookup", func(t *testing.T) {
		// The gate says how long it held the lookup; past the receiver's
		// timeout the lookup rightly gave up (the slow-runtime case), which
		// a loaded machine can cause: then it is tried again, a few times.
		for attempt := 1; ; attempt++ {
			// GIVEN the gate held: the gated collector's lookup waits
			gate.hold()
			// WHEN a container whose process is the tool runs and exits,
			// and only then the runtime is asked
			m := mark(fmt.Sprintf("exited%d", attempt))
			k := c.createContainer(t, attacker, fmt.Sprintf("oneshot-%d", attempt), []string{ettercap, "--version", m}, true)
			c.waitContainerState(t, k, runtimeapi.ContainerState_CONTAINER_EXITED, 5*time.Second)
			waited := gate.release()
			t.Logf("attempt %d: the gate held the lookup %v (receiver's CRI timeout %v)", attempt, waited, k8s.DefaultTimeout)
			// THEN the direct collector named it while it ran
			checkDetection(t, direct, m, expect{tool: "ettercap", ctr: k, named: named, vpid: 1})
			// AND the runtime still knows the exited container: named
			if waited < k8s.DefaultTimeout-50*time.Millisecond {
				checkDetection(t, gated, m, expect{tool: "ettercap", ctr: k, named: named, vpid: 1})
				return
			}
			checkDetection(t, gated, m, expect{tool: "ettercap", ctr: k, named: namedOrNot, vpid: 1})
			if attempt == 3 {
				t.Logf("every attempt held the lookup past the receiver's timeout: the machine is too loaded to show the exited container named")
				return
			}
		}
	})

	t.Run("container removed before the lookup", func(t *testing.T) {
		before := gated.counter(t, lookupFailures)
		gate.hold()
		// WHEN the tool's container exits and is removed before the
		// runtime is asked
		m := mark("removed")
		k := c.createContainer(t, attacker, "gone", []string{ettercap, "--version", m}, true)
		c.waitContainerState(t, k, runtimeapi.ContainerState_CONTAINER_EXITED, 5*time.Second)
		c.removeContainer(t, k)
		gate.release()
		// THEN the record keeps the kernel's facts (container, pod uid from
		// the cgroup), names nothing, and the counter says so
		checkDetection(t, gated, m, expect{tool: "ettercap", ctr: k, named: unnamed, vpid: 1})
		waitCounter(t, gated, before+1)
	})

	t.Run("slow runtime", func(t *testing.T) {
		// GIVEN a runtime that does not answer (the gate held throughout)
		k := c.createContainer(t, attacker, "slow", []string{"/bin/sleep", "3600"}, true)
		before := gated.counter(t, lookupFailures)
		gate.hold()
		defer gate.release()
		// WHEN a tool runs THEN the record comes without the names
		m := mark("slow")
		c.execSync(t, k, ettercap, "--version", m)
		checkDetection(t, gated, m, expect{tool: "ettercap", ctr: k, named: unnamed})
		waitCounter(t, gated, before+1)
		// AND the direct collector named it
		checkDetection(t, direct, m, expect{tool: "ettercap", ctr: k, named: named})
	})

	t.Run("container not made by the kubelet", func(t *testing.T) {
		// GIVEN a container the same containerd runs outside the CRI (ctr,
		// another containerd namespace), in a cgroup with no pod
		id := c.ctrRun(t, busyboxArchive)
		before := direct.counter(t, lookupFailures)
		// WHEN a tool runs in it
		m := mark("ctr")
		c.ctr(t, "tasks", "exec", "--exec-id", "tool", id, ettercap, "--version", m)
		// THEN the record has the container and nothing of a pod
		recs := direct.records(t, m)
		if len(recs) != 1 {
			t.Fatalf("%d records with marker %s, want 1", len(recs), m)
		}
		res := recs[0].Resource
		if got := str(res, "container.id"); got != id {
			t.Errorf("container.id %q, want %q", got, id)
		}
		for _, k := range []string{"k8s.pod.uid", "k8s.pod.name", "k8s.namespace.name", "k8s.container.name", "container.image.name"} {
			if v, ok := res.Get(k); ok {
				t.Errorf("%s = %q on a container of no pod", k, v.AsString())
			}
		}
		waitCounter(t, direct, before+1)
	})

	t.Run("runtime restarted", func(t *testing.T) {
		// once stopped (its socket removed), once killed (its socket left,
		// connections refused), as a crash leaves it
		for _, how := range []string{"stopped", "killed"} {
			// GIVEN a running container nobody has looked up yet
			k := c.createContainer(t, attacker, "survivor-"+how, []string{"/bin/sleep", "3600"}, true)
			before := direct.counter(t, lookupFailures)
			// WHEN the runtime is down and a tool runs in the container
			// (runc execs it: the CRI is down with the daemon)
			if how == "stopped" {
				c.stop(t)
			} else {
				c.kill(t)
			}
			_, err := os.Stat(c.sock)
			t.Logf("%s %s; its socket: %v", spec.name, how, err)
			m := mark("down-" + how)
			runcExec(t, c, k, ettercap, "--version", m)
			down := time.Now()
			// THEN the record keeps the kernel's facts and names nothing
			checkDetection(t, direct, m, expect{tool: "ettercap", ctr: k, named: unnamed})
			waitCounter(t, direct, before+1)
			// WHEN the runtime is back, and a tool runs again
			c.start(t)
			if d := time.Until(down.Add(1500 * time.Millisecond)); d > 0 {
				time.Sleep(d) // past the refusal's time to live
			}
			m = mark("back-" + how)
			c.execSync(t, k, ettercap, "--version", m)
			// THEN the restarted runtime names the container's pod again
			checkDetection(t, direct, m, expect{tool: "ettercap", ctr: k, named: named})
		}
	})

	t.Run("no record names another pod", func(t *testing.T) {
		// every record either collector sent from one of the test's
		// containers, marked or not, names that container's pod or none
		for _, col := range []*collector{direct, gated} {
			recs, _ := col.sink.Records()
			seen := 0
			for _, r := range recs {
				k, ok := c.ctrs[str(r.Resource, "container.id")]
				if !ok {
					continue
				}
				seen++
				if uid := str(r.Resource, "k8s.pod.uid"); uid != k.pod.uid {
					t.Errorf("collector %s: container %s (pod %s) under k8s.pod.uid %q", col.name, k.name, k.pod.uid, uid)
				}
				for key, v := range map[string]string{"k8s.pod.name": k.pod.name, "k8s.namespace.name": k.pod.namespace, "k8s.container.name": k.name} {
					if got, ok := r.Resource.Get(key); ok && got.AsString() != v {
						t.Errorf("collector %s: container %s under %s %q, want %q or none", col.name, k.name, key, got.AsString(), v)
					}
				}
			}
			t.Logf("collector %s: %d records from the test's containers", col.name, seen)
			if seen == 0 {
				t.Errorf("collector %s: no record from the test's containers", col.name)
			}
		}
	})
}

// shellPid reads the pid the shell printed before exec'ing the tool.
func shellPid(t *testing.T, out string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("shell pid from %q: %v", out, err)
	}
	return pid
}

// checkDetection checks the one detection with marker in col's sink.
func checkDetection(t *testing.T, col *collector, marker string, want expect) {
	t.Helper()
	recs := col.records(t, marker)
	if len(recs) != 1 {
		t.Errorf("collector %s: %d records with marker %s, want 1", col.name, len(recs), marker)
		if len(recs) == 0 {
			return
		}
	}
	res, attrs := recs[0].Resource, recs[0].Record.Attributes()
	t.Logf("collector %s, %s: %s (%s) pid %d vpid %d, container %.12s, pod %s/%s %s, container %s, image %s", col.name, marker,
		str(attrs, "mitmexec.tool.name"), str(attrs, "mitmexec.match"), intAttr(attrs, "process.pid"), intAttr(attrs, "process.vpid"),
		str(res, "container.id"), str(res, "k8s.namespace.name"), str(res, "k8s.pod.name"), str(res, "k8s.pod.uid"),
		str(res, "k8s.container.name"), str(res, "container.image.name"))
	p := want.ctr.pod
	eq := func(m pcommon.Map, k, v string) {
		t.Helper()
		if got := str(m, k); got != v {
			t.Errorf("collector %s, %s: %s = %q, want %q", col.name, marker, k, got, v)
		}
	}
	eq(attrs, "mitmexec.tool.name", want.tool)
	// the kernel's facts, whatever the runtime said
	eq(res, "container.id", want.ctr.id)
	eq(res, "k8s.pod.uid", p.uid)
	pid, vpid := intAttr(attrs, "process.pid"), intAttr(attrs, "process.vpid")
	if vpid <= 0 || vpid == pid || (want.vpid != 0 && vpid != int64(want.vpid)) {
		t.Errorf("collector %s, %s: process.vpid %d (process.pid %d), want %d", col.name, marker, vpid, pid, want.vpid)
	}
	// the runtime's, or nothing: never another pod's
	names := map[string]string{"k8s.pod.name": p.name, "k8s.namespace.name": p.namespace, "k8s.container.name": want.ctr.name, "container.image.name": busyboxRepo}
	n := want.named
	if n == namedOrNot {
		n = unnamed
		if _, ok := res.Get("k8s.pod.name"); ok {
			n = named
		}
		t.Logf("collector %s, %s: runtime's names there: %v", col.name, marker, n == named)
	}
	for k, v := range names {
		if n == named {
			eq(res, k, v)
		} else if got, ok := res.Get(k); ok {
			t.Errorf("collector %s, %s: %s = %q, want none (the runtime did not answer)", col.name, marker, k, got.AsString())
		}
	}
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func intAttr(m pcommon.Map, k string) int64 {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	return 0
}

// waitCounter waits until col's pod lookup failure counter reaches at
// least want (the metrics are read when scraped).
func waitCounter(t *testing.T, col *collector, want float64) {
	t.Helper()
	var got float64
	waitFor(t, 10*time.Second, "counter "+lookupFailures, func() bool {
		got = col.counter(t, lookupFailures)
		return got >= want
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
