#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make test-kernels: boots each kernel of the matrix below in a QEMU VM with
# the host's root read-only over virtio-9p (the way virtme-ng does, which
# Debian does not package) and runs test/kernels/guest.sh inside it, so the
# tools and test binaries are the ones on this machine. Kernels are Debian's
# own packages, fetched with apt-get download and unpacked under $CACHE
# (never into the work tree). Needs root (apt, QEMU's 9p export of /).
# The last lines of the output are the summary, one per boot:
#   kernel RELEASE ARCH lsm|nolsm: ok|fail
#
# Environment:
#   MATRIX   boots, space-separated PACKAGE:ARCH:lsm|nolsm:full|load; default
#            below (the newest 6.1 and 6.12 of Debian 12 for amd64, 6.1 for
#            arm64). full: probe, tracer and receiver tests with the real
#            tools; load: probe and tracer tests only (arm64: no userland)
#   KVM      auto (default: used if a guest boots with it) | no
#   ICOUNT   QEMU -icount of TCG amd64 guests (default shift=0,sleep=on)
#   CACHE    /var/cache/mitmexec-kernels
#   TIMEOUT  seconds per boot before it counts as failed (default 1800)
set -uo pipefail
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${CACHE:-/var/cache/mitmexec-kernels}
TIMEOUT=${TIMEOUT:-1800}
LSM_ON=lockdown,capability,landlock,yama,apparmor,bpf
LSM_OFF=lockdown,capability,landlock,yama,apparmor
start_all=$(date +%s)

