// SPDX-License-Identifier: Apache-2.0

//go:build linux

// Command execbench measures what the mitmexec receiver costs on the exec
// path, and checks the targets (PASS/FAIL per target):
//
//	go run ./bench/execbench -otelcol $PWD/_build/otelcol-custom -cibuild $PWD
//
// (`make bench` runs it.) It needs root: it loads the tracer, starts the
// collector and execsnoop, and reads every program's run-time statistics.
// The workload is a fork+exec loop of a benign binary (/bin/true) from
// syscall.ForkExec and Wait4. Its parts, in order:
//
//   - collector (steady.go): a fresh collector at its defaults; its CPU in
//     the first 30 s after start, reported apart; then idle windows
//     alternating with workload slices: idle CPU per second, CPU per 1000
//     benign execs above the idle rate over the same time, and BPF run time
//     of the exec and fork hooks per run (run-time statistics on).
//     Windows in which the kernel sent a record up (someone else's first
//     sight or tool) are counted apart as disturbed.
//   - throughput (alternate.go): the tracer loaded in this process, its
//     hooks attached and detached between short slices of the workload, in
//     pairs; the ratio of exec rates (on / off) with a 95% interval over the
//     pairs (statistics off, as deployed).
//   - peer (rounds.go): execsnoop against a no-tracer baseline, each on a
//     fresh process, in rotating rounds.
//   - detection latency (latency.go): a known tool exec'd with a marker,
//     from before the fork to the record's arrival at the sink.
//   - CI build (cibuild.go, -cibuild): the collector's CPU as a share of a
//     warm-cache `go test` of a module.
//
// CPU comes from a cpuacct cgroup the tracer process is moved into (every
// thread, ns), else from /proc/PID/task/*/schedstat; utime+stime of
// /proc/PID/stat (10 ms ticks) gives the start-up figure.
//
// -storm (off by default, not part of `make bench`) adds a first-sight storm
// and a burst of tool execs, and reports what the collector lost or spent.
package main

// This file: the flags, the checks before anything starts, and the set-up
// the whole run shares (BPF run-time statistics, work directory, sink,
// Ctrl-C). The parts run in run.go, the report is in report.go.

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mitmexec/mitmexec/test/harness"
)

// options are the command-line flags.
type options struct {
	ciBuildDir  string
	otelcol     string
	execsnoop   string
	binary      string
	tool        string
	execs       int
	warmup      int
	rounds      int
	latencyN    int
	latencyGap  time.Duration
	cpu         int
	retries     int
	retryWait   time.Duration
	receiverCfg string
	slices      int
	sliceExecs  int
	idleWindow  time.Duration
	pairs       int
	pairExecs   int
	pairBudget  time.Duration
	storm       bool
	stormN      int
	stormBurst  int
	keepWorkdir bool
	verbose     bool
}

