// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file reads the label and field names out of LogQL expressions, well
// enough to check them against the names the receiver emits. It is not a
// LogQL parser: it knows stream selectors, label filters (also chained with
// and/or/comma), line filters, grouping clauses and range brackets, and it
// refuses the pipeline stages it does not know (json, logfmt, label_format,
// ...) so that a query using one fails the test until this file learns it.

type tokKind int

const (
	tokIdent  tokKind = iota
	tokString         // "..." or `...`, Value holds the unquoted text
	tokNumber         // numbers and durations
	tokVar            // a Grafana variable outside a string: $x, ${x}, [[x]]
	tokOp             // comparison and line-filter operators
	tokPunct          // { } ( ) [ ] , |
)

type lqToken struct {
	Kind  tokKind
	Value string
}

// comparison operators of label matchers and label filters.
var comparisonOps = map[string]bool{"=": true, "==": true, "!=": true, "=~": true, "!~": true, ">": true, ">=": true, "<": true, "<=": true}

// pipeline stages that read or rewrite labels in ways this file does not
// follow; a query that uses one must be checked by hand and this file taught.
var unsupportedStages = map[string]bool{
	"json": true, "logfmt": true, "regexp": true, "pattern": true, "unpack": true,
	"line_format": true, "label_format": true, "drop": true, "keep": true, "decolorize": true,
}

// groupingKeywords are followed by a parenthesised list of label names.
var groupingKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// aggregationOps are LogQL's vector aggregation operators.
var aggregationOps = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "sort": true, "sort_desc": true, "approx_topk": true,
}

