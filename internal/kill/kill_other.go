// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package kill

import (
	"errors"
	"syscall"
)

// hostPidfds fail off Linux, which has no pidfds: Kill fails there (the
// receiver, its only user, cannot be created there anyway:
// receiver/mitmexecreceiver/receiver_other.go).
var hostPidfds = pidfds{
	open:   func(uint32) (int, error) { return -1, errors.ErrUnsupported },
	signal: func(int, syscall.Signal) error { return errors.ErrUnsupported },
	close:  func(int) {},
}
