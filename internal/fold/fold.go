// SPDX-License-Identifier: Apache-2.0

// Package fold folds repeats of the same detection within a window into one
// record with a count. The first of a window is never delayed; the repeats
// after it are held, and when the window ends the latest of them leaves with
// the number of execs it stands for. Nothing is dropped.
package fold

import "time"

// Folded is a held record and how many execs it stands for.
type Folded[T any] struct {
	Record T
	Count  int
}

type group[T any] struct {
	start    time.Time
	latest   T
	count    int
	variants map[string]struct{} // variants already sent in this window
}

// MaxVariants is how many records of one key with different variants
// (command lines) go out in one window before the rest are held: a few
// distinct runs of a tool are each worth a record, a flood of them is one.
const MaxVariants = 8

// Folder folds records by key. Not safe for concurrent use: the receiver's
// single processing goroutine owns it.
type Folder[K comparable, T any] struct {
	window time.Duration
	// groups is bounded by time, not by a count (so not an
	// internal/bounded map): a group leaves when its window ends, and only
	// then, since evicting one early would drop the repeats it holds, which
	// every record must account for. It holds one group per distinct key
	// detected within one window.
	groups map[K]*group[T]
	ready  []Folded[T] // repeats of windows that ended when a new one began
}

// New returns a folder; a zero window disables folding.
func New[K comparable, T any](window time.Duration) *Folder[K, T] {
	return &Folder[K, T]{window: window, groups: map[K]*group[T]{}}
}

// Offer reports whether rec must go out now (the first of its window, or
// one of its first MaxVariants variants); if not, it is held as a repeat.
// The variant is what tells runs of one key apart (their command lines):
// a repeated variant is always a repeat.
func (f *Folder[K, T]) Offer(key K, variant string, rec T, now time.Time) bool {
	if f.window <= 0 {
		return true
	}
	g, ok := f.groups[key]
	if !ok || now.Sub(g.start) >= f.window {
		if ok && g.count > 0 {
			f.ready = append(f.ready, Folded[T]{Record: g.latest, Count: g.count})
		}
		f.groups[key] = &group[T]{start: now, variants: map[string]struct{}{variant: {}}}
		return true
	}
	if _, seen := g.variants[variant]; !seen && len(g.variants) < MaxVariants {
		g.variants[variant] = struct{}{}
		return true
	}
	g.latest = rec
	g.count++
	return false
}

// Expired returns the held repeats of every window that has ended and
// forgets those windows.
func (f *Folder[K, T]) Expired(now time.Time) []Folded[T] {
	out := f.ready
	f.ready = nil
	for k, g := range f.groups {
		if now.Sub(g.start) < f.window {
			continue
		}
		if g.count > 0 {
			out = append(out, Folded[T]{Record: g.latest, Count: g.count})
		}
		delete(f.groups, k)
	}
	return out
}

// Flush returns every held repeat, at shutdown.
func (f *Folder[K, T]) Flush() []Folded[T] {
	out := f.ready
	f.ready = nil
	for k, g := range f.groups {
		if g.count > 0 {
			out = append(out, Folded[T]{Record: g.latest, Count: g.count})
		}
		delete(f.groups, k)
	}
	return out
}

// Open reports whether a window is open or a repeat is ready: Expired has
// something to do later. A folder that is not open needs no clock.
func (f *Folder[K, T]) Open() bool {
	return len(f.groups) > 0 || len(f.ready) > 0
}

// Pending is the number of held repeats.
func (f *Folder[K, T]) Pending() int {
	n := 0
	for _, r := range f.ready {
		n += r.Count
	}
	for _, g := range f.groups {
		n += g.count
	}
	return n
}
