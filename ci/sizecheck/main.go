// SPDX-License-Identifier: Apache-2.0

// Command sizecheck fails when a hand-written source file is over 600 lines
// or a function outside tests is over 80 lines (Go functions by their
// syntax tree, C functions from the column-0 brace that opens a body to the
// one that closes it, the layout .clang-format gives bpf/). Generated files
// are the ones .gitattributes marks linguist-generated. `make lint` runs it
// from the repository's root.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	maxFileLines = 600
	maxFuncLines = 80
)

func main() {
	files, err := handWritten()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sizecheck:", err)
		os.Exit(2)
	}
	var problems []string
	for _, f := range files {
		p, err := check(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sizecheck:", err)
			os.Exit(2)
		}
		problems = append(problems, p...)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Printf("sizecheck: %d over the limits (files %d lines, functions %d lines outside tests)\n",
			len(problems), maxFileLines, maxFuncLines)
		os.Exit(1)
	}
}

// handWritten lists the tracked sources that .gitattributes does not mark
// as generated.
func handWritten() ([]string, error) {
	out, err := exec.Command("git", "ls-files", "-z", "--", "*.go", "*.c", "*.h", "*.js", "*.sh", "*.py").Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	cmd := exec.Command("git", "check-attr", "-z", "--stdin", "linguist-generated")
	cmd.Stdin = bytes.NewReader(out)
	attrs, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git check-attr: %w", err)
	}
	// -z output: path NUL attribute NUL value NUL, repeated.
	fields := strings.Split(strings.TrimSuffix(string(attrs), "\x00"), "\x00")
	var files []string
	for i := 0; i+2 < len(fields); i += 3 {
		if fields[i+2] != "true" && !strings.Contains(fields[i], "node_modules/") {
			files = append(files, fields[i])
		}
	}
	return files, nil
}

func check(path string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var problems []string
	if n := bytes.Count(src, []byte("\n")); n > maxFileLines {
		problems = append(problems, fmt.Sprintf("%s: %d lines (limit %d)", path, n, maxFileLines))
	}
	if strings.HasSuffix(path, "_test.go") {
		return problems, nil
	}
	switch filepath.Ext(path) {
	case ".go":
		p, err := goFuncs(path, src)
		return append(problems, p...), err
	case ".c", ".h":
		return append(problems, cFuncs(path, src)...), nil
	}
	return problems, nil
}

func goFuncs(path string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
		if n > maxFuncLines {
			problems = append(problems, fmt.Sprintf("%s: func %s is %d lines (limit %d)", path, fd.Name.Name, n, maxFuncLines))
		}
	}
	return problems, nil
}

// cFuncs measures each body from a "{" alone in column 0 to the next "}"
// in column 0, and names it by the line before the brace.
func cFuncs(path string, src []byte) []string {
	var problems []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line, start, prev, name := 0, 0, "", ""
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case text == "{" && start == 0:
			start, name = line, strings.TrimSpace(prev)
		case strings.HasPrefix(text, "}") && start != 0:
			if n := line - start + 2; n > maxFuncLines {
				problems = append(problems, fmt.Sprintf("%s:%d: function %q is %d lines (limit %d)", path, start, name, n, maxFuncLines))
			}
			start = 0
		}
		prev = text
	}
	return problems
}