func main() {
	var o options
	flag.StringVar(&o.otelcol, "otelcol", "", "absolute path of the built collector (_build/otelcol-custom); required")
	flag.StringVar(&o.execsnoop, "execsnoop", "/usr/sbin/execsnoop", "libbpf-tools execsnoop, the peer (empty to skip)")
	flag.StringVar(&o.binary, "binary", "/bin/true", "benign binary of the workload")
	flag.StringVar(&o.tool, "tool", "/usr/sbin/arpspoof", "known tool exec'd for the latency measurement (run with -h MARKER)")
	flag.IntVar(&o.execs, "execs", 1000, "peer rounds: execs per measured workload")
	flag.IntVar(&o.warmup, "warmup", 200, "execs of the warm-up before each measured workload")
	flag.IntVar(&o.rounds, "rounds", 5, "peer rounds: execsnoop and the baseline, in rotating order")
	flag.IntVar(&o.slices, "slices", 15, "collector: idle windows and workload slices, by turns, after the first 30 s")
	flag.IntVar(&o.sliceExecs, "slice-execs", 1000, "collector: execs per workload slice")
	flag.DurationVar(&o.idleWindow, "idle-window", 3*time.Second, "collector: length of each idle window")
	flag.IntVar(&o.pairs, "pairs", 1500, "throughput: pairs of slices, tracer on and off")
	flag.DurationVar(&o.pairBudget, "pair-budget", 4*time.Minute, "throughput: stop adding pairs after this long (a slow machine keeps make bench under 15 minutes)")
	flag.IntVar(&o.pairExecs, "pair-execs", 100, "throughput: execs per slice")
	flag.IntVar(&o.latencyN, "latency-execs", 50, "tool execs for the detection latency")
	flag.DurationVar(&o.latencyGap, "latency-gap", 20*time.Millisecond, "pause between the latency execs")
	flag.IntVar(&o.cpu, "cpu", -1, "pin the workload loop (and so its children) to this CPU; -1 leaves it to the scheduler")
	flag.IntVar(&o.retries, "retries", 3, "times a round disturbed by other activity on the machine is measured again")
	flag.DurationVar(&o.retryWait, "retry-wait", 5*time.Second, "pause before measuring a disturbed round again")
	flag.StringVar(&o.receiverCfg, "receiver-config", "", "YAML flow mapping for the receiver instead of its defaults, e.g. '{poll_interval: 100ms}' (experiments only)")
	flag.BoolVar(&o.storm, "storm", false, "also run the storm check (not part of make bench)")
	flag.StringVar(&o.ciBuildDir, "cibuild", "", "Go module whose warm-cache `go test -run ^$ ./...` the collector watches, for its CPU share of a CI build (make bench: this repository)")
	flag.IntVar(&o.stormN, "storm-files", 1000, "storm: distinct copies of the benign binary, each exec'd once")
	flag.IntVar(&o.stormBurst, "storm-tools", 500, "storm: tool execs back to back")
	flag.BoolVar(&o.keepWorkdir, "keep", false, "keep the work directory (configs, collector logs)")
	flag.BoolVar(&o.verbose, "v", false, "print every measurement as it is taken")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "execbench:", err)
		os.Exit(1)
	}
}

// run checks what the benchmark needs before it starts anything, sets up
// what every round shares and runs the benchmark.
func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root: the collector and execsnoop load eBPF programs, and the benchmark reads every program's run-time statistics (try: sudo go run ./bench/execbench -otelcol ...)")
	}
	if o.otelcol == "" || !filepath.IsAbs(o.otelcol) {
		return errors.New("-otelcol must be the absolute path of the built collector (make otelcol; _build/otelcol-custom)")
	}
	for _, p := range []string{o.otelcol, o.binary, o.tool} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if o.execsnoop != "" {
		if _, err := os.Stat(o.execsnoop); err != nil {
			return fmt.Errorf("%s: %w (apt-get install -y libbpf-tools, or -execsnoop '' to skip the peer)", o.execsnoop, err)
		}
	}
	if o.execsnoop != "" {
		if err := ensureTracefs(); err != nil {
			return fmt.Errorf("execsnoop attaches to syscall tracepoints, which need tracefs: %w (or -execsnoop '' to skip the peer)", err)
		}
	}
	if o.rounds < 1 || o.execs < 1 || o.slices < 2 || o.sliceExecs < 1 || o.pairs < 2 || o.pairExecs < 1 {
		return errors.New("-rounds, -execs, -slice-execs and -pair-execs must be positive, -slices and -pairs at least 2")
	}
	stats := &runStats{}
	if err := stats.on(); err != nil {
		return err
	}
	defer stats.off()

	work, err := os.MkdirTemp("", "execbench-")
	if err != nil {
		return err
	}
	if !o.keepWorkdir {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintln(os.Stderr, "execbench: work directory", work)
	}

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()

	snk := harness.NewSink()
	srv, err := harness.Serve("127.0.0.1:0", snk)
	if err != nil {
		return err
	}
	defer srv.Close()

	b := &bench{o: o, work: work, devnull: devnull.Fd(), sinkURL: srv.URL, sink: snk, stats: stats}

	// Ctrl-C: stop what we started, remove our cgroups.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		b.abort()
		os.Exit(130)
	}()

	return b.run()
}
