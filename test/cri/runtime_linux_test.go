// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

// A containerd of the test's own: its root, state, socket, runc root and
// CNI configuration in one temporary directory, its network namespace one
// the test makes (host-network pods and the CNI's host side live there, not
// in the machine's), its containers' cgroups under one parent of the
// test's. Teardown removes every pod through the CRI, stops containerd and
// then checks that no containerd, shim, mount, cgroup or network namespace
// of the test is left.

import (
	"bytes"
	"context"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mitmexec/mitmexec/internal/testenv"
)

const (
	// containerd2Version is the containerd 2.x test/setup.sh builds.
	containerd2Version = "v2.4.2"
	// containerd2Env names the directory holding that build's containerd
	// and containerd-shim-runc-v2 when not at containerd2Dir's default.
	containerd2Env = "MITMEXEC_CONTAINERD2"
	debianCtr      = "/usr/bin/ctr"
	cniBinDir      = "/usr/lib/cni" // containernetworking-plugins
	readyTimeout   = 30 * time.Second
	stopTimeout    = 15 * time.Second
)

// runtimeSpec names one containerd to run.
type runtimeSpec struct {
	name       string // in test names and messages
	containerd string // the daemon
	shimDir    string // holds the containerd-shim-runc-v2 that goes with it
	config     *template.Template
}

// debianContainerd is Debian's containerd 1.6 and its shim.
func debianContainerd(t *testing.T) runtimeSpec {
	t.Helper()
	requireFiles(t, "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc", debianCtr)
	return runtimeSpec{name: "containerd-1.6", containerd: "/usr/bin/containerd", shimDir: "/usr/bin", config: configV16}
}

// containerd2Dir is where test/setup.sh installs the containerd 2.x build.
func containerd2Dir() string {
	if d := os.Getenv(containerd2Env); d != "" {
		return d
	}
	return filepath.Join(build.Default.GOPATH, "mitmexec", "containerd-"+containerd2Version)
}

// builtContainerd is the containerd 2.x test/setup.sh builds.
func builtContainerd(t *testing.T) runtimeSpec {
	t.Helper()
	dir := containerd2Dir()
	requireFiles(t, filepath.Join(dir, "containerd"), filepath.Join(dir, "containerd-shim-runc-v2"), "/usr/sbin/runc", debianCtr)
	return runtimeSpec{name: "containerd-2", containerd: filepath.Join(dir, "containerd"), shimDir: dir, config: configV2}
}

// requireFiles skips (or fails under CI=true) when one is missing.
func requireFiles(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			testenv.SkipOrFail(t, "%s missing (%v): run test/setup.sh as root", p, err)
		}
	}
}

// Both configurations: cgroupfs (pid 1 is no systemd here), a bounded
// oom_score_adj (the bounding set lacks CAP_SYS_RESOURCE), the pods'
// network namespaces mounted under the state directory, no AppArmor.
var configV16 = template.Must(template.New("1.6").Parse(`version = 2
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
[grpc]
  address = "{{.Sock}}"
[ttrpc]
  address = "{{.Sock}}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{{.Dir}}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBin}}"
    conf_dir = "{{.Dir}}/cni"
`))

var configV2 = template.Must(template.New("2").Parse(`version = 4
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
imports = []
[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "{{.Sock}}"
  [plugins.'io.containerd.server.v1.ttrpc']
    address = "{{.Sock}}.ttrpc"
  [plugins.'io.containerd.internal.v1.opt']
    path = "{{.Dir}}/opt"
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "{{.Pause}}"
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    disable_apparmor = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{{.Dir}}/runc"
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["{{.CNIBin}}"]
      conf_dir = "{{.Dir}}/cni"
`))

// containerd is one running (or stopped) daemon of the test.
type containerd struct {
	spec   runtimeSpec
	dir    string // everything it writes
	sock   string
	netns  string // its network namespace, /run/netns/<netns>
	cgroup string // the parent of every pod's cgroup, "/mitmexec-cri-..."
	log    *os.File
	cmd    *exec.Cmd
	done   chan struct{}
	ctrs   map[string]*ctr // every container made through the CRI, by id

	grpcConn *grpc.ClientConn
	client   runtimeapi.RuntimeServiceClient
}

