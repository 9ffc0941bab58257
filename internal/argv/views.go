// SPDX-License-Identifier: Apache-2.0

package argv

// Captured is argv as the kernel captured it: whole, or, when argv was
// longer than the capture (Elided), its head and its tail around a middle
// it left out. The head's last argument and the tail's first are then each
// a piece of an argument the capture cut in two.
type Captured struct {
	Head, Tail []string
	Elided     bool
}

// Shown is argv as an analyst reads it: everything captured, pieces
// included, with middle, one argument saying what is missing, where the
// middle was.
func (c Captured) Shown(middle string) []string {
	if !c.Elided {
		return c.Head
	}
	return around(c.Head, middle, c.Tail)
}

// Read is argv as a grammar reads it: the middle and the pieces on either
// side of it are one Elided argument, since a piece taken for a whole
// argument is another argument (a cut "--library-path" is no option).
// argv[0] keeps its place even when it is the piece.
func (c Captured) Read() []string {
	if !c.Elided {
		return c.Head
	}
	head := []string{""}
	if len(c.Head) > 1 {
		head = c.Head[:len(c.Head)-1]
	}
	var tail []string
	if len(c.Tail) > 1 {
		tail = c.Tail[1:]
	}
	return around(head, Elided, tail)
}

// Missing is how many bytes of an argv of total bytes (every argument
// with its NUL, as the kernel counts) the capture left out.
func (c Captured) Missing(total int) int {
	kept := 0
	for _, a := range c.Head {
		kept += len(a) + 1
	}
	for _, a := range c.Tail {
		kept += len(a) + 1
	}
	return max(total-kept, 0)
}

// around is head, then middle standing for what is not there, then tail.
func around(head []string, middle string, tail []string) []string {
	out := make([]string, 0, len(head)+len(tail)+1)
	out = append(out, head...)
	out = append(out, middle)
	return append(out, tail...)
}
