// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

// A gate in front of the runtime's socket: a second collector asks the
// runtime through it, and the test decides when the runtime's answer may
// come. Bytes pass unchanged; only their timing is the test's. With the
// gate held, a lookup waits (a slow runtime); released after a container
// has exited or been removed, the runtime answers about a container that is
// no longer what it was when the tool ran.

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type gateProxy struct {
	path, upstream string
	l              net.Listener

	mu        sync.Mutex
	gate      chan struct{} // closed: connections pass
	firstHeld time.Time     // when the first connection the gate held came
	quit      chan struct{}
	wg        sync.WaitGroup
}

func newGateProxy(t *testing.T, dir, upstream string) *gateProxy {
	t.Helper()
	p := &gateProxy{path: filepath.Join(dir, "gate.sock"), upstream: upstream, gate: make(chan struct{}), quit: make(chan struct{})}
	close(p.gate)
	l, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.l = l
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// hold makes new connections wait until release.
func (p *gateProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

// release lets the waiting connections (and new ones) through and returns
// how long the first of them waited (0 when none came).
func (p *gateProxy) release() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var waited time.Duration
	if !p.firstHeld.IsZero() {
		waited = time.Since(p.firstHeld)
		p.firstHeld = time.Time{}
	}
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	return waited
}

func (p *gateProxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		gate := p.gate
		select {
		case <-gate:
		default:
			if p.firstHeld.IsZero() {
				p.firstHeld = time.Now()
			}
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer conn.Close()
			select {
			case <-gate:
			case <-p.quit:
				return
			}
			up, err := net.Dial("unix", p.upstream)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
			go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
			select {
			case <-done:
			case <-p.quit:
			}
		}()
	}
}

func (p *gateProxy) close() {
	close(p.quit)
	_ = p.l.Close()
	p.wg.Wait()
}
