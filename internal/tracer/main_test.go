// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: the package starts readers
// and watchers that only Close stops.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
