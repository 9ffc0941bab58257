package receiver // import "github.com/mitmexec/mitmexec/receiver"

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/mitmexec/mitmexec/internal/event"
)

// Limits of the configuration. maxArgsBytesLimit is the kernel's argv
// capture bound (event.ArgsLen, ARGS_LEN in bpf/mitmexec.bpf.c): asking for
// more would promise bytes the kernel never sends.
const (
	defaultQueueSize    = 4096
	minQueueSize        = 1
	maxQueueSize        = 1 << 20
	defaultPollInterval = 10 * time.Millisecond
	minPollInterval     = time.Millisecond
	maxPollInterval     = time.Second
	defaultMaxArgsBytes = 4096
	minMaxArgsBytes     = 64
	maxArgsBytesLimit   = event.ArgsLen
)

// Config is the mitmexec receiver's configuration.
type Config struct {
	// QueueSize bounds the channel between the ring-buffer reader and the
	// rest of the receiver; when it is full, records are dropped and counted.
	QueueSize int `mapstructure:"queue_size"`
	// PollInterval is how often the reader polls the ring buffer (the kernel
	// side submits without waking the reader, which is much cheaper per exec).
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// MaxArgsBytes bounds the argv written to a record, counted as the
	// NUL-joined bytes; the kernel captures at most 4096.
	MaxArgsBytes int `mapstructure:"max_args_bytes"`
	// SearchPaths are the directories searched for installed tools at start.
	// Empty means PATH plus the standard binary directories.
	SearchPaths []string `mapstructure:"search_paths"`
	// SubmitAll sends every exec to user space, not only candidates (debug).
	SubmitAll bool `mapstructure:"submit_all"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		QueueSize:    defaultQueueSize,
		PollInterval: defaultPollInterval,
		MaxArgsBytes: defaultMaxArgsBytes,
	}
}

// Validate checks the configuration; every problem is reported, joined.
func (c *Config) Validate() error {
	var errs []error
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
	return errors.Join(errs...)
}
