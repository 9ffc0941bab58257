// SPDX-License-Identifier: Apache-2.0

package fileid

import (
	"strings"
	"testing"
)

func TestMountDev(t *testing.T) {
	table := `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
36 22 0:45 / /merged rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u/upper,workdir=/u/work
370 22 259:1048575 / /big rw - btrfs /dev/nvme0n1p2 rw
40 22 0:x / /bad rw - tmpfs tmpfs rw
`
	cases := []struct {
		id   uint64
		dev  uint32
		want bool
	}{
		{22, 254<<20 | 1, true},
		{36, 45, true},
		{370, 259<<20 | 1048575, true},
		{3, 0, false},  // not a prefix match of 36 or 370
		{40, 0, false}, // malformed device
		{99, 0, false}, // absent
	}
	for _, c := range cases {
		dev, ok := mountDev(strings.NewReader(table), c.id)
		if ok != c.want || dev != c.dev {
			t.Errorf("mount %d: %d, %v; want %d, %v", c.id, dev, ok, c.dev, c.want)
		}
	}
}
