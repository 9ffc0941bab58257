#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the initramfs test/kernels/run.sh builds for each kernel: busybox,
# the 9p/virtio modules of that kernel, and this script. It mounts the
# host's root read-only over virtio-9p (as virtme-ng does), then runs the
# suite (test/kernels/guest.sh) either chrooted into the host's root (amd64:
# the host's tools and test binaries run as they are) or from the initramfs
# (MX_ROOT=initramfs, arm64: the host's userland is amd64, only the
# statically linked arm64 binaries under $MX_BIN run). Then it powers off.
# MX_* come from the kernel command line.
export PATH=/bin
/bin/busybox --install -s /bin
if [ -n "$MX_SMOKE" ]; then # run.sh checking that a KVM guest boots at all
  echo "MX-EXIT 0"
  reboot -f
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do
  insmod "/modules/$m" || echo "init: insmod $m failed"
done < /modules.order
mkdir -p /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host; then
  echo "init: cannot mount the host's root over 9p"
  echo "MX-EXIT 99"
  reboot -f
fi
ip link set lo up 2>/dev/null
if [ "$MX_ROOT" = initramfs ]; then
  mkdir -p /tmp /sys/kernel/tracing /sys/fs/bpf
  mount -t tmpfs tmpfs /tmp
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
  mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
  mount -t bpf bpf /sys/fs/bpf
  mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
  cp "/host$MX_GUEST" /tmp/mx-guest.sh # immune to edits of the tree meanwhile
  HOME=/tmp TMPDIR=/tmp MX_BIN="/host$MX_BIN" MX_SRC="/host$MX_SRC" /bin/sh /tmp/mx-guest.sh
  rc=$?
else
  # A writable root: the host's read-only root under a tmpfs overlay (as
  # virtme-ng does), so /tmp is on the same file system as /usr/sbin (the
  # evasion tests hard-link an installed tool into their temporary
  # directory). Nothing reaches the host. Without overlayfs: / read-only,
  # tmpfs on /tmp.
  r=/host
  mkdir -p /ovl /newroot
  mount -t tmpfs tmpfs /ovl && mkdir -p /ovl/upper /ovl/work &&
    mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot && r=/newroot
  echo "init: root $r"
  mount -t proc proc $r/proc
  mount -t sysfs sysfs $r/sys
  mount -t devtmpfs devtmpfs $r/dev
  # udev makes these links on a real system; devtmpfs does not, and the
  # evasion tests run a script as /dev/fd/3
  ln -s /proc/self/fd $r/dev/fd
  ln -s /proc/self/fd/0 $r/dev/stdin
  ln -s /proc/self/fd/1 $r/dev/stdout
  ln -s /proc/self/fd/2 $r/dev/stderr
  mkdir -p $r/dev/shm $r/dev/pts
  mount -t tmpfs tmpfs $r/dev/shm
  mount -t devpts devpts $r/dev/pts
  [ $r = /host ] && mount -t tmpfs tmpfs $r/tmp
  mount -t tmpfs tmpfs $r/run
  cp "/host$MX_GUEST" $r/run/mx-guest.sh # immune to edits of the tree meanwhile
  mount -t tracefs tracefs $r/sys/kernel/tracing 2>/dev/null
  mount -t securityfs securityfs $r/sys/kernel/security 2>/dev/null
  mount -t bpf bpf $r/sys/fs/bpf
  mount -t cgroup2 cgroup2 $r/sys/fs/cgroup 2>/dev/null
  # go: TestPrivilegedEvasions builds its fileless-exec helper, from the
  # host's module cache (read-only) into a cache on /tmp, offline
  HOME=/tmp TMPDIR=/tmp PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOCACHE=/tmp/go-build GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    chroot $r /bin/sh /run/mx-guest.sh
  rc=$?
fi
echo "MX-EXIT $rc"
sync
reboot -f