die() { echo "test-kernels: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (apt-get, QEMU exporting / over 9p, eBPF in the guests)"

# newest PACKAGE of a series: newest "linux-image-<series>" for ARCH
newest() { # pattern arch
  apt-cache search --names-only "^linux-image-$1\$" | awk '{print $1}' | sort -V | tail -1
}

if [ -z "${MATRIX:-}" ]; then
  # a fresh machine may have no package lists yet
  [ -n "$(newest '6\.1\.0-[0-9]+-amd64')" ] || apt-get update -q >/dev/null || die "apt-get update failed"
  k61=$(newest '6\.1\.0-[0-9]+-amd64')
  k612=$(newest '6\.12\.[0-9]+\+deb12-amd64')
  [ -n "$k61" ] && [ -n "$k612" ] || die "no 6.1/6.12 amd64 kernel in the apt lists (apt-get update?)"
  a61=${k61/%-amd64/-arm64-unsigned}
  # one boot each: the BPF LSM deny path on 6.1, the exec hook's SIGKILL on
  # 6.12 (bpf left out of lsm=); any other combination runs through MATRIX
  MATRIX="$k61:amd64:lsm:full $k612:amd64:nolsm:full $a61:arm64:lsm:load"
fi

# --- packages ---------------------------------------------------------------
need=(qemu-system-x86 busybox-static cpio xz-utils zstd kmod)
case "$MATRIX" in *:arm64:*) need+=(qemu-system-arm) ;; esac
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-kernels: installing ${missing[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "cannot install ${missing[*]}"
fi
case "$MATRIX" in *:arm64:*)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64 && apt-get update -q || die "cannot add arm64 to dpkg"
  fi ;;
esac

mkdir -p "$CACHE/deb" "$CACHE/x" "$CACHE/bin" "$CACHE/initrd" "$CACHE/log"

# fetch PACKAGE[:ARCH] -> directory of the unpacked .deb
fetch() {
  local pkg=$1 dir
  dir="$CACHE/x/${pkg//:/_}"
  if [ ! -e "$dir/.done" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$CACHE/deb" && rm -f "${pkg%%:*}"_*.deb && apt-get download -q "$pkg" >/dev/null 2>&1) || { echo "cannot download $pkg" >&2; return 1; }
    dpkg-deb -x "$CACHE/deb/${pkg%%:*}"_*.deb "$dir" && touch "$dir/.done"
  fi
  echo "$dir"
}

# --- test binaries, built once per arch --------------------------------------
build() { # arch
  local out="$CACHE/bin/$1"
  mkdir -p "$out"
  echo "test-kernels: building the $1 test binaries into $out"
  (cd "$SRC" && export GOARCH=$1 GOFLAGS=-buildvcs=false &&
    if [ "$1" = amd64 ]; then
      go test -c -o "$out/tracer.test" ./internal/tracer/ &&
        go test -c -o "$out/receiver.test" ./receiver/mitmexecreceiver/ &&
        go build -o "$out/probe" ./test/kernels/probe
    else
      # the arm64 guest has no userland of its arch: static binaries only
      CGO_ENABLED=0 go test -c -o "$out/tracer.test" ./internal/tracer/ &&
        CGO_ENABLED=0 go build -o "$out/probe" ./test/kernels/probe
    fi)
}
built=" "

# --- initramfs: busybox, the 9p, veth and bridge modules, init.sh -----------
initrd() { # kerneldir release arch -> path
  local kdir=$1 rel=$2 arch=$3 out="$CACHE/initrd/$2.cpio.gz" tmp bb mods
  tmp=$(mktemp -d)
  if [ "$arch" = amd64 ]; then
    bb=/bin/busybox
  else
    bb=$(fetch busybox-static:arm64)/bin/busybox || return 1
  fi
  mkdir -p "$tmp"/{bin,proc,sys,dev,modules,tmp}
  cp "$bb" "$tmp/bin/busybox"
  ln -s busybox "$tmp/bin/sh"
  cp "$SRC/test/kernels/init.sh" "$tmp/init"
  chmod +x "$tmp/init"
  mods="$kdir/lib/modules/$rel"
  # the .deb has no modules.dep (the package's postinst makes it)
  [ -s "$mods/modules.dep" ] || depmod -b "$kdir" "$rel" || return 1
  # modules.dep lists each module's dependencies, the last to load first
  local order=() seen=" " m line deps d i
  # veth and bridge: the behaviour tests' LAN in network namespaces
  for m in virtio_pci 9pnet_virtio 9p overlay veth bridge; do
    line=$(grep -E "(^|/)$m\.ko(\.xz|\.zst)?:" "$mods/modules.dep") || continue # built in
    deps=(${line#*:})
    for ((i=${#deps[@]}-1; i>=0; i--)); do d=${deps[$i]}; [[ $seen == *" $d "* ]] || { order+=("$d"); seen+="$d "; }; done
    d=${line%%:*}; [[ $seen == *" $d "* ]] || { order+=("$d"); seen+="$d "; }
  done
  : > "$tmp/modules.order"
  for d in "${order[@]}"; do
    local b; b=$(basename "$d"); b=${b%.xz}; b=${b%.zst}
    case "$d" in
      *.xz) xz -dc "$mods/$d" > "$tmp/modules/$b" ;;
      *.zst) zstd -qdc "$mods/$d" > "$tmp/modules/$b" ;;
      *) cp "$mods/$d" "$tmp/modules/$b" ;;
    esac
    echo "$b" >> "$tmp/modules.order"
  done
  (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
  rm -rf "$tmp"
  echo "$out"
}

# KVM when the host lets us (KVM=auto|no), else TCG (slower). Nested KVM
# on Firecracker refuses QEMU's write of IA32_ARCH_CAPABILITIES (MSR 0x10a),
# hence -cpu host without that feature as the second choice; and a guest
# that starts may still hang, so auto boots the first amd64 kernel once to
# an init that only powers off, and uses KVM only if that took under 30 s.
kvm_ok=no kvm_cpu=
kvm_smoke() { # cpu
  local pkg kdir vmlinuz rel rd
  pkg=$(for e in $MATRIX; do [[ $e == *:amd64:* ]] && { echo "${e%%:*}"; break; }; done)
  [ -n "$pkg" ] || return 1
  kdir=$(fetch "$pkg:amd64") || return 1
  vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -1); rel=${vmlinuz##*/vmlinuz-}
  rd=$(initrd "$kdir" "$rel" amd64) || return 1
  (timeout 30 qemu-system-x86_64 -machine q35 -accel kvm -cpu "$1" -m 512M -kernel "$vmlinuz" -initrd "$rd" \
    -append "console=ttyS0 panic=-1 MX_SMOKE=1" -nodefaults -no-user-config -display none -serial stdio \
    -no-reboot </dev/null 2>&1) 2>/dev/null | grep -q '^MX-EXIT 0'
}
if [ "${KVM:-auto}" != no ] && [ -w /dev/kvm ] && [[ $MATRIX == *:amd64:* ]]; then
  for c in host host,-arch-capabilities; do
    bash -c 'timeout 3 qemu-system-x86_64 -accel kvm -machine q35 -cpu "$1" -S -display none -nodefaults \
      -no-user-config -monitor none -serial none </dev/null >/dev/null 2>&1; echo $?' _ "$c" 2>/dev/null |
      grep -qx 124 # still up: KVM initialised; QEMU aborts at once when it cannot
    if [ "${PIPESTATUS[1]}" = 0 ]; then
      if kvm_smoke "$c"; then kvm_ok=yes kvm_cpu=$c; else echo "test-kernels: KVM (-cpu $c) starts but a guest did not boot in 30 s"; fi
      break
    fi
  done
fi
echo "test-kernels: KVM for amd64 guests: $kvm_ok${kvm_cpu:+ (-cpu $kvm_cpu)}"

gomodcache=$(cd "$SRC" && go env GOMODCACHE)
# Everything is prepared first (downloads, builds, initramfs), then the
# boots run JOBS at a time (default: one per host CPU; a TCG guest with
# -icount uses one), each writing its summary line to its own file.
results=$(mktemp -d)
n=0
boot() { # n rel arch lsm accel log qemu...
  local n=$1 rel=$2 arch=$3 lsm=$4 accel=$5 log=$6 t0 res secs; shift 6
  t0=$(date +%s)
  timeout "$TIMEOUT" "$@" < /dev/null 2>&1 | tee "$log" | sed -u "s/^/[$rel $lsm] /"
  secs=$(( $(date +%s) - t0 ))
  res=fail
  grep -q '^MX-SUITE ok' "$log" && grep -q '^MX-EXIT 0' "$log" && res=ok
  echo "kernel $rel $arch $lsm: $res" > "$results/$n.line"
  echo "kernel $rel $arch $lsm: $res (${secs}s, $accel)" > "$results/$n.time"
}
JOBS=${JOBS:-$(nproc)}
for entry in $MATRIX; do
  n=$((n + 1))
  IFS=: read -r pkg arch lsm suite <<< "$entry"
  nofile() { echo "kernel $pkg $arch $lsm: fail ($1)" > "$results/$n.line"; cp "$results/$n.line" "$results/$n.time"; }
  kdir=$(fetch "$pkg:$arch") || { nofile download; continue; }
  vmlinuz=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -1)
  rel=${vmlinuz##*/vmlinuz-}
  [ -n "$rel" ] || { nofile "no vmlinuz"; continue; }
  if [[ $built != *" $arch "* ]]; then
    build "$arch" || die "cannot build the $arch test binaries"
    built+="$arch "
  fi
  rd=$(initrd "$kdir" "$rel" "$arch") || { nofile initramfs; continue; }
  [ "$lsm" = lsm ] && lsmarg=$LSM_ON || lsmarg=$LSM_OFF
  root=host; [ "$arch" = arm64 ] && root=initramfs
  env="GOMODCACHE=$gomodcache MX_ARCH=$arch MX_LSM=$lsm MX_SUITE=$suite MX_ROOT=$root MX_BIN=$CACHE/bin/$arch MX_SRC=$SRC MX_GUEST=$SRC/test/kernels/guest.sh"
  virtfs="local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  if [ "$arch" = amd64 ]; then
    # TCG runs the guest ~10-30x slower than the host, too slow for the
    # receiver tests' bounds (a record at most a minute old, timeouts): with
    # -icount the guest's clock follows the instructions it runs (1 ns each)
    # and the host's while it waits (sleep=on), so it sees a 1 GHz machine.
    accel="-accel tcg -cpu max -icount ${ICOUNT:-shift=0,sleep=on}"; smp=1 # -icount runs one vCPU at a time anyway
    [ $kvm_ok = yes ] && accel="-accel kvm -cpu $kvm_cpu" smp=2
    qemu=(qemu-system-x86_64 -machine q35 $accel -m 2G -smp $smp -append "console=ttyS0 panic=-1 loglevel=4 lsm=$lsmarg $env")
  else
    accel="-accel tcg -cpu max,pauth-impdef=on"
    qemu=(qemu-system-aarch64 -machine virt $accel -m 1G -smp 2 -append "console=ttyAMA0 panic=-1 loglevel=4 lsm=$lsmarg $env")
  fi
  log="$CACHE/log/$rel-$lsm.log"
  echo "test-kernels: booting $rel ($arch, $accel, lsm=$lsmarg); console log in $log"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  boot "$n" "$rel" "$arch" "$lsm" "$accel" "$log" "${qemu[@]}" -kernel "$vmlinuz" -initrd "$rd" -virtfs "$virtfs" \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot &
done
wait

total=$(( $(date +%s) - start_all ))
echo
echo "test-kernels: timings (total ${total}s, $JOBS boots at a time):"
for i in $(seq 1 $n); do sed 's/^/  /' "$results/$i.time"; done
echo
fail=0
for i in $(seq 1 $n); do
  l=$(cat "$results/$i.line")
  echo "$l"
  [[ $l == *": ok" ]] || fail=1
done
rm -rf "$results"
exit $fail
