// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/mitmexec/mitmexec/internal/detect"
	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/tracer"
)

// Limits of the configuration. maxArgsBytesLimit is the kernel's argv
// capture bound (event.ArgsLen, ARGS_LEN in bpf/mitmexec.h): asking for
// more would promise bytes the kernel never sends.
const (
	defaultQueueSize    = tracer.DefaultQueueSize
	minQueueSize        = 1
	maxQueueSize        = 1 << 20
	defaultPollInterval = tracer.DefaultPollInterval
	minPollInterval     = time.Millisecond
	maxPollInterval     = 10 * time.Second
	defaultMaxArgsBytes = 4096
	minMaxArgsBytes     = 64
	maxArgsBytesLimit   = event.ArgsLen
)

// Config is the mitmexec receiver's configuration.
type Config struct {
	// QueueSize bounds the channel between the ring-buffer reader and the
	// rest of the receiver; when it is full, records are dropped and counted.
	QueueSize int `mapstructure:"queue_size"`
	// PollInterval is when the reader looks at the ring buffer once more
	// after records stopped coming. The kernel wakes it at once for known
	// tools and at most every 5 ms for other records, and the reader looks
	// again 10 ms after each batch for records that came in that gap: this
	// look is a safety net behind that one, and after it the reader sleeps
	// until the kernel wakes it, so an idle collector is not woken by it.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// MaxArgsBytes bounds the argv written to a record, counted as the
	// NUL-joined bytes; the kernel captures at most 4096.
	MaxArgsBytes int `mapstructure:"max_args_bytes"`
	// SearchPaths are the directories searched for installed tools at start.
	// Empty means PATH plus the standard binary directories.
	SearchPaths []string `mapstructure:"search_paths"`
	// SubmitAll sends every exec to user space, not only candidates (debug).
	SubmitAll bool `mapstructure:"submit_all"`
	// Action is what happens when a tool starts: alert (report it) or kill
	// (stop it, from the kernel where the verdict is known there, else from
	// user space as fast as it can). A tool entry can override it.
	Action string `mapstructure:"action"`
	// ErrorMode says what a failure to load eBPF does: propagate stops the
	// collector with the error, ignore reports it and runs without this
	// receiver.
	ErrorMode string `mapstructure:"error_mode"`
	// Fold folds repeats of a tool from the same parent within a window.
	Fold FoldConfig `mapstructure:"fold"`
	// MaxRecordsPerSecond is the ceiling on detection records per second
	// from this host; what it holds back is counted on the next record
	// (mitmexec.summarized_count). 0 means no ceiling.
	MaxRecordsPerSecond int `mapstructure:"max_records_per_second"`
	// Allow silences sanctioned use. Each entry matches when all its keys
	// match; any matching entry suppresses the detection (counted).
	Allow []AllowConfig `mapstructure:"allow"`
	// Tools extends the catalog: an entry with a built-in tool's name adds
	// to it or switches it off, any other name is a new tool.
	Tools []ToolConfig `mapstructure:"tools"`
	// NetworkBehaviour reports a process that sends a frame claiming an
	// address its interface does not hold, whatever program it runs.
	NetworkBehaviour NetworkBehaviourConfig `mapstructure:"network_behaviour"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// NetworkBehaviourConfig configures the behaviour tier.
type NetworkBehaviourConfig struct {
	// Enabled watches frames sent through packet sockets (Linux >= 6.4).
	Enabled bool `mapstructure:"enabled"`
	// Action for a lie told by a process whose exec named no catalog tool:
	// alert or kill; empty takes the receiver's action. A catalog tool's
	// own action holds for its lies.
	Action string `mapstructure:"action"`
}

// FoldConfig configures the folding of repeats.
type FoldConfig struct {
	Enabled bool          `mapstructure:"enabled"`
	Window  time.Duration `mapstructure:"window"`
}

// AllowConfig is one allow-list entry; keys left out are not checked.
type AllowConfig struct {
	Tool             string  `mapstructure:"tool"`
	ExecutablePath   string  `mapstructure:"executable_path"`
	SHA256           string  `mapstructure:"sha256"`
	UID              *uint32 `mapstructure:"uid"`
	User             string  `mapstructure:"user"`
	ParentExecutable string  `mapstructure:"parent_executable"`
	ContainerID      string  `mapstructure:"container_id"`
	CgroupPrefix     string  `mapstructure:"cgroup_prefix"`
}

// ToolConfig adds to the catalog or changes an entry of it.
type ToolConfig struct {
	Name        string   `mapstructure:"name"`
	Technique   string   `mapstructure:"technique"`
	Executables []string `mapstructure:"executables"`
	Scripts     []string `mapstructure:"scripts"`
	Modules     []string `mapstructure:"modules"`
	SHA256      []string `mapstructure:"sha256"`
	// GoModules, SectionSHA256, Strings and Libraries recognise modified
	// and renamed builds by their structure (see detect.Tool).
	GoModules     []string `mapstructure:"go_modules"`
	SectionSHA256 []string `mapstructure:"section_sha256"`
	Strings       []string `mapstructure:"strings"`
	Libraries     []string `mapstructure:"libraries"`
	Action        string   `mapstructure:"action"`
	Disabled      bool     `mapstructure:"disabled"`
}

const (
	actionAlert        = "alert"
	actionKill         = "kill"
	errorModePropagate = "propagate"
	errorModeIgnore    = "ignore"
	defaultFoldWindow  = 5 * time.Second

	defaultMaxRecordsPerSecond = 50
	maxMaxRecordsPerSecond     = 100000
	minFoldWindow              = 100 * time.Millisecond
	maxFoldWindow              = time.Hour
)

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		QueueSize:        defaultQueueSize,
		PollInterval:     defaultPollInterval,
		MaxArgsBytes:     defaultMaxArgsBytes,
		Action:           actionAlert,
		ErrorMode:        errorModePropagate,
		Fold:             FoldConfig{Enabled: true, Window: defaultFoldWindow},
		NetworkBehaviour: NetworkBehaviourConfig{Enabled: true},

		MaxRecordsPerSecond: defaultMaxRecordsPerSecond,
	}
}

// Validate checks the configuration; every problem is reported, joined.
func (c *Config) Validate() error {
	var errs []error
	if a := c.NetworkBehaviour.Action; a != "" && a != actionAlert && a != actionKill {
		errs = append(errs, fmt.Errorf("network_behaviour.action: %q is not an action, must be %q or %q", a, actionAlert, actionKill))
	}
	if c.QueueSize < minQueueSize || c.QueueSize > maxQueueSize {
		errs = append(errs, fmt.Errorf("queue_size: %d is out of range, must be between %d and %d",
			c.QueueSize, minQueueSize, maxQueueSize))
	}
	if c.PollInterval < minPollInterval || c.PollInterval > maxPollInterval {
		errs = append(errs, fmt.Errorf("poll_interval: %s is out of range, must be between %s and %s",
			c.PollInterval, minPollInterval, maxPollInterval))
	}
	if c.MaxArgsBytes < minMaxArgsBytes || c.MaxArgsBytes > maxArgsBytesLimit {
		errs = append(errs, fmt.Errorf("max_args_bytes: %d is out of range, must be between %d and %d",
			c.MaxArgsBytes, minMaxArgsBytes, maxArgsBytesLimit))
	}
	for i, p := range c.SearchPaths {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("search_paths[%d]: %q is not an absolute path", i, p))
		}
	}
	if c.Action != actionAlert && c.Action != actionKill {
		errs = append(errs, fmt.Errorf("action: %q is not one of %s, %s", c.Action, actionAlert, actionKill))
	}
	if c.ErrorMode != errorModePropagate && c.ErrorMode != errorModeIgnore {
		errs = append(errs, fmt.Errorf("error_mode: %q is not one of %s, %s", c.ErrorMode, errorModePropagate, errorModeIgnore))
	}
	if c.Fold.Enabled && (c.Fold.Window < minFoldWindow || c.Fold.Window > maxFoldWindow) {
		errs = append(errs, fmt.Errorf("fold.window: %s is out of range, must be between %s and %s",
			c.Fold.Window, minFoldWindow, maxFoldWindow))
	}
	if c.MaxRecordsPerSecond < 0 || c.MaxRecordsPerSecond > maxMaxRecordsPerSecond {
		errs = append(errs, fmt.Errorf("max_records_per_second: %d is out of range, must be between 0 (no ceiling) and %d",
			c.MaxRecordsPerSecond, maxMaxRecordsPerSecond))
	}
	for i, a := range c.Allow {
		errs = append(errs, a.validate(fmt.Sprintf("allow[%d]", i))...)
	}
	names := map[string]bool{}
	for i, t := range c.Tools {
		field := fmt.Sprintf("tools[%d]", i)
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", field))
		case names[t.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q is listed twice", field, t.Name))
		}
		names[t.Name] = true
		if t.Action != "" && t.Action != actionAlert && t.Action != actionKill {
			errs = append(errs, fmt.Errorf("%s.action: %q is not one of %s, %s", field, t.Action, actionAlert, actionKill))
		}
		for j, h := range t.SHA256 {
			if !detect.IsSHA256(h) {
				errs = append(errs, fmt.Errorf("%s.sha256[%d]: %q is not 64 hex digits", field, j, h))
			}
		}
		for j, h := range t.SectionSHA256 {
			if !detect.IsSHA256(h) {
				errs = append(errs, fmt.Errorf("%s.section_sha256[%d]: %q is not 64 hex digits", field, j, h))
			}
		}
		for j, n := range t.Strings {
			if len(n) < 8 {
				errs = append(errs, fmt.Errorf("%s.strings[%d]: %q is %d bytes, at least 8 are needed", field, j, n, len(n)))
			}
		}
		if len(t.Libraries) > 0 && len(t.Strings) == 0 {
			errs = append(errs, fmt.Errorf("%s.libraries: need strings beside them, libraries alone are shared by other programs", field))
		}
		for j, n := range append(append([]string{}, t.Executables...), t.Scripts...) {
			if !detect.IsBaseName(n) {
				errs = append(errs, fmt.Errorf("%s: file name %d %q must be a base name, not a path", field, j, n))
			}
		}
	}
	return errors.Join(errs...)
}

func (a AllowConfig) validate(field string) []error {
	var errs []error
	if a == (AllowConfig{}) {
		return []error{fmt.Errorf("%s: an entry needs at least one of tool, executable_path, sha256, uid, user, parent_executable, container_id, cgroup_prefix", field)}
	}
	if a.ExecutablePath != "" && !filepath.IsAbs(a.ExecutablePath) {
		errs = append(errs, fmt.Errorf("%s.executable_path: %q is not an absolute path", field, a.ExecutablePath))
	}
	if a.ParentExecutable != "" && !filepath.IsAbs(a.ParentExecutable) {
		errs = append(errs, fmt.Errorf("%s.parent_executable: %q is not an absolute path", field, a.ParentExecutable))
	}
	if a.CgroupPrefix != "" && !strings.HasPrefix(a.CgroupPrefix, "/") {
		errs = append(errs, fmt.Errorf("%s.cgroup_prefix: %q must start with /", field, a.CgroupPrefix))
	}
	if a.SHA256 != "" && !detect.IsSHA256(a.SHA256) {
		errs = append(errs, fmt.Errorf("%s.sha256: %q is not 64 hex digits", field, a.SHA256))
	}
	return errs
}
