// SPDX-License-Identifier: Apache-2.0

// Package fileid computes a file's identity as the exec hook keys it: the
// device of the inode's super block, the inode number and the change time.
package fileid
