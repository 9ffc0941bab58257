// SPDX-License-Identifier: Apache-2.0

package safeopen

import (
	"errors"
	"strings"
)

// ErrUntrustedFS refuses a file on FUSE (or fuseblk): its server answers
// every request of ours, the open, even stat and lookup, when it likes,
// and one that never answers holds the reading thread in the kernel for
// good. Such a file is judged by what the kernel captured at exec, never
// opened.
var ErrUntrustedFS = errors.New("file on a FUSE file system, whose server may never answer: not opened")

// IsFUSE reports whether a file system type is FUSE's.
func IsFUSE(fstype string) bool {
	return fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse.")
}
