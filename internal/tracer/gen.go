// SPDX-License-Identifier: Apache-2.0

package tracer

// The BPF object and its Go bindings are generated from bpf/mitmexec.bpf.c (its ABI, bpf/mitmexec.h, as Go types and constants) and
// committed, so that `go build` and ocb need no clang. `make generate` reruns
// this; `make check-generated` fails when the committed files drift from the C.
//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type exec_event -type file_key -type verdict -type name_key -type fingerprint_key -type config -type ancestor -type fork_parent -type frame_event -type frame_sender_key -type limit -type verdict_kind -type verdict_action -type exec_reason -type exec_flag -type counter -type ancestor_flag -type frame_flag -type frame_counter mitmexec ../../bpf/mitmexec.bpf.c -- -I../../bpf -O2 -g -Wall -Werror
