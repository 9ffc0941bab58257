// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package modwatch

import (
	"errors"
	"fmt"
)

// Watcher is Linux-only: it needs fanotify.
type Watcher struct{}

func errUnsupported() error {
	return fmt.Errorf("modwatch needs fanotify (Linux): %w", errors.ErrUnsupported)
}

// New fails off Linux.
func New(int) (*Watcher, error) { return nil, errUnsupported() }

// Set fails off Linux.
func (w *Watcher) Set([]Mark) (int, error) { return 0, errUnsupported() }

// Events never delivers.
func (w *Watcher) Events() <-chan Event { return nil }

// Stats is zero.
func (w *Watcher) Stats() Stats { return Stats{} }

// Close does nothing.
func (w *Watcher) Close() error { return nil }
