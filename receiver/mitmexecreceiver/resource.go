// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"context"
	"os"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/mitmexec/mitmexec/internal/enrich"
	"github.com/mitmexec/mitmexec/internal/k8s"
	"github.com/mitmexec/mitmexec/internal/record"
)

// Environment the DaemonSet sets: the node's name from the downward API, and
// optionally the CRI socket when the runtime's is not at a default path.
const (
	envNodeName  = "K8S_NODE_NAME"
	envCRISocket = "MITMEXEC_CRI_SOCKET"
)

// instanceNamespace is the UUIDv5 namespace of service.instance.id, fixed so
// that the same machine id always gives the same instance id, and one of
// this receiver's own so the id differs from other tools' derivations of it.
const instanceNamespace = "6f1c6b0e-52a3-4b63-9a53-0b6f3f7d2c11"

// podLookup names the pod of a container; *k8s.Resolver on a node.
type podLookup interface {
	Lookup(ctx context.Context, containerID string) (k8s.Pod, bool)
	// Failures counts the lookups that named no pod.
	Failures() uint64
}

// podResource is the container and pod a record's process ran in.
type podResource struct {
	ContainerID, UID, Name, Namespace, Container, Image string
}

// instanceID returns service.instance.id for a host: a UUIDv5 of its machine
// id, stable across restarts and reinstalls of the collector, so that each
// host is its own Loki stream. Without a machine id the node's or the host's
// name stands in (still stable, though a renamed host becomes a new one).
func instanceID(machineID, fallback string) string {
	key := machineID
	if key == "" {
		key = fallback
	}
	if key == "" {
		return ""
	}
	return uuid.NewSHA1(uuid.MustParse(instanceNamespace), []byte(key)).String()
}

// nodeResource completes the host's resource with the per-host stream id
// and, on a Kubernetes node, the node's name and the container runtime to
// ask for pods. A missing runtime only leaves the pod's names out.
func nodeResource(res resourceInfo, logger *zap.Logger) resourceInfo {
	res.NodeName = os.Getenv(envNodeName)
	fallback := res.NodeName
	if fallback == "" {
		fallback = res.HostName
	}
	res.ServiceInstanceID = instanceID(res.HostID, fallback)

	socket := os.Getenv(envCRISocket)
	if socket == "" {
		socket = k8s.FindSocket(k8s.DefaultSockets())
	}
	if socket == "" {
		if res.NodeName != "" {
			logger.Warn("no container runtime socket: detections in pods carry k8s.pod.uid but not the pod's name or namespace",
				zap.Strings("tried", k8s.DefaultSockets()), zap.String("env", envCRISocket))
		}
		return res
	}
	pods, err := k8s.NewResolver(socket, k8s.DefaultTimeout)
	if err != nil {
		logger.Warn("container runtime socket unusable: pods are not named", zap.Error(err))
		return res
	}
	logger.Info("pods are named by the container runtime", zap.String("cri_socket", pods.Socket()))
	res.pods = pods
	return res
}

// forRecord returns the resource for rec: the host's, plus the container and
// its pod when the process ran in one. The pod's UID comes from the cgroup
// path; its names from the runtime, within the resolver's timeout.
func (res resourceInfo) forRecord(ctx context.Context, rec *detectionRecord) resourceInfo {
	id := rec.Context.ContainerID
	if id == "" {
		id = enrich.ContainerIDOf(&rec.Exec)
	}
	if id == "" {
		return res
	}
	res.Pod = podResource{ContainerID: id, UID: k8s.PodUID(rec.Exec.Cgroup)}
	if res.pods == nil {
		return res
	}
	if p, ok := res.pods.Lookup(ctx, id); ok {
		if res.Pod.UID == "" {
			res.Pod.UID = p.UID
		}
		res.Pod.Name, res.Pod.Namespace, res.Pod.Container, res.Pod.Image = p.Name, p.Namespace, p.Container, p.Image
	}
	return res
}

// putNode writes the stream id, the node and the pod into a resource.
func (res resourceInfo) putNode(attrs pcommon.Map) {
	putStrIf(attrs, record.AttrServiceInstanceID, res.ServiceInstanceID)
	putStrIf(attrs, record.AttrK8sNodeName, res.NodeName)
	putStrIf(attrs, record.AttrContainerID, res.Pod.ContainerID)
	putStrIf(attrs, record.AttrK8sPodUID, res.Pod.UID)
	putStrIf(attrs, record.AttrK8sPodName, res.Pod.Name)
	putStrIf(attrs, record.AttrK8sNamespaceName, res.Pod.Namespace)
	putStrIf(attrs, record.AttrK8sContainerName, res.Pod.Container)
	putStrIf(attrs, record.AttrContainerImage, res.Pod.Image)
}