func tokenize(expr string) ([]lqToken, error) {
	var toks []lqToken
	i := 0
	isIdentStart := func(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(expr) && expr[j] != '"' {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			s, err := strconv.Unquote(expr[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("string at %d: %w", i, err)
			}
			toks = append(toks, lqToken{tokString, s})
			i = j + 1
		case c == '`':
			j := strings.IndexByte(expr[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("unterminated raw string at %d", i)
			}
			toks = append(toks, lqToken{tokString, expr[i+1 : i+1+j]})
			i += j + 2
		case c == '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated variable at %d", i)
				}
				j += k + 1
			} else {
				for j < len(expr) && isIdent(expr[j]) {
					j++
				}
			}
			toks = append(toks, lqToken{tokVar, expr[i:j]})
			i = j
		case c == '[' && strings.HasPrefix(expr[i:], "[["):
			k := strings.Index(expr[i:], "]]")
			if k < 0 {
				return nil, fmt.Errorf("unterminated variable at %d", i)
			}
			toks = append(toks, lqToken{tokVar, expr[i : i+k+2]})
			i += k + 2
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			toks = append(toks, lqToken{tokIdent, expr[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(expr) && (isIdent(expr[j]) || expr[j] == '.') {
				j++
			}
			toks = append(toks, lqToken{tokNumber, expr[i:j]})
			i = j
		default:
			matched := false
			for _, op := range []string{"|=", "|~", "|>", "!>", "=~", "!~", "!=", "==", ">=", "<=", "=", ">", "<"} {
				if strings.HasPrefix(expr[i:], op) {
					toks = append(toks, lqToken{tokOp, op})
					i += len(op)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
			if strings.ContainsRune("{}()[],|+-*/%^", rune(c)) {
				toks = append(toks, lqToken{tokPunct, string(c)})
				i++
				continue
			}
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return toks, nil
}

// matcher is one `name op value` of a stream selector or label filter.
// Value is the literal's text, or "" when the right side is not a string.
type matcher struct {
	Name, Op, Value string
	Literal         bool
}

// logqlNames is what an expression refers to.
type logqlNames struct {
	Stream   []matcher // inside {...}
	Filters  []matcher // label filters of pipelines
	Grouping []string  // names in by/without/on/ignoring/group_* lists
	Unwrap   []string  // unwrapped labels
	// Output is the label set of the result when the outermost operation is
	// an aggregation with `by`; nil when it cannot be told (no outer
	// aggregation: every label of the stream).
	Output []string
}

func parseLogQL(expr string) (logqlNames, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return logqlNames{}, err
	}
	var n logqlNames
	inSelector, inRange := false, 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		next := func(k int) lqToken {
			if i+k < len(toks) {
				return toks[i+k]
			}
			return lqToken{Kind: -1}
		}
		switch {
		case t.Kind == tokPunct && t.Value == "{":
			if inSelector {
				return n, fmt.Errorf("nested { in %q", expr)
			}
			inSelector = true
		case t.Kind == tokPunct && t.Value == "}":
			inSelector = false
		case t.Kind == tokPunct && t.Value == "[":
			inRange++
		case t.Kind == tokPunct && t.Value == "]":
			inRange--
		case inRange > 0:
			// durations and variables only
		case t.Kind == tokIdent && comparisonOps[next(1).Value] && next(1).Kind == tokOp:
			m := matcher{Name: t.Value, Op: next(1).Value}
			i++
			switch v := next(1); v.Kind {
			case tokString:
				m.Value, m.Literal = v.Value, true
				i++
			case tokNumber, tokVar:
				i++
			}
			if inSelector {
				n.Stream = append(n.Stream, m)
			} else {
				n.Filters = append(n.Filters, m)
			}
		case inSelector && t.Kind == tokPunct && t.Value == ",":
		case inSelector:
			return n, fmt.Errorf("unexpected %q in stream selector of %q", t.Value, expr)
		case t.Kind == tokPunct && t.Value == "|" && next(1).Kind == tokIdent && unsupportedStages[next(1).Value]:
			return n, fmt.Errorf("pipeline stage %q is not checked by this test; teach deploy/logql_test.go about it", next(1).Value)
		case t.Kind == tokPunct && t.Value == "|" && next(1).Kind == tokIdent && next(1).Value == "unwrap":
			if next(2).Kind != tokIdent {
				return n, fmt.Errorf("unwrap without a label in %q", expr)
			}
			name := next(2).Value
			if (name == "duration" || name == "duration_seconds" || name == "bytes") && next(3).Value == "(" {
				name = next(4).Value
			}
			n.Unwrap = append(n.Unwrap, name)
		case t.Kind == tokIdent && groupingKeywords[t.Value] && next(1).Value == "(":
			names, end, err := nameList(toks, i+1)
			if err != nil {
				return n, fmt.Errorf("%s list in %q: %w", t.Value, expr, err)
			}
			n.Grouping = append(n.Grouping, names...)
			i = end
		}
	}
	if inSelector || inRange != 0 {
		return n, fmt.Errorf("unbalanced brackets in %q", expr)
	}
	n.Output = outputLabels(toks)
	return n, nil
}

// nameList reads `( a, b, ... )` starting at toks[open]; it returns the names
// and the index of the closing parenthesis.
func nameList(toks []lqToken, open int) ([]string, int, error) {
	var names []string
	for j := open + 1; j < len(toks); j++ {
		switch t := toks[j]; {
		case t.Kind == tokPunct && t.Value == ")":
			return names, j, nil
		case t.Kind == tokPunct && t.Value == ",":
		case t.Kind == tokIdent:
			names = append(names, t.Value)
		default:
			return nil, 0, fmt.Errorf("unexpected %q", t.Value)
		}
	}
	return nil, 0, fmt.Errorf("unterminated list")
}

// outputLabels returns the `by` list of the outermost aggregation, in
// either form (`sum by (a) (...)` or `sum(...) by (a)`); an empty non-nil
// slice for an aggregation without one, nil when the expression does not
// start with an aggregation.
func outputLabels(toks []lqToken) []string {
	if len(toks) < 2 || toks[0].Kind != tokIdent || !aggregationOps[toks[0].Value] {
		return nil
	}
	if groupingKeywords[toks[1].Value] && len(toks) > 2 && toks[2].Value == "(" {
		names, _, err := nameList(toks, 2)
		if err != nil || toks[1].Value != "by" {
			return nil
		}
		return names
	}
	if toks[1].Value != "(" {
		return nil
	}
	depth := 0
	for j := 1; j < len(toks); j++ {
		switch toks[j].Value {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				if j+2 < len(toks) && toks[j+1].Value == "by" && toks[j+2].Value == "(" {
					names, _, err := nameList(toks, j+2)
					if err != nil {
						return nil
					}
					return names
				}
				return []string{}
			}
		}
	}
	return nil
}

// nameRules says which names a query may use.
type nameRules struct {
	Stream      map[string]bool // stream selector labels (index labels)
	Fields      map[string]bool // label filters, grouping, unwrap, legends
	Values      map[string]string
	ServiceName string
}

// checkExpr returns every problem with the names expr uses.
func (r nameRules) checkExpr(expr string) []error {
	n, err := parseLogQL(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	if len(n.Stream) == 0 {
		errs = append(errs, fmt.Errorf("%q has no stream selector", expr))
	}
	hasService := false
	for _, m := range n.Stream {
		if !r.Stream[m.Name] {
			errs = append(errs, fmt.Errorf("stream selector label %q in %q is not an index label of the records (allowed: %v)", m.Name, expr, sortedKeys(r.Stream)))
		}
		if m.Name == "service_name" && m.Op == "=" && m.Literal {
			hasService = true
			if m.Value != r.ServiceName {
				errs = append(errs, fmt.Errorf("service_name=%q in %q, the receiver's service.name is %q", m.Value, expr, r.ServiceName))
			}
		}
	}
	if !hasService {
		errs = append(errs, fmt.Errorf("%q does not select service_name=%q", expr, r.ServiceName))
	}
	for _, m := range n.Filters {
		if !r.Fields[m.Name] {
			errs = append(errs, fmt.Errorf("label filter on %q in %q: the receiver emits no such attribute", m.Name, expr))
			continue
		}
		if want, ok := r.Values[m.Name]; ok && m.Literal && (m.Op == "=" || m.Op == "==") && m.Value != want {
			errs = append(errs, fmt.Errorf("%s=%q in %q, the receiver sends %q", m.Name, m.Value, expr, want))
		}
	}
	for _, name := range append(slices.Clone(n.Grouping), n.Unwrap...) {
		if !r.Fields[name] {
			errs = append(errs, fmt.Errorf("label %q in a grouping or unwrap of %q: the receiver emits no such attribute", name, expr))
		}
	}
	return errs
}

// checkTemplateRefs checks the label names a legend or an alert template
// refers to (refs) against what expr's result carries.
func (r nameRules) checkTemplateRefs(expr string, refs []string, where string) []error {
	n, err := parseLogQL(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, ref := range refs {
		switch {
		case !r.Fields[ref] && !r.Stream[ref]:
			errs = append(errs, fmt.Errorf("%s refers to %q: the receiver emits no such attribute", where, ref))
		case n.Output != nil && !slices.Contains(n.Output, ref):
			errs = append(errs, fmt.Errorf("%s refers to %q, which the result of %q does not carry (by %v)", where, ref, expr, n.Output))
		}
	}
	return errs
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// testRules are fixed names for the extractor's own tests, independent of
// the receiver's code.
func testRules() nameRules {
	return nameRules{
		Stream:      map[string]bool{"service_name": true},
		Fields:      map[string]bool{"service_name": true, "host_name": true, "mitmexec_tool_name": true, "security_rule_name": true, "mitmexec_repeat_count": true, "severity_text": true},
		Values:      map[string]string{"security_rule_name": "net_mitm_tool_exec"},
		ServiceName: "mitmexec",
	}
}

func TestParseLogQL(t *testing.T) {
	n, err := parseLogQL(`sum by (mitmexec_tool_name, host_name) (count_over_time({service_name="mitmexec", x!~"a|b"} |= "x=\"y\" | z=1" | security_rule_name="net_mitm_tool_exec" or host_name=~"$host" , mitmexec_repeat_count > 1 != "q" | unwrap mitmexec_repeat_count [$__interval])) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	var stream, filters []string
	for _, m := range n.Stream {
		stream = append(stream, m.Name+m.Op+m.Value)
	}
	for _, m := range n.Filters {
		filters = append(filters, m.Name+m.Op+m.Value)
	}
	if want := []string{"service_name=mitmexec", "x!~a|b"}; !slices.Equal(stream, want) {
		t.Errorf("stream = %q, want %q", stream, want)
	}
	if want := []string{"security_rule_name=net_mitm_tool_exec", "host_name=~$host", "mitmexec_repeat_count>"}; !slices.Equal(filters, want) {
		t.Errorf("filters = %q, want %q", filters, want)
	}
	if want := []string{"mitmexec_tool_name", "host_name"}; !slices.Equal(n.Grouping, want) || !slices.Equal(n.Output, want) {
		t.Errorf("grouping = %q, output = %q, want %q", n.Grouping, n.Output, want)
	}
	if want := []string{"mitmexec_repeat_count"}; !slices.Equal(n.Unwrap, want) {
		t.Errorf("unwrap = %q, want %q", n.Unwrap, want)
	}

	n, err = parseLogQL(`count(sum by (host_name) (count_over_time({service_name="mitmexec"} [10m]))) >= 3`)
	if err != nil {
		t.Fatal(err)
	}
	if n.Output == nil || len(n.Output) != 0 {
		t.Errorf("output of count(...) = %#v, want empty", n.Output)
	}
	n, err = parseLogQL(`sum(count_over_time({service_name="mitmexec"} [1m])) by (host_name)`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"host_name"}; !slices.Equal(n.Output, want) {
		t.Errorf("output of postfix by = %q, want %q", n.Output, want)
	}
}

// TestCheckExprCatchesBogusNames makes sure that a typo anywhere a name
// appears fails, and that names inside string literals do not count.
func TestCheckExprCatchesBogusNames(t *testing.T) {
	r := testRules()
	good := `sum by (mitmexec_tool_name) (count_over_time({service_name="mitmexec"} | security_rule_name="net_mitm_tool_exec" |= "bogus_name=\"x\"" | host_name=~"$host" [$__interval]))`
	if errs := r.checkExpr(good); len(errs) != 0 {
		t.Fatalf("good expression rejected: %v", errs)
	}
	for name, expr := range map[string]string{
		"label filter":      `{service_name="mitmexec"} | mitmexec_tool_nmae="ettercap"`,
		"negated filter":    `{service_name="mitmexec"} | hostname!="a"`,
		"chained filter":    `{service_name="mitmexec"} | host_name="a" or process_bogus="b"`,
		"grouping":          `sum by (host) (count_over_time({service_name="mitmexec"} [1m]))`,
		"postfix grouping":  `sum(count_over_time({service_name="mitmexec"} [1m])) by (tool_name)`,
		"stream label":      `{service_name="mitmexec", host_name="a"}`,
		"stream service":    `{service="mitmexec"}`,
		"service value":     `{service_name="mitmexecc"}`,
		"rule value":        `{service_name="mitmexec"} | security_rule_name="net_mitm_tool"`,
		"unwrap":            `sum(sum_over_time({service_name="mitmexec"} | unwrap repeat_count [1m]))`,
		"unsupported stage": `{service_name="mitmexec"} | json | mitmexec_tool_name="x"`,
		"no selector":       `vector(1)`,
	} {
		if errs := r.checkExpr(expr); len(errs) == 0 {
			t.Errorf("%s: %q accepted", name, expr)
		}
	}
	expr := `sum by (host_name) (count_over_time({service_name="mitmexec"} [1m]))`
	if errs := r.checkTemplateRefs(expr, []string{"host_name"}, "legend"); len(errs) != 0 {
		t.Errorf("legend {{host_name}} rejected: %v", errs)
	}
	if errs := r.checkTemplateRefs(expr, []string{"mitmexec_tool_name"}, "legend"); len(errs) == 0 {
		t.Errorf("legend on a label the result does not carry accepted")
	}
	if errs := r.checkTemplateRefs(expr, []string{"hostname"}, "legend"); len(errs) == 0 {
		t.Errorf("legend on a bogus label accepted")
	}
}
