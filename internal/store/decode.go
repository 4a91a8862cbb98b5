package store

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/byoda/byoda-go/internal/contract"
)

// Arrays are stored as JSON text. Reading one back through encoding/json
// and then convert decodes it twice and builds every embedded record three
// times, which made the arrays the larger part of the cost of a query.
// readArray reads the text once, straight into output form. It knows only
// the text a well-formed array has: on anything else, such as a key that
// is no field, a null in an array, a value that does not fit its field or
// broken JSON, it gives up, and fromSQL takes the long way, which decides
// what such a value becomes. Where readArray succeeds, it gives what the
// long way gives; FuzzReadArray checks that.

// errSlowPath stops readArray; the caller takes the long way.
var errSlowPath = errors.New("not a plain stored array")

// arrayText is the JSON text of a stored array and a position in it.
type arrayText struct {
	s string
	i int
}

// readArray returns the output form of the stored array b of field f.
func readArray(f *contract.Field, b []byte) (any, bool) {
	t := &arrayText{s: string(b)}
	t.space()
	v, err := t.array(f)
	if err != nil {
		return nil, false
	}
	if t.space(); t.i != len(t.s) {
		return nil, false
	}
	return v, true
}

// space skips JSON white space.
func (t *arrayText) space() {
	for t.i < len(t.s) {
		switch t.s[t.i] {
		case ' ', '\t', '\n', '\r':
			t.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, 0 at the end.
func (t *arrayText) next() byte {
	t.space()
	if t.i == len(t.s) {
		return 0
	}
	return t.s[t.i]
}

// expect consumes c, the next byte after white space.
func (t *arrayText) expect(c byte) error {
	if t.next() != c {
		return errSlowPath
	}
	t.i++
	return nil
}

// array reads an array of the items of f.
func (t *arrayText) array(f *contract.Field) ([]any, error) {
	if err := t.expect('['); err != nil {
		return nil, err
	}
	out := []any{}
	if t.next() == ']' {
		t.i++
		return out, nil
	}
	for {
		v, err := t.item(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch t.next() {
		case ',':
			t.i++
		case ']':
			t.i++
			return out, nil
		default:
			return nil, errSlowPath
		}
	}
}

// item reads an element of an array of f, in output form.
func (t *arrayText) item(f *contract.Field) (any, error) {
	if f.ItemClass != nil {
		return t.record(f.ItemClass)
	}
	v, err := t.scalar()
	if err != nil || v == nil {
		return nil, errSlowPath
	}
	canon, err := convertScalar(f.ItemType, v)
	if err != nil {
		return nil, errSlowPath
	}
	return output(canon), nil
}

// record reads an embedded record of class cl as node makes it.
func (t *arrayText) record(cl *contract.Class) (Record, error) {
	if err := t.expect('{'); err != nil {
		return nil, err
	}
	n := make(Record, len(cl.Fields))
	for _, f := range cl.Fields {
		n[f.Name] = nil
	}
	if t.next() == '}' {
		t.i++
		return n, requiredSet(cl, n)
	}
	for {
		if t.next() != '"' {
			return nil, errSlowPath
		}
		key, err := t.str()
		if err != nil {
			return nil, err
		}
		f, ok := cl.Field(key)
		if !ok {
			return nil, errSlowPath
		}
		if err := t.expect(':'); err != nil {
			return nil, err
		}
		if n[key], err = t.field(f); err != nil {
			return nil, err
		}

		switch t.next() {
		case ',':
			t.i++
		case '}':
			t.i++
			return n, requiredSet(cl, n)
		default:
			return nil, errSlowPath
		}
	}
}

// field reads the value of field f of an embedded record, in output form;
// nil for null, which leaves the field unset.
func (t *arrayText) field(f *contract.Field) (any, error) {
	if f.Type == contract.TypeArray {
		if t.next() == 'n' {
			return t.scalar()
		}
		return t.array(f)
	}
	v, err := t.scalar()
	if err != nil || v == nil {
		return nil, err
	}
	canon, err := convertScalar(f.Type, v)
	if err != nil {
		return nil, errSlowPath
	}
	return output(canon), nil
}

// requiredSet checks that the node n of class cl has its required fields,
// as normalize does.
func requiredSet(cl *contract.Class, n Record) error {
	for _, name := range cl.Required {
		if n[name] == nil {
			return errSlowPath
		}
	}
	return nil
}

// scalar reads a string, a number as a json.Number, a boolean or null, as
// encoding/json decodes them with UseNumber.
func (t *arrayText) scalar() (any, error) {
	switch c := t.next(); {
	case c == '"':
		return t.str()
	case c == '-' || c >= '0' && c <= '9':
		return t.number()
	}
	for _, lit := range []struct {
		text string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if len(t.s)-t.i >= len(lit.text) && t.s[t.i:t.i+len(lit.text)] == lit.text {
			t.i += len(lit.text)
			return lit.v, nil
		}
	}
	return nil, errSlowPath
}

// str reads a string. One without escapes is a slice of the text; one
// with escapes or with invalid UTF-8 goes through encoding/json.
func (t *arrayText) str() (string, error) {
	start := t.i
	t.i++
	plain := true
	for t.i < len(t.s) {
		switch c := t.s[t.i]; {
		case c == '"':
			t.i++
			if plain {
				return t.s[start+1 : t.i-1], nil
			}
			var s string
			if err := json.Unmarshal([]byte(t.s[start:t.i]), &s); err != nil {
				return "", errSlowPath
			}
			return s, nil
		case c == '\\':
			plain = false
			t.i += 2
		case c < 0x20:
			return "", errSlowPath
		case c < utf8.RuneSelf:
			t.i++
		default:
			r, size := utf8.DecodeRuneInString(t.s[t.i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			t.i += size
		}
	}
	return "", errSlowPath
}

// number reads a number in JSON's grammar.
func (t *arrayText) number() (json.Number, error) {
	start := t.i
	if t.peek() == '-' {
		t.i++
	}
	switch {
	case t.peek() == '0':
		t.i++
	case t.digits() == 0:
		return "", errSlowPath
	}
	if t.peek() == '.' {
		t.i++
		if t.digits() == 0 {
			return "", errSlowPath
		}
	}
	if c := t.peek(); c == 'e' || c == 'E' {
		t.i++
		if c := t.peek(); c == '+' || c == '-' {
			t.i++
		}
		if t.digits() == 0 {
			return "", errSlowPath
		}
	}
	return json.Number(t.s[start:t.i]), nil
}

// peek returns the byte at the position, 0 at the end.
func (t *arrayText) peek() byte {
	if t.i == len(t.s) {
		return 0
	}
	return t.s[t.i]
}

// digits skips decimal digits and returns how many.
func (t *arrayText) digits() int {
	start := t.i
	for t.i < len(t.s) && t.s[t.i] >= '0' && t.s[t.i] <= '9' {
		t.i++
	}
	return t.i - start
}
