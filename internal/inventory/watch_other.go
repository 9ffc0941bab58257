// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package inventory

import "errors"

// Watcher is Linux-only.
type Watcher struct{}

// Watch fails off Linux.
func Watch([]string) (*Watcher, error) { return nil, errors.New("watching needs inotify (Linux)") }

// Changes never fires.
func (w *Watcher) Changes() <-chan struct{} { return nil }

// Close does nothing.
func (w *Watcher) Close() error { return nil }
