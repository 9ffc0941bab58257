# mitmexec. Everything that loads eBPF (run, test, bench) needs root, or
# CAP_BPF + CAP_PERFMON.
GO ?= go
# ocb is run by version rather than as a tool dependency: its own
# dependencies (golang.org/x/tools v0.51.0, ...) would otherwise move this
# module's.
OCB_VERSION ?= v0.165.0
OCB ?= $(GO) run go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
OTELCOL := _build/otelcol-custom
FUZZTIME ?= 5m

.PHONY: all
all: otelcol

# The collector distribution with this receiver (builder-config.yaml).
# Not a file target: ocb decides itself what to rebuild.
.PHONY: otelcol
otelcol:
	$(OCB) --config builder-config.yaml

# Build the collector and print every detection to the console.
.PHONY: run
run: otelcol
	$(OTELCOL) --config deploy/console.yaml

# Every test: vet, the drift check of generated code, unit tests, a short fuzz
# of each target, the privileged kernel tests (root; under CI=true a missing
# privilege fails instead of skipping) and the end-to-end test through the
# built collector. Packages run one at a time (-p 1): every tracer sees every
# exec on the host, so privileged tests of two packages would count each
# other's execs.
.PHONY: test
test: vet check-generated otelcol
	MITMEXEC_OTELCOL=$(CURDIR)/$(OTELCOL) $(GO) test -p 1 -count=1 ./...
	$(MAKE) fuzz FUZZTIME=10s

.PHONY: vet
vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

# Generated code: the BPF object and its Go bindings (bpf2go, needs clang
# and llvm-strip), and mdatagen's output. Both are committed.
.PHONY: generate
generate: generate-bpf generate-metadata

.PHONY: generate-bpf
generate-bpf:
	cd internal/tracer && $(GO) generate ./...

# mdatagen writes next to the metadata.yaml it is given, so it runs on
# receiver/metadata.yaml, a symlink to the top-level metadata.yaml. Its
# output is committed; goimports fixes the imports it sometimes leaves out.
.PHONY: generate-metadata
generate-metadata:
	ln -sfn ../metadata.yaml receiver/metadata.yaml
	cd receiver && $(GO) tool mdatagen metadata.yaml
	$(GO) tool goimports -w receiver/internal/metadata receiver/generated_component_test.go receiver/generated_package_test.go

# Fails when the committed generated files differ from what the sources
# generate now.
.PHONY: check-generated
check-generated: generate
	@git diff --exit-code --stat -- internal/tracer receiver/internal/metadata receiver/generated_component_test.go receiver/generated_package_test.go \
		|| { echo "generated code drifted from its sources: run 'make generate' and commit"; exit 1; }

.PHONY: fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x ./internal/event/
	$(GO) test -run '^$$' -fuzz '^FuzzRule$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x ./internal/detect/
	$(GO) test -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x ./receiver/

# Go benchmarks (decode, rule, translation) and the exec-path benchmark
# against a no-tracer baseline and execsnoop (root).
.PHONY: bench
bench: otelcol
	$(GO) test -run '^$$' -bench . -benchmem ./internal/... ./receiver/
	$(GO) run ./bench/execbench -otelcol $(CURDIR)/$(OTELCOL)

.PHONY: clean
clean:
	rm -rf _build
