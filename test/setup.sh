#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What `make test` needs on a fresh Debian machine, installed when missing:
# the packages below, tracefs and bpffs mounted, and VictoriaLogs (the log
# store of the end-to-end test, Apache-2.0, built from the Go module proxy).
# Needs root to install; without root it only says what is missing (the
# privileged tests then skip, or fail under CI=true).
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin

# clang/llvm/libbpf-dev: the drift check recompiles the BPF C; gcc and
# binutils (objcopy): test fixtures; strace: the hostile-input suite watches
# the collector's opens; nodejs: the GitHub Action's test runs its main and
# post steps; python3-pip, -setuptools, -wheel: a real pip install of a local
# package (compiling is no run); python3-fusepy: a FUSE server that never
# answers the collector; the real tools the privileged tests exec.
packages=(clang llvm libbpf-dev gcc binutils make git util-linux python3 python3-pip python3-setuptools python3-wheel python3-fusepy strace nodejs
  ettercap-text-only bettercap mitmproxy dsniff sslsplit yersinia thc-ipv6)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test/setup.sh: not root, cannot install: ${missing[*]}" >&2
  else
    echo "test/setup.sh: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

if [ "$(id -u)" = 0 ]; then
  mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi
[ -e /sys/kernel/btf/vmlinux ] || echo "test/setup.sh: kernel BTF (/sys/kernel/btf/vmlinux) is missing: the eBPF tests cannot load" >&2

gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
[ -x "$gobin/victoria-logs" ] || go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1
