// SPDX-License-Identifier: Apache-2.0

package k8s

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mitmexec/mitmexec/internal/bounded"
)

// The labels the kubelet puts on every container it asks the runtime to
// create; they are how the runtime knows the pod at all.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// DefaultSockets returns the CRI sockets of containerd and CRI-O, in the
// order they are tried when no socket is named.
func DefaultSockets() []string {
	return []string{"/run/containerd/containerd.sock", "/run/crio/crio.sock"}
}

// Pod is what a container's runtime labels say about its pod, and the
// image the runtime says the container runs (its name without tag or
// digest, as semantic conventions' container.image.name has it; "" when
// the runtime knows the image only by its id).
type Pod struct {
	UID, Name, Namespace, Container, Image string
}

const (
	// DefaultTimeout bounds one CRI call. The runtime answers a status
	// query from memory in milliseconds; a runtime that takes longer is
	// stuck, and a detection must not wait on it.
	DefaultTimeout = 250 * time.Millisecond
	// failureTTL is how long a failed lookup is not retried, so that a
	// dead socket costs one timeout per container per interval, not one
	// per detection.
	failureTTL = 30 * time.Second
	// unavailableTTL is how long a refused connection is not retried. A
	// runtime that restarts (an upgrade, a crash) refuses for a second or
	// two and then knows every container again; a refusal costs well under
	// a millisecond, so asking again soon is cheap and the pods are named
	// again right after the restart instead of failureTTL later.
	unavailableTTL = time.Second
	// maxEntries bounds the cache: a node runs at most a few hundred
	// containers, but a churn of short-lived ones must not grow it forever.
	maxEntries = 4096
)

type entry struct {
	pod     Pod
	ok      bool
	expires time.Time // zero for an answer, which does not change
}

// Resolver asks the container runtime for a container's pod labels and
// caches the answer per container: labels are fixed at creation. It holds
// no connection between lookups (a node's new containers are few, a unix
// socket connects in well under a millisecond), so it needs no closing and
// leaves no goroutine behind when the receiver stops.
type Resolver struct {
	socket  string
	timeout time.Duration
	now     func() time.Time

	cache *bounded.Map[string, entry]

	failures atomic.Uint64
}

// FindSocket returns the first of candidates that exists as a socket, or "".
func FindSocket(candidates []string) string {
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return c
		}
	}
	return ""
}

// NewResolver returns a resolver talking to the CRI runtime service on the
// unix socket at socket. No connection is made until the first lookup;
// timeout <= 0 means DefaultTimeout.
func NewResolver(socket string, timeout time.Duration) (*Resolver, error) {
	if socket == "" {
		return nil, errors.New("cri socket: empty path")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Resolver{socket: socket, timeout: timeout, now: time.Now, cache: bounded.New[string, entry](maxEntries)}, nil
}

// Socket is the path the resolver asks.
func (r *Resolver) Socket() string { return r.socket }

// Lookup returns the pod of the container with id containerID. It returns
// false when the runtime does not know the container, does not answer
// within the timeout, or the container was not made by the kubelet.
func (r *Resolver) Lookup(ctx context.Context, containerID string) (Pod, bool) {
	if r == nil || containerID == "" {
		return Pod{}, false
	}
	now := r.now()
	e, hit := r.cache.Get(containerID)
	if hit && (e.expires.IsZero() || now.Before(e.expires)) {
		if !e.ok {
			r.failures.Add(1)
		}
		return e.pod, e.ok
	}

	pod, err := r.query(ctx, containerID)
	e = entry{pod: pod, ok: err == nil}
	if err != nil {
		r.failures.Add(1)
		e.expires = now.Add(failureTTL)
		if status.Code(err) == codes.Unavailable {
			e.expires = now.Add(unavailableTTL)
		}
	}
	r.cache.Put(containerID, e) // a container evicted while it runs is asked again once
	return e.pod, e.ok
}

// Failures counts the lookups that named no pod: the runtime did not know
// the container, did not answer in time, refused the connection, or the
// container was not the kubelet's. Each detection in a container that went
// out without its pod's name counts once.
func (r *Resolver) Failures() uint64 {
	if r == nil {
		return 0
	}
	return r.failures.Load()
}

func (r *Resolver) query(ctx context.Context, containerID string) (Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+r.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return Pod{}, fmt.Errorf("cri socket %q: %w", r.socket, err)
	}
	defer conn.Close()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: containerID})
	if err != nil {
		return Pod{}, err
	}
	labels := resp.GetStatus().GetLabels()
	pod := Pod{
		UID:       labels[LabelPodUID],
		Name:      labels[LabelPodName],
		Namespace: labels[LabelPodNamespace],
		Container: labels[LabelContainerName],
		Image:     ImageName(resp.GetStatus().GetImage().GetImage()),
	}
	if pod.Name == "" && pod.Namespace == "" {
		return Pod{}, fmt.Errorf("container %q: no label %s", containerID, LabelPodName)
	}
	return pod, nil
}

// ImageName returns the repository of an image reference as the runtime
// reports it ("registry.example/team/app:1.2@sha256:..." gives
// "registry.example/team/app"), or "" for a bare image id ("sha256:<hex>"
// or 64 hex digits, which containerd reports for an image that has lost its
// tags): an id is no name.
func ImageName(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if strings.HasPrefix(ref, "sha256:") || isHex64(ref) {
		return ""
	}
	// A tag follows the last colon after the last slash; a colon before
	// it is a registry's port.
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
