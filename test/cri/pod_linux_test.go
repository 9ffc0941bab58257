// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

// Pods and containers made through the CRI as the kubelet makes them: its
// labels on both, the cgroupfs driver's pod cgroup as the sandbox's parent.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mitmexec/mitmexec/internal/k8s"
)

const callTimeout = 2 * time.Minute

// pod is a sandbox the test made.
type pod struct {
	name, namespace, uid string
	id                   string // the sandbox's id
	cfg                  *runtimeapi.PodSandboxConfig
}

// ctr is a container the test made.
type ctr struct {
	name, id string
	pod      *pod
}

func podLabels(name, namespace, uid string) map[string]string {
	return map[string]string{k8s.LabelPodName: name, k8s.LabelPodNamespace: namespace, k8s.LabelPodUID: uid}
}

// runPod makes a pod. With ownNetwork it gets its own network namespace
// from the CNI configuration (writeCNIConfig); without, it shares the
// daemon's (the test's namespace: the host network of this fake node).
func (c *containerd) runPod(t *testing.T, name, namespace string, ownNetwork bool) *pod {
	t.Helper()
	uid := uuid.NewString()
	mode := runtimeapi.NamespaceMode_NODE
	if ownNetwork {
		mode = runtimeapi.NamespaceMode_POD
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		LogDirectory: filepath.Join(c.dir, "logs", uid),
		Labels:       podLabels(name, namespace, uid),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// the kubelet's cgroupfs layout, under the test's own parent
			CgroupParent: c.cgroup + "/besteffort/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: mode, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	if ownNetwork {
		// a host-network pod shares the node's UTS namespace: runc
		// refuses a hostname there, and the kubelet sets none
		cfg.Hostname = name
	}
	if err := os.MkdirAll(cfg.LogDirectory, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := c.runtime(t).RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("%s: RunPodSandbox %s/%s: %v\n%s", c.spec.name, namespace, name, err, c.logTail())
	}
	return &pod{name: name, namespace: namespace, uid: uid, id: resp.GetPodSandboxId(), cfg: cfg}
}

// hostUsr mounts the host's /usr read only: the tools as installed.
var hostUsr = []*runtimeapi.Mount{{ContainerPath: "/usr", HostPath: "/usr", Readonly: true}}

// createContainer creates (and with start, starts) a busybox container in
// p running command.
func (c *containerd) createContainer(t *testing.T, p *pod, name string, command []string, start bool) *ctr {
	t.Helper()
	labels := podLabels(p.name, p.namespace, p.uid)
	labels[k8s.LabelContainerName] = name
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxImage},
		Command:  command,
		LogPath:  name + ".log",
		Labels:   labels,
		Mounts:   hostUsr,
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: p.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	rt := c.runtime(t)
	resp, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
	if err != nil {
		t.Fatalf("%s: CreateContainer %s in %s: %v\n%s", c.spec.name, name, p.name, err, c.logTail())
	}
	k := &ctr{name: name, id: resp.GetContainerId(), pod: p}
	c.ctrs[k.id] = k
	if start {
		c.startContainer(t, k)
	}
	return k
}

func (c *containerd) startContainer(t *testing.T, k *ctr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := c.runtime(t).StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: k.id}); err != nil {
		t.Fatalf("%s: StartContainer %s: %v\n%s", c.spec.name, k.name, err, c.logTail())
	}
}

// execSync runs cmd in k through the CRI and returns its standard output;
// the exit code is not checked (tools asked for their usage exit 1).
func (c *containerd) execSync(t *testing.T, k *ctr, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := c.runtime(t).ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: k.id, Cmd: cmd, Timeout: 60})
	if err != nil {
		t.Fatalf("%s: ExecSync %v in %s: %v", c.spec.name, cmd, k.name, err)
	}
	t.Logf("exec %v in %s: exit %d", cmd, k.name, resp.GetExitCode())
	return string(resp.GetStdout())
}

// waitContainerState polls until k is in state or the timeout passes.
func (c *containerd) waitContainerState(t *testing.T, k *ctr, state runtimeapi.ContainerState, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := c.runtime(t).ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: k.id})
		cancel()
		if err == nil && resp.GetStatus().GetState() == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: container %s not %v after %v (%v, %v)", c.spec.name, k.name, state, timeout, resp.GetStatus().GetState(), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sandboxStatus returns p's state, its IP and the pid of its pause process
// (from the verbose info both containerd versions give).
func (c *containerd) sandboxStatus(t *testing.T, p *pod) (runtimeapi.PodSandboxState, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.runtime(t).PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id, Verbose: true})
	if err != nil {
		t.Fatalf("%s: PodSandboxStatus %s: %v", c.spec.name, p.name, err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if s := resp.GetInfo()["info"]; s != "" {
		if err := json.Unmarshal([]byte(s), &info); err != nil {
			t.Fatalf("%s: sandbox info of %s: %v", c.spec.name, p.name, err)
		}
	}
	return resp.GetStatus().GetState(), resp.GetStatus().GetNetwork().GetIp(), info.Pid
}

// writeCNIConfig gives pods with their own network namespace a ptp link to
// the daemon's namespace (the test's, not the host's) and an address from
// a range that exists only there.
func writeCNIConfig(t *testing.T, dir string) {
	t.Helper()
	conf := `{"cniVersion": "0.4.0", "name": "mitmexec-test", "plugins": [
  {"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": "` + cniSubnet + `"}]], "dataDir": "` + filepath.Join(dir, "ipam") + `"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "cni", "10-mitmexec.conflist"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cniSubnet is the pods' range; it is routed only inside the test's
// network namespace.
const cniSubnet = "10.211.0.0/24"

// cniGateway is the address host-local gives the gateway: ptp puts it on
// the host side of each pod's link, never on the pod's interface.
const cniGateway = "10.211.0.1"

func inCNISubnet(ip string) bool { return strings.HasPrefix(ip, "10.211.0.") }

func (c *containerd) removeContainer(t *testing.T, k *ctr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := c.runtime(t).RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: k.id}); err != nil {
		t.Fatalf("%s: RemoveContainer %s: %v", c.spec.name, k.name, err)
	}
}

// runcExec runs cmd in k with runc itself, as an operator can while the
// daemon is down: the shim keeps the container, runc's state is under the
// runtime's root per containerd namespace.
func runcExec(t *testing.T, c *containerd, k *ctr, cmd ...string) {
	t.Helper()
	args := append([]string{"--root", filepath.Join(c.dir, "runc", "k8s.io"), "exec", k.id}, cmd...)
	out, err := exec.Command("/usr/sbin/runc", args...).CombinedOutput()
	t.Logf("runc exec %v in %s: %v", cmd, k.name, err)
	if err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("runc %v: %v\n%s", args, err, out)
	}
}
