// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package filehash

import "os"

// kernelKeepsCtime: off Linux nothing is cached by identity.
func kernelKeepsCtime(*os.File) bool { return false }
