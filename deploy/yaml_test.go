package deploy_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// parseYAML reads the part of YAML that compose.yaml uses: block mappings
// and sequences indented with spaces, sequences of mappings, one-line flow
// sequences, plain and quoted scalars, and comments. Mappings come back as
// map[string]any, sequences as []any, scalars as strings. Anything else is
// an error, so that the test learns of it.
func parseYAML(src string) (any, error) {
	var lines []yamlLine
	for i, text := range strings.Split(src, "\n") {
		body := strings.TrimLeft(text, " ")
		if strings.HasPrefix(body, "\t") {
			return nil, fmt.Errorf("line %d: a tab in the indentation", i+1)
		}
		if body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		lines = append(lines, yamlLine{n: i + 1, indent: len(text) - len(body),
			text: strings.TrimRight(body, " ")})
	}
	if len(lines) == 0 {
		return nil, nil
	}
	p := &yamlParser{lines: lines}
	v, err := p.block(lines[0].indent)
	if err == nil && p.i < len(lines) {
		err = fmt.Errorf("line %d: unexpected indentation", lines[p.i].n)
	}
	return v, err
}

type yamlLine struct {
	n, indent int
	text      string
}

type yamlParser struct {
	lines []yamlLine
	i     int
}

func isItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

func (p *yamlParser) block(indent int) (any, error) {
	if isItem(p.lines[p.i].text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

var yamlKey = regexp.MustCompile(`^([A-Za-z0-9_.-]+):(?:\s+(.*))?$`)

func (p *yamlParser) mapping(indent int) (map[string]any, error) {
	m := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && !isItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		match := yamlKey.FindStringSubmatch(l.text)
		if match == nil {
			return nil, fmt.Errorf("line %d: expected KEY: VALUE, not %q", l.n, l.text)
		}
		key, rest := match[1], match[2]
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: %s appears twice", l.n, key)
		}
		p.i++

		var err error
		switch {
		case rest != "":
			m[key], err = yamlScalar(rest)
		case p.i < len(p.lines) && p.lines[p.i].indent > indent:
			m[key], err = p.block(p.lines[p.i].indent)
		default:
			m[key] = nil
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (p *yamlParser) sequence(indent int) ([]any, error) {
	var seq []any
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		rest := strings.TrimSpace(strings.TrimPrefix(l.text, "-"))
		if yamlKey.MatchString(rest) {
			// A mapping that starts on the item's line: its keys line up
			// with the first one.
			p.lines[p.i] = yamlLine{n: l.n, indent: indent + 2, text: rest}
			m, err := p.mapping(indent + 2)
			if err != nil {
				return nil, err
			}
			seq = append(seq, m)
			continue
		}
		v, err := yamlScalar(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", l.n, err)
		}
		seq = append(seq, v)
		p.i++
	}
	return seq, nil
}

// yamlScalar reads a value on a key's line: a quoted or plain scalar, or a
// flow sequence of them.
func yamlScalar(s string) (any, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		return strconv.Unquote(s)
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("unterminated %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("unterminated %s", s)
		}
		var seq []any
		for item := range strings.SplitSeq(s[1:len(s)-1], ",") {
			v, err := yamlScalar(strings.TrimSpace(item))
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
		}
		return seq, nil
	case strings.Contains(s, " #"):
		return nil, fmt.Errorf("a comment after %q is new to the test", s)
	}
	return s, nil
}

func TestParseYAML(t *testing.T) {
	got, err := parseYAML(`# top
a: 1
b:
  c: "x y"
  d: ['p', "q"]
e:
  - one
  - k: v
    l: w
`)
	if err != nil {
		t.Fatal(err)
	}
	want := "map[a:1 b:map[c:x y d:[p q]] e:[one map[k:v l:w]]]"
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}

	for _, bad := range []string{"a: 1\na: 2\n", "a:\n\tb: 1\n", "a: 1\n  b: 2\n",
		"a: [1, 2\n", "not a mapping\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("parsing %q: no error", bad)
		}
	}
}
