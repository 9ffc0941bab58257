// SPDX-License-Identifier: Apache-2.0

// Package harness is what the end-to-end tests (test/e2e) and the exec-path
// benchmark (bench/execbench) share to run the built collector against an
// in-process backend: the OTLP/HTTP sink that records what arrives, the
// local HTTP server it listens on, and the supervision of the collector
// process (config, start, readiness, log tail, stop).
//
// It holds plain (non-test) files so that a main package can import it as
// well as the tests; it never calls testing.T, so each caller keeps its own
// way of failing. The skip-or-fail rule of privileged tests is not here: it
// is internal/testenv.
package harness
