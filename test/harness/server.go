// SPDX-License-Identifier: Apache-2.0

package harness

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// listenRetries and listenRetryWait bound how long Serve waits for a fixed
// port that something else holds for a moment (a port reserved with
// FreePort and brought up later).
const (
	listenRetries   = 50
	listenRetryWait = 100 * time.Millisecond
)

// Server is a local HTTP server, the sink's.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	srv *http.Server
}

// Serve serves h on addr ("127.0.0.1:0" for any free port).
func Serve(addr string, h http.Handler) (*Server, error) {
	var ln net.Listener
	var err error
	for i := 0; i < listenRetries; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(listenRetryWait)
	}
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server and its connections.
func (s *Server) Close() error { return s.srv.Close() }

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}
