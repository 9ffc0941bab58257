// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package mitmexecreceiver // import "github.com/mitmexec/mitmexec/receiver/mitmexecreceiver"

import "time"

// bootClock is never used off Linux: the receiver cannot be created there.
func bootClock() time.Duration { return 0 }
