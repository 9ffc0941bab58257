#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What `make test` needs on a fresh Debian machine, installed when missing:
# the packages below, tracefs and bpffs mounted, VictoriaLogs (the log
# store of the end-to-end test, Apache-2.0, built from the Go module proxy)
# and containerd 2.x (the second runtime of test/cri, built likewise).
# Needs root to install; without root it only says what is missing (the
# privileged tests then skip, or fail under CI=true).
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin

# clang/llvm/libbpf-dev: the drift check recompiles the BPF C; gcc and
# binutils (objcopy): test fixtures; strace: the hostile-input suite watches
# the collector's opens; nodejs: the GitHub Action's test runs its main and
# post steps; sudo: those steps run as an unprivileged runner user that, as
# on GitHub's hosted runners, has password-less sudo; python3-pip,
# -setuptools, -wheel, -pytest and npm: the origin tests' real package
# managers and test runner (receiver/mitmexecreceiver/origin_linux_test.go);
# python3-jsonschema validates the Action's SARIF against its schema; the
# real tools the privileged tests exec; iproute2, scapy, arping, ping and
# tcpdump: the behaviour tests' LAN in network namespaces, its spoofers and
# its truthful senders; test/cri's runtime: containerd 1.6 (its CRI plugin
# included) and runc, the CNI plugins, a static busybox and libc6-dev for
# the static pause it builds; python3-fusepy: a FUSE server that never
# answers the collector; libbpf-tools: execsnoop, make bench's peer.
packages=(clang llvm clang-format-14 libbpf-dev gcc binutils make git util-linux python3 strace nodejs sudo
  python3-pip python3-setuptools python3-wheel python3-pytest python3-jsonschema python3-fusepy
  ettercap-text-only bettercap mitmproxy dsniff sslsplit yersinia thc-ipv6
  iproute2 python3-scapy iputils-arping iputils-ping tcpdump
  containerd runc containernetworking-plugins busybox-static libc6-dev libbpf-tools)
# Debian's nodejs comes without npm; NodeSource's carries its own and
# conflicts with Debian's npm package.
command -v npm >/dev/null || packages+=(npm)
# cargo: the origin tests' Cargo build script (a rustup install serves too)
command -v cargo >/dev/null || packages+=(cargo)
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

# The CI runner's user for the Action and GitLab template tests: no login,
# password-less sudo (what GitHub's hosted runners give theirs), so the
# tests run the steps and a job's tricks as a user that owns nothing of
# the collector's.
if [ "$(id -u)" = 0 ]; then
  id mitmexec-runner >/dev/null 2>&1 || useradd --system --user-group --shell /bin/bash --home-dir /nonexistent mitmexec-runner
  [ -f /etc/sudoers.d/mitmexec-runner ] || {
    echo 'mitmexec-runner ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/mitmexec-runner.tmp
    chmod 0440 /etc/sudoers.d/mitmexec-runner.tmp
    mv /etc/sudoers.d/mitmexec-runner.tmp /etc/sudoers.d/mitmexec-runner
  }
fi

if [ "$(id -u)" = 0 ]; then
  mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi
[ -e /sys/kernel/btf/vmlinux ] || echo "test/setup.sh: kernel BTF (/sys/kernel/btf/vmlinux) is missing: the eBPF tests cannot load" >&2

# yarn 1 and pnpm for the origin tests (receiver/mitmexecreceiver/origin_linux_test.go), from
# the npm registry, pinned; pnpm 9 is the newest that runs on Node 20 here.
if [ "$(id -u)" = 0 ] && command -v npm >/dev/null; then
  command -v yarn >/dev/null || npm install -g --no-audit --no-fund yarn@1.22.22
  command -v pnpm >/dev/null || npm install -g --no-audit --no-fund pnpm@9.15.9
fi

gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
[ -x "$gobin/victoria-logs" ] || go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1
# the linter `make lint` runs (.golangci.yml), pinned; built outside the
# module so its dependencies never move this module's. A few minutes once.
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
"$gobin/golangci-lint" version 2>/dev/null | grep -q " ${GOLANGCI_LINT_VERSION#v} " ||
  (cd / && GOFLAGS= go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION")

# containerd 2.x and its runc shim, in a directory of their own (test/cri
# looks there, or in $MITMEXEC_CONTAINERD2): on PATH they would shadow
# Debian's 1.6. About two minutes once; kept across runs like VictoriaLogs.
containerd2=${MITMEXEC_CONTAINERD2:-$(go env GOPATH | cut -d: -f1)/mitmexec/containerd-v2.4.2}
if [ ! -x "$containerd2/containerd" ] || [ ! -x "$containerd2/containerd-shim-runc-v2" ]; then
  GOBIN=$containerd2 go install -tags no_btrfs \
    github.com/containerd/containerd/v2/cmd/containerd@v2.4.2 \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@v2.4.2
fi