// startContainerd makes the directory, network namespace and
// configuration, starts the daemon and registers the teardown and its
// check. The directory is short (the socket path must fit sun_path).
func startContainerd(t *testing.T, spec runtimeSpec) *containerd {
	t.Helper()
	dir, err := os.MkdirTemp("", "mxcri")
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Base(dir)
	c := &containerd{spec: spec, dir: dir, sock: filepath.Join(dir, "containerd.sock"), netns: id, cgroup: "/kubepods/mitmexec-cri-" + id, ctrs: map[string]*ctr{}}
	before := snapshotLeaks(c)
	t.Cleanup(func() { c.teardown(t, before) })
	for _, d := range []string{"cni", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeCNIConfig(t, dir)
	var cfg bytes.Buffer
	if err := spec.config.Execute(&cfg, map[string]string{"Dir": dir, "Sock": c.sock, "Pause": pauseImage, "CNIBin": cniBinDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"netns", "add", c.netns}, {"-n", c.netns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	c.log, err = os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.start(t)
	return c
}

// start runs the daemon in the test's network namespace (nsenter enters
// only that one: the mounts it makes are the host's, where teardown can
// see them) and waits until its CRI answers.
func (c *containerd) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+c.netns, "--", c.spec.containerd, "--config", filepath.Join(c.dir, "config.toml"))
	cmd.Env = append(os.Environ(), "PATH="+c.spec.shimDir+":/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.Stdout, cmd.Stderr = c.log, c.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.spec.containerd, err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		v, err := c.runtime(t).Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			t.Logf("%s: %s %s, CRI %s", c.spec.name, v.GetRuntimeName(), v.GetRuntimeVersion(), v.GetRuntimeApiVersion())
			return
		}
		select {
		case <-c.done:
			t.Fatalf("%s exited before its CRI answered: %v\n%s", c.spec.name, err, c.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: CRI not ready after %v: %v\n%s", c.spec.name, readyTimeout, err, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the daemon (TERM, then KILL); the shims and containers live on,
// as they do when a node's runtime restarts.
func (c *containerd) stop(t *testing.T) {
	t.Helper()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		t.Errorf("%s did not stop %v after SIGTERM, killed it", c.spec.name, stopTimeout)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// kill ends the daemon with SIGKILL, as a crash does: its socket file stays
// and connections to it are refused.
func (c *containerd) kill(t *testing.T) {
	t.Helper()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	c.cmd = nil
}

func (c *containerd) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// runtime is the CRI client of the daemon: one connection for the test,
// which gRPC makes again after a restart (quickly: the backoff is short).
func (c *containerd) runtime(t *testing.T) runtimeapi.RuntimeServiceClient {
	t.Helper()
	if c.client == nil {
		conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, MaxDelay: 250 * time.Millisecond},
				MinConnectTimeout: time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		c.grpcConn, c.client = conn, runtimeapi.NewRuntimeServiceClient(conn)
	}
	return c.client
}

// ctrNamespace is the containerd namespace of the containers the test runs
// with ctr, beside the CRI's k8s.io: a node's docker or nerdctl containers.
const ctrNamespace = "mitmexec-test"

// ctr runs Debian's ctr against the daemon in ctrNamespace.
func (c *containerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(debianCtr, append([]string{"--address", c.sock, "--namespace", ctrNamespace}, args...)...).CombinedOutput()
	if err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("ctr %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// ctrRun imports the busybox image into ctrNamespace and runs a container
// of it there (its cgroup under the test's parent, no pod in its path),
// removed at the end of the test. Its id has the form of the CRI's, so
// that the cgroup path names it.
func (c *containerd) ctrRun(t *testing.T, archive string) string {
	t.Helper()
	id := strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", "")
	if out, err := exec.Command(debianCtr, "--address", c.sock, "--namespace", ctrNamespace, "images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	out, err := exec.Command(debianCtr, "--address", c.sock, "--namespace", ctrNamespace, "run", "--detach",
		"--cgroup", c.cgroup+"/ctr/"+id, "--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro",
		busyboxImage, id, "/bin/sleep", "3600").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		c.ctr(t, "tasks", "kill", "--signal", "SIGKILL", id)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if out, err := exec.Command(debianCtr, "--address", c.sock, "--namespace", ctrNamespace, "tasks", "delete", id).CombinedOutput(); err == nil || strings.Contains(string(out), "not found") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.ctr(t, "containers", "delete", id)
	})
	return id
}

// importImage imports an OCI archive into the CRI's namespace with
// Debian's ctr (its client API serves containerd 2 as well).
func (c *containerd) importImage(t *testing.T, archive string) {
	t.Helper()
	out, err := exec.Command(debianCtr, "--address", c.sock, "--namespace", "k8s.io", "images", "import", "--no-unpack=false", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images import %s: %v\n%s", archive, err, out)
	}
}

// teardown removes every pod through the CRI, stops the daemon, removes
// the network namespace and the cgroup parents the kubelet would remove,
// then fails the test for anything of the test's still there.
func (c *containerd) teardown(t *testing.T, before leakSnapshot) {
	if c.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rt := c.runtime(t)
		if list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil {
			t.Errorf("teardown: list pods: %v", err)
		} else {
			for _, s := range list.GetItems() {
				if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.GetId()}); err != nil {
					t.Errorf("teardown: stop pod %s: %v", s.GetMetadata().GetName(), err)
				}
				if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.GetId()}); err != nil {
					t.Errorf("teardown: remove pod %s: %v", s.GetMetadata().GetName(), err)
				}
			}
		}
		cancel()
		c.stop(t)
	}
	if c.grpcConn != nil {
		_ = c.grpcConn.Close()
	}
	if c.log != nil {
		_ = c.log.Close()
	}
	// The daemon's own directories are unmounted by now; the shims exit
	// once their last task is deleted, which takes a moment.
	deadline := time.Now().Add(10 * time.Second)
	var leaks []string
	for {
		leaks = findLeaks(c, before)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, l := range leaks {
		t.Errorf("teardown left behind: %s", l)
	}
	cleanupLeaks(t, c, leaks)
	if t.Failed() {
		t.Logf("%s log tail:\n%s", c.spec.name, c.logTail())
	}
	_ = os.RemoveAll(c.dir)
}

func (c *containerd) String() string { return fmt.Sprintf("%s at %s", c.spec.name, c.sock) }
