// SPDX-License-Identifier: Apache-2.0

// Command recorddoc renders the tables of docs/record.md from the record
// package (internal/record), between the doc's generated-table markers,
// leaving the prose around them as it is. `go generate ./internal/record`
// runs it; its test fails when the committed doc has drifted.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	doc := flag.String("doc", "docs/record.md", "the contract document to rewrite in place")
	flag.Parse()
	if err := run(*doc); err != nil {
		fmt.Fprintln(os.Stderr, "recorddoc:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := rewrite(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if out == string(b) {
		return nil
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
