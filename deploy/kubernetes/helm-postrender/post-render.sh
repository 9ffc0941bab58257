#!/bin/sh
# Helm post-renderer: reads the chart's rendered manifests on stdin and
# writes them to stdout with hostPID: true on the DaemonSet
# (kustomization.yaml). Needs kubectl (its built-in kustomize).
#
#   helm upgrade --install mitmexec open-telemetry/opentelemetry-collector \
#     -n mitmexec -f deploy/kubernetes/helm-values.yaml \
#     --post-renderer deploy/kubernetes/helm-postrender/post-render.sh
# or, with any Helm version:
#   helm template mitmexec open-telemetry/opentelemetry-collector -n mitmexec \
#     -f deploy/kubernetes/helm-values.yaml \
#     | deploy/kubernetes/helm-postrender/post-render.sh | kubectl apply -n mitmexec -f -
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cat >"$work/rendered.yaml"
cp "$here/kustomization.yaml" "$work/kustomization.yaml"
kubectl kustomize "$work"
