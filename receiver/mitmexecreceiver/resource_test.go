// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/k8s"
)

const podContainerID = "9d2a6e1c0b7f4a3e8c5d2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6"

// criRuntime answers ContainerStatus like containerd for one container the
// kubelet created.
type criRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

func (criRuntime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if req.GetContainerId() != podContainerID {
		return nil, status.Error(codes.NotFound, "no such container")
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: podContainerID, Image: &runtimeapi.ImageSpec{Image: "registry.example:5000/tools/debug:1.4"}, Labels: map[string]string{
		k8s.LabelPodName: "debug-shell", k8s.LabelPodNamespace: "payments", k8s.LabelContainerName: "toolbox",
		k8s.LabelPodUID: "0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
	}}}, nil
}

func TestTranslateResourceNamesThePodFromTheCRIRuntime(t *testing.T) {
	// GIVEN a node whose runtime answers on its CRI socket, and the
	// DaemonSet's environment naming the node
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, criRuntime{})
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	t.Setenv(envCRISocket, sock)
	t.Setenv(envNodeName, "worker-3")
	res := nodeResource(resourceInfo{HostName: "worker-3", HostID: "0123456789abcdef0123456789abcdef", OSType: "linux"}, zap.NewNop())

	// WHEN a tool runs in a pod's container (systemd cgroup driver)
	cgroup := "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f6b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d.slice/cri-containerd-" + podContainerID + ".scope"
	rec := detectionRecord{Exec: event.Exec{PID: 42, Cgroup: cgroup}, Context: enrich.Context{ContainerID: enrich.ContainerID(cgroup)}}
	ld, _ := newLogs(res.forRecord(context.Background(), &rec))

	// THEN its resource names the container, the pod, the namespace and the node
	got := ld.ResourceLogs().At(0).Resource().Attributes()
	want := map[string]string{
		"container.id": podContainerID, "k8s.pod.uid": "0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		"k8s.pod.name": "debug-shell", "k8s.namespace.name": "payments", "k8s.container.name": "toolbox",
		"container.image.name": "registry.example:5000/tools/debug",
		"k8s.node.name":        "worker-3", "host.name": "worker-3",
		"service.instance.id": instanceID("0123456789abcdef0123456789abcdef", ""),
	}
	for k, v := range want {
		if a, ok := got.Get(k); !ok || a.Str() != v {
			t.Errorf("resource %s = %q, want %q", k, attrString(got, k), v)
		}
	}

	// AND a process on the host itself carries no pod
	host := detectionRecord{Exec: event.Exec{PID: 43, Cgroup: "/user.slice/user-0.slice/session-1.scope"}}
	ld, _ = newLogs(res.forRecord(context.Background(), &host))
	hostAttrs := ld.ResourceLogs().At(0).Resource().Attributes()
	for _, k := range []string{"container.id", "k8s.pod.uid", "k8s.pod.name", "k8s.namespace.name", "k8s.container.name"} {
		if _, ok := hostAttrs.Get(k); ok {
			t.Errorf("host process's resource has %s", k)
		}
	}
}

func TestTranslateResourceWithoutRuntimeKeepsTheUID(t *testing.T) {
	// GIVEN a CRI socket path nobody answers on
	t.Setenv(envCRISocket, filepath.Join(t.TempDir(), "gone.sock"))
	t.Setenv(envNodeName, "")
	res := nodeResource(resourceInfo{HostName: "n"}, zap.NewNop())
	cgroup := "/kubepods/burstable/pod0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/" + podContainerID
	rec := detectionRecord{Exec: event.Exec{Cgroup: cgroup}}
	start := time.Now()
	ld, _ := newLogs(res.forRecord(context.Background(), &rec))
	if d := time.Since(start); d > time.Second {
		t.Errorf("a dead runtime held the record %v", d)
	}
	// THEN the cgroup's facts are there and the runtime's are left out
	a := ld.ResourceLogs().At(0).Resource().Attributes()
	if attrString(a, "k8s.pod.uid") != "0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" || attrString(a, "container.id") != podContainerID {
		t.Errorf("uid %q container %q", attrString(a, "k8s.pod.uid"), attrString(a, "container.id"))
	}
	if _, ok := a.Get("k8s.pod.name"); ok {
		t.Error("k8s.pod.name without an answer from the runtime")
	}
}

func TestTranslateResourceServiceInstanceIDPerHost(t *testing.T) {
	// The same machine id always gives the same stream; two hosts two.
	a1, a2 := instanceID("0123456789abcdef0123456789abcdef", "x"), instanceID("0123456789abcdef0123456789abcdef", "y")
	b := instanceID("fedcba9876543210fedcba9876543210", "x")
	if a1 == "" || a1 != a2 || a1 == b {
		t.Errorf("instance ids %q %q %q", a1, a2, b)
	}
	if len(a1) != 36 || a1[14] != '5' {
		t.Errorf("%q is not a UUIDv5", a1)
	}
	// Without a machine id the node's name stands in; without either, none.
	if instanceID("", "worker-3") == "" || instanceID("", "") != "" {
		t.Error("fallback instance id wrong")
	}
	// And it is on the resource of every record.
	ld, _ := newLogs(resourceInfo{HostName: "h", ServiceInstanceID: a1})
	if attrString(ld.ResourceLogs().At(0).Resource().Attributes(), "service.instance.id") != a1 {
		t.Error("service.instance.id missing from the resource")
	}
}

func attrString(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func TestModuleLoadBeforeItsExecKeepsThePod(t *testing.T) {
	// GIVEN a python process in a pod's container that opened a tool's
	// module before its exec record was judged: only /proc describes it
	root := t.TempDir()
	dir := filepath.Join(root, "4242")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cgroup := "/kubepods/besteffort/pod0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/" + podContainerID
	for name, body := range map[string]string{
		"cgroup": "12:pids:" + cgroup + "\n1:name=systemd:" + cgroup + "\n0::" + cgroup + "\n",
		"status": "Name:\tpython3\nTgid:\t4242\nNSpid:\t4242\t36\nPPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n",
		"stat":   "4242 (python3) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &mitmexecReceiver{procRoot: root, bootClock: func() time.Duration { return time.Hour }}
	// WHEN its context is read from /proc
	e := r.execFromProc(4242)
	// THEN the record has the container, the pod and the pid inside it
	rec := detectionRecord{Exec: e}
	ld, _ := newLogs(resourceInfo{HostName: "n"}.forRecord(context.Background(), &rec))
	a := ld.ResourceLogs().At(0).Resource().Attributes()
	if attrString(a, "container.id") != podContainerID || attrString(a, "k8s.pod.uid") != "0f6b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" {
		t.Errorf("container %q pod uid %q from /proc", attrString(a, "container.id"), attrString(a, "k8s.pod.uid"))
	}
	if e.VPID != 36 {
		t.Errorf("VPID %d from NSpid, want 36", e.VPID)
	}
}
