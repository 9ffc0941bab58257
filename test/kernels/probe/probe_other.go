// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package main

import "errors"

func run() error { return errors.New("the tracer runs on Linux only") }
