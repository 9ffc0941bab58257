// SPDX-License-Identifier: Apache-2.0

package k8s

import (
	"regexp"
	"strings"
)

// podUIDPattern matches the kubelet's pod cgroup in both drivers: cgroupfs
// writes "pod<uid>" with dashes, systemd "kubepods-<qos>-pod<uid>.slice"
// with the dashes turned into underscores (a dash separates slice levels).
var podUIDPattern = regexp.MustCompile(`(?:^|[/-])pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$`)

// PodUID returns the UID of the pod whose cgroup holds cgroup (a cgroup v2
// path), or "" outside a pod. Only components under a "kubepods" level
// among the first two count, where the kubelet puts it (/kubepods.slice,
// /kubepods, /kubelet.slice/kubelet-kubepods.slice), and nothing in a
// subtree systemd delegates to a user (user@UID.service): a unit that
// merely has a pod-like name, or a user's own cgroups named like the
// kubelet's, are not taken for a pod.
func PodUID(cgroup string) string {
	parts := strings.Split(cgroup, "/")
	for _, p := range parts {
		if strings.HasPrefix(p, "user@") {
			return ""
		}
	}
	inKubepods := false
	for i, p := range parts {
		if i <= 2 && (strings.HasPrefix(p, "kubepods") || strings.Contains(p, "-kubepods")) {
			inKubepods = true
		}
		if !inKubepods {
			continue
		}
		if m := podUIDPattern.FindStringSubmatch("/" + p); m != nil {
			return strings.ReplaceAll(m[1], "_", "-")
		}
	}
	return ""
}
