// SPDX-License-Identifier: Apache-2.0

package k8s

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodUID(t *testing.T) {
	const uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
	cases := map[string]string{
		// systemd driver (containerd, CRI-O)
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/cri-containerd-" + hex64 + ".scope": uid,
		"/kubepods.slice/kubepods-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/crio-" + hex64 + ".scope":                                              uid,
		// cgroupfs driver
		"/kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/" + hex64: uid,
		// kind: the node's own kubelet.slice nests the pods
		"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/cri-containerd-" + hex64 + ".scope": uid,
		// not a pod
		"/user.slice/user-0.slice/session-1.scope": "",
		// a user's own cgroups named like the kubelet's
		"/user.slice/user-1000.slice/user@1000.service/kubepods/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/x": "",
		"/mxaudit/x/y/kubepods/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/x":                                  "",
		"/system.slice/docker-" + hex64 + ".scope":                                                         "",
		"/system.slice/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427.service":                                    "",
		"": "",
	}
	for cg, want := range cases {
		if got := PodUID(cg); got != want {
			t.Errorf("PodUID(%q) = %q, want %q", cg, got, want)
		}
	}
}

const hex64 = "4c01db0b339c1a4b5d1e6f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e"

// fakeRuntime is a CRI runtime service that knows a fixed set of
// containers, as containerd or CRI-O would after the kubelet created them.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	containers map[string]map[string]string
	delay      time.Duration
	calls      atomic.Int32
}

func (f *fakeRuntime) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	labels, ok := f.containers[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q not found", req.GetContainerId())
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: req.GetContainerId(), Labels: labels,
		Image: &runtimeapi.ImageSpec{Image: "registry.example:5000/shop/shell:2.1"}}}, nil
}

// serve runs f on a unix socket in a temporary directory, speaking the
// real CRI gRPC protocol, and returns the socket's path.
func serve(t *testing.T, f *fakeRuntime) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return sock
}

func kubeletLabels() map[string]string {
	return map[string]string{
		LabelPodName: "attacker-7d9f", LabelPodNamespace: "shop", LabelContainerName: "shell",
		LabelPodUID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "io.kubernetes.pod.terminationGracePeriod": "30",
	}
}

func TestResolverAnswersFromRuntimeAndCaches(t *testing.T) {
	// GIVEN a runtime that knows one kubelet-made container
	f := &fakeRuntime{containers: map[string]map[string]string{hex64: kubeletLabels()}}
	sock := serve(t, f)
	if FindSocket([]string{filepath.Join(t.TempDir(), "absent.sock"), sock}) != sock {
		t.Fatal("FindSocket did not find the runtime's socket")
	}
	r, err := NewResolver(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// WHEN the container is looked up twice
	for range 2 {
		pod, ok := r.Lookup(context.Background(), hex64)
		// THEN the pod is named from the kubelet's labels
		want := Pod{UID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", Name: "attacker-7d9f", Namespace: "shop", Container: "shell",
			Image: "registry.example:5000/shop/shell"}
		if !ok || pod != want {
			t.Fatalf("Lookup = %+v, %v; want %+v", pod, ok, want)
		}
	}
	// AND the runtime was asked once: labels are fixed at creation
	if n := f.calls.Load(); n != 1 {
		t.Errorf("runtime asked %d times, want 1", n)
	}
}

func TestResolverUnknownContainer(t *testing.T) {
	f := &fakeRuntime{containers: map[string]map[string]string{
		hex64:                      kubeletLabels(),
		"docker-run-not-a-pod-123": {"maintainer": "x"},
	}}
	r, err := NewResolver(serve(t, f), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"0000000000000000000000000000000000000000000000000000000000000000", "docker-run-not-a-pod-123"} {
		if pod, ok := r.Lookup(context.Background(), id); ok {
			t.Errorf("Lookup(%q) = %+v, want nothing", id, pod)
		}
	}
	// A failure is remembered for a while: no second call for the same id.
	before := f.calls.Load()
	r.Lookup(context.Background(), "docker-run-not-a-pod-123")
	if f.calls.Load() != before {
		t.Error("a failed lookup was retried at once")
	}
	// After the failure's time to live it is asked again.
	r.now = func() time.Time { return time.Now().Add(failureTTL + time.Second) }
	r.Lookup(context.Background(), "docker-run-not-a-pod-123")
	if f.calls.Load() != before+1 {
		t.Error("a failed lookup was not retried after its time to live")
	}
}

func TestResolverIsBounded(t *testing.T) {
	// GIVEN a runtime that hangs
	f := &fakeRuntime{containers: map[string]map[string]string{hex64: kubeletLabels()}, delay: 10 * time.Second}
	r, err := NewResolver(serve(t, f), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// WHEN a container is looked up
	_, ok := r.Lookup(context.Background(), hex64)
	// THEN the lookup gives up at its timeout, without the attributes
	if ok {
		t.Error("a hanging runtime produced a pod")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("lookup took %v against a 100ms timeout", d)
	}
}

func TestResolverWithoutRuntime(t *testing.T) {
	// A socket nobody listens on fails fast, not at the timeout's end.
	r, err := NewResolver(filepath.Join(t.TempDir(), "gone.sock"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, ok := r.Lookup(context.Background(), hex64); ok {
		t.Error("lookup without a runtime succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("lookup without a runtime took %v", d)
	}
	if _, err := NewResolver("", 0); err == nil {
		t.Error("NewResolver accepted an empty socket path")
	}
	var nilR *Resolver
	if _, ok := nilR.Lookup(context.Background(), hex64); ok {
		t.Error("a nil resolver must answer nothing")
	}
}

func TestImageName(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/library/busybox:1.36":                     "docker.io/library/busybox",
		"registry.example:5000/team/app:1.2@sha256:" + hex64: "registry.example:5000/team/app",
		"registry.example:5000/team/app":                     "registry.example:5000/team/app",
		"quay.io/app@sha256:" + hex64:                        "quay.io/app",
		"sha256:" + hex64:                                    "",
		hex64:                                                "",
		"":                                                   "",
	} {
		if got := ImageName(ref); got != want {
			t.Errorf("ImageName(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestResolverCountsFailuresAndRetriesARefusalSoon(t *testing.T) {
	// GIVEN a socket path where the runtime is down (restarting)
	r, err := NewResolver(filepath.Join(t.TempDir(), "restarting.sock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// WHEN a container is looked up twice while it is down
	r.Lookup(context.Background(), hex64)
	r.Lookup(context.Background(), hex64)
	// THEN both detections count as unnamed
	if n := r.Failures(); n != 2 {
		t.Errorf("Failures() = %d, want 2", n)
	}
	// AND a refusal is not remembered for failureTTL: after unavailableTTL
	// the runtime is asked again
	e, _ := r.cache.Get(hex64)
	if e.ok || e.expires.Sub(time.Now()) > unavailableTTL {
		t.Errorf("refused lookup cached until %v (ok %v), want at most %v", e.expires, e.ok, unavailableTTL)
	}
	var nilR *Resolver
	if nilR.Failures() != 0 {
		t.Error("nil resolver counts failures")
	}
}
