// SPDX-License-Identifier: Apache-2.0

package redact

import (
	"regexp"
	"strings"
)

// codeSecret finds a string literal given to a secret-named variable, key
// or keyword argument in code: password="x", token='y', "api_key": "z",
// self.secret = 'w', my $pass = "v", password: str = "u", os.environ["TOKEN"]
// = "t". The literal's end is found by hand, since RE2 cannot match a
// closing quote to its opening one.
var codeSecret = regexp.MustCompile(`(^|[^\w$])([A-Za-z_$@][\w$.-]*)(['"]?[\]}]?)[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\]]*[ \t]*)?(=>|==|=|:)[ \t]*(?:[bBrRuUfF]{1,2})?(['"])`)

// bettercapSet finds bettercap's "set NAME VALUE" in an -eval string (or in
// a caplet's text, or a shell command that runs bettercap). Commands are
// separated by ';' or a new line.
var bettercapSet = regexp.MustCompile(`(^|[;\n'"\s])set[ \t]+([^\s;'"]+)[ \t]+`)

// quotedEnd returns the index just past the string literal whose opening
// quote is at a[i] (a triple quote counts as one, a backslash escapes), and
// where its content starts and ends; an unterminated literal runs to the
// end, as it does in a cut argument.
func quotedEnd(a string, i int) (contentStart, contentEnd, end int) {
	q := a[i]
	width := 1
	if strings.HasPrefix(a[i:], strings.Repeat(string(q), 3)) {
		width = 3
	}
	closing := a[i : i+width]
	for j := i + width; j < len(a); j++ {
		if a[j] == '\\' {
			j++
			continue
		}
		if strings.HasPrefix(a[j:], closing) {
			return i + width, j, j + width
		}
	}
	return i + width, len(a), len(a)
}

// replaceSpans replaces each [start, end) in spans (in order, disjoint) by
// what with returns for it.
func replaceSpans(a string, spans [][2]int, with func(string) string) string {
	if len(spans) == 0 {
		return a
	}
	var b strings.Builder
	done := 0
	for _, s := range spans {
		b.WriteString(a[done:s[0]])
		b.WriteString(with(a[s[0]:s[1]]))
		done = s[1]
	}
	b.WriteString(a[done:])
	return b.String()
}

// redactCodeSecrets redacts string literals given to secret-named names
// (see codeSecret).
func redactCodeSecrets(a string) string {
	ms := codeSecret.FindAllStringSubmatchIndex(a, -1)
	var spans [][2]int
	next := 0
	for _, m := range ms {
		if m[0] < next {
			continue // inside the previous literal
		}
		if !isSecretVar(a[m[4]:m[5]]) {
			continue
		}
		cs, ce, end := quotedEnd(a, m[10])
		next = end
		if cs < ce {
			spans = append(spans, [2]int{cs, ce})
		}
	}
	return replaceSpans(a, spans, func(string) string { return redacted })
}

// redactLiterals reads each string literal in code as the argument it
// will become (a list handed to a tool's main or to subprocess): a
// secret-named "name=value" keeps its name, and a literal that follows one
// naming a secret option ("--password", "pw"), with nothing but commas
// and blanks between them, goes whole.
func redactLiterals(a string) string {
	var spans [][2]int
	var with []string
	prevSecret, prevEnd := false, 0
	for i := 0; i < len(a); {
		if a[i] != '\'' && a[i] != '"' {
			i++
			continue
		}
		cs, ce, end := quotedEnd(a, i)
		content := a[cs:ce]
		r := content
		name, hasValue, ok := optionName(content)
		switch {
		case prevSecret && strings.Trim(a[prevEnd:i], " \t\r\n,") == "" && content != "":
			r = redacted
		case ok && hasValue && isSecretName(name):
			r = content[:strings.IndexByte(content, '=')+1] + redacted
		}
		if r != content {
			spans = append(spans, [2]int{cs, ce})
			with = append(with, r)
		}
		prevSecret = ok && !hasValue && strings.HasPrefix(content, "-") && isSecretName(name)
		prevEnd, i = end, end
	}
	n := 0
	return replaceSpans(a, spans, func(string) string { n++; return with[n-1] })
}

// redactBettercapSet redacts the value of bettercap's "set NAME VALUE" when
// NAME is a secret's. The value runs to the command's end: ';', a new
// line, the quote that opened the command, or the end of a; a quoted
// value to its closing quote.
func redactBettercapSet(a string) string {
	ms := bettercapSet.FindAllStringSubmatchIndex(a, -1)
	var spans [][2]int
	next := 0
	for _, m := range ms {
		if m[0] < next || !isSecretVar(a[m[4]:m[5]]) {
			continue
		}
		vs := m[1]
		var ve int
		if vs < len(a) && (a[vs] == '"' || a[vs] == '\'') {
			vs, ve, next = quotedEnd(a, vs)
		} else {
			stop := ";\r\n"
			if open := a[m[2]:m[3]]; open == `"` || open == "'" {
				stop += open
			}
			ve = len(a)
			if k := strings.IndexAny(a[vs:], stop); k >= 0 {
				ve = vs + k
			}
			next = ve
			ve = vs + len(strings.TrimRight(a[vs:ve], " \t"))
		}
		if vs < ve {
			spans = append(spans, [2]int{vs, ve})
		}
	}
	return replaceSpans(a, spans, func(string) string { return redacted })
}
