// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/mitmexec/mitmexec/receiver/mitmexecreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{
			id:   component.NewID(metadata.Type),
			want: createDefaultConfig().(*Config),
		},
		{
			id: component.NewIDWithName(metadata.Type, "custom"),
			want: &Config{
				QueueSize:           1024,
				PollInterval:        50 * time.Millisecond,
				MaxArgsBytes:        1024,
				SearchPaths:         []string{"/opt/tools/bin", "/usr/local/sbin"},
				SubmitAll:           true,
				Action:              "kill",
				ErrorMode:           "ignore",
				Fold:                FoldConfig{Enabled: true, Window: 30 * time.Second},
				MaxRecordsPerSecond: defaultMaxRecordsPerSecond,
				Allow: []AllowConfig{
					{Tool: "mitmproxy", User: "qa", CgroupPrefix: "/system.slice/qa-proxy.service"},
					{UID: new(uint32), ParentExecutable: "/usr/lib/qa/runner"},
				},
				Tools: []ToolConfig{
					{Name: "ettercap", SHA256: []string{strings.Repeat("a", 64)}, Action: "alert"},
					{Name: "macof", Disabled: true},
					{Name: "netsniff-mitm", Technique: "T1557", Executables: []string{"netsniff-mitm"}, Modules: []string{"netsniff.main"}},
				},
				NetworkBehaviour: NetworkBehaviourConfig{Enabled: true, Action: "kill"},
			},
		},
		{
			id:      component.NewIDWithName(metadata.Type, "network_behaviour_action_bogus"),
			wantErr: `network_behaviour.action: "block" is not an action, must be "alert" or "kill"`,
		},
		{
			id:      component.NewIDWithName(metadata.Type, "queue_size_zero"),
			wantErr: "queue_size: 0 is out of range, must be between 1 and 1048576",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "queue_size_too_big"),
			wantErr: "queue_size: 1048577 is out of range, must be between 1 and 1048576",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "poll_interval_too_short"),
			wantErr: "poll_interval: 500µs is out of range, must be between 1ms and 10s",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "poll_interval_too_long"),
			wantErr: "poll_interval: 20s is out of range, must be between 1ms and 10s",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "max_args_bytes_too_small"),
			wantErr: "max_args_bytes: 63 is out of range, must be between 64 and 4096",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "max_args_bytes_too_big"),
			wantErr: "max_args_bytes: 8192 is out of range, must be between 64 and 4096",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "search_paths_relative"),
			wantErr: `search_paths[1]: "bin" is not an absolute path`,
		},
		{
			id:      component.NewIDWithName(metadata.Type, "bad_action"),
			wantErr: `action: "block" is not one of alert, kill`,
		},
		{
			id:      component.NewIDWithName(metadata.Type, "bad_error_mode"),
			wantErr: `error_mode: "crash" is not one of propagate, ignore`,
		},
		{
			id:      component.NewIDWithName(metadata.Type, "bad_fold_window"),
			wantErr: "fold.window: 10ms is out of range, must be between 100ms and 1h0m0s",
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_allow"),
			wantErr: "allow[0]: an entry needs at least one of tool, executable_path, sha256, uid, user, parent_executable, container_id, cgroup_prefix\n" +
				`allow[1].executable_path: "bin/mitmdump" is not an absolute path` + "\n" +
				`allow[1].cgroup_prefix: "system.slice" must start with /` + "\n" +
				`allow[1].sha256: "xyz" is not 64 hex digits`,
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_tools"),
			wantErr: "tools[0].name: must not be empty\n" +
				`tools[1].action: "stop" is not one of alert, kill` + "\n" +
				`tools[1].sha256[0]: "abc" is not 64 hex digits` + "\n" +
				`tools[1]: file name 0 "/usr/bin/a" must be a base name, not a path` + "\n" +
				`tools[2].name: "a" is listed twice`,
		},
		{
			id: component.NewIDWithName(metadata.Type, "many_errors"),
			wantErr: "queue_size: -1 is out of range, must be between 1 and 1048576\n" +
				"max_args_bytes: 0 is out of range, must be between 64 and 4096",
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			// GIVEN the default config and the test's section
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)

			// WHEN it is unmarshalled and validated
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)

			// THEN it is the expected config, or fails with the exact text
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "unknown_key").String())
	require.NoError(t, err)

	err = sub.Unmarshal(NewFactory().CreateDefaultConfig())

	require.Error(t, err)
	assert.Contains(t, err.Error(), "has invalid keys: queue_sise")
}

func TestValidateDefault(t *testing.T) {
	assert.NoError(t, createDefaultConfig().(*Config).Validate())
}
