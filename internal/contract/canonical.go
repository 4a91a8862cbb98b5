package contract

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is the deepest nesting of objects and arrays that Canonical
// accepts. The reference implementation cannot serialize deeper documents, so
// no signature over one could ever be checked there; the limit also bounds the
// recursion of the parser.
const maxDepth = 255

// ErrMalformed is wrapped by every error about a document that is not JSON
// that Canonical accepts.
var ErrMalformed = errors.New("malformed contract JSON")

// Canonical returns the canonical form of the JSON document doc, the bytes
// that contract signatures cover:
//
//   - object members sorted by the code points of their names, one per line,
//     indented by two spaces per level and written as "name": value;
//   - {} and [] for empty objects and arrays;
//   - strings as raw UTF-8 with only the quote, the backslash and the control
//     characters below U+0020 escaped (\b \t \n \f \r, else \u00xx);
//   - a number without '.', 'e' or 'E' as an integer, in decimal;
//   - any other number as the shortest decimal that reads back as the same
//     float64, always with a '.' or an exponent;
//   - no newline at the end.
//
// Canonical refuses, with an error wrapping ErrMalformed, what would make
// the signed bytes ambiguous or impossible to reproduce: duplicate member
// names, invalid UTF-8, unpaired surrogates, integers outside the int64 and
// uint64 ranges, numbers too large for a float64, and nesting deeper than 255.
func Canonical(doc []byte) ([]byte, error) {
	v, err := parse(doc)
	if err != nil {
		return nil, err
	}

	return v.appendCanonical(nil, 0), nil
}

// A value is a parsed JSON value that can write itself in canonical form.
type value interface {
	appendCanonical(b []byte, indent int) []byte
}

type (
	jsonNull   struct{}
	jsonBool   bool
	jsonNumber string // already in canonical form
	jsonString string
	jsonArray  []value
	jsonObject map[string]value
)

func (jsonNull) appendCanonical(b []byte, _ int) []byte {
	return append(b, "null"...)
}

func (v jsonBool) appendCanonical(b []byte, _ int) []byte {
	return strconv.AppendBool(b, bool(v))
}

func (v jsonNumber) appendCanonical(b []byte, _ int) []byte {
	return append(b, v...)
}

func (v jsonString) appendCanonical(b []byte, _ int) []byte {
	return appendString(b, string(v))
}

func (v jsonArray) appendCanonical(b []byte, indent int) []byte {
	if len(v) == 0 {
		return append(b, "[]"...)
	}

	b = append(b, '[')
	for i, elem := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNewline(b, indent+2)
		b = elem.appendCanonical(b, indent+2)
	}
	b = appendNewline(b, indent)
	return append(b, ']')
}

func (v jsonObject) appendCanonical(b []byte, indent int) []byte {
	if len(v) == 0 {
		return append(b, "{}"...)
	}

	// Byte order of UTF-8 strings is code point order.
	b = append(b, '{')
	for i, name := range slices.Sorted(maps.Keys(v)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNewline(b, indent+2)
		b = appendString(b, name)
		b = append(b, ": "...)
		b = v[name].appendCanonical(b, indent+2)
	}
	b = appendNewline(b, indent)
	return append(b, '}')
}

func appendNewline(b []byte, indent int) []byte {
	b = append(b, '\n')
	for range indent {
		b = append(b, ' ')
	}
	return b
}

// appendString quotes s, which must be valid UTF-8. Only ASCII bytes are ever
// escaped, so s can be scanned byte by byte.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"

	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}

		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// canonicalNumber turns the JSON number literal lit into its canonical text.
// Like the reference, it reads a literal with a fraction or an exponent as a
// float64 and any other as an integer.
func canonicalNumber(lit string) (jsonNumber, error) {
	if strings.ContainsAny(lit, ".eE") {
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return "", fmt.Errorf("number %.40s does not fit a float64", lit)
		}
		return jsonNumber(formatFloat(f)), nil
	}

	if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return jsonNumber(strconv.FormatInt(i, 10)), nil
	}
	if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
		return jsonNumber(strconv.FormatUint(u, 10)), nil
	}
	return "", fmt.Errorf("integer %.40s is outside the 64-bit range", lit)
}

// formatFloat writes f with the shortest digits that read back as f. Where
// the decimal point falls within the first 16 digits, or at most five places
// before them, f is written in positional notation, with ".0" when it is a
// whole number; otherwise in exponent notation such as 1e16 or 1.5e-7.
func formatFloat(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}

	sci := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±dd
	sign, sci := "", sci
	if sci[0] == '-' {
		sign, sci = "-", sci[1:]
	}
	mantissa, exp, _ := strings.Cut(sci, "e")
	digits := strings.Replace(mantissa, ".", "", 1)
	e, _ := strconv.Atoi(exp)

	n := len(digits)
	point := e + 1 // how many digits come before the decimal point
	switch {
	case n <= point && point <= 16:
		return sign + digits + strings.Repeat("0", point-n) + ".0"
	case 0 < point && point <= 16:
		return sign + digits[:point] + "." + digits[point:]
	case -5 < point && point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits
	case n == 1:
		return sign + digits + "e" + strconv.Itoa(e)
	default:
		return sign + digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(e)
	}
}

// parser reads one JSON document (RFC 8259) strictly: it takes no NaN,
// Infinity, comments or trailing commas.
type parser struct {
	data []byte
	pos  int
}

// parse reads doc into a tree of values.
func parse(doc []byte) (value, error) {
	p := &parser{data: doc}

	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}

	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, p.fail("data after the document")
	}
	return v, nil
}

func (p *parser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrMalformed, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// consume skips c if it is the next byte.
func (p *parser) consume(c byte) bool {
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// value reads the value at p.pos, which sits inside depth containers.
func (p *parser) value(depth int) (value, error) {
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end of document")
	}

	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		return jsonString(s), err
	case c == '-' || isDigit(c):
		return p.number()
	default:
		return p.literal()
	}
}

func (p *parser) literal() (value, error) {
	for _, lit := range []struct {
		text string
		v    value
	}{{"true", jsonBool(true)}, {"false", jsonBool(false)}, {"null", jsonNull{}}} {
		if bytes.HasPrefix(p.data[p.pos:], []byte(lit.text)) {
			p.pos += len(lit.text)
			return lit.v, nil
		}
	}
	return nil, p.fail("unexpected character %q", p.data[p.pos])
}

func (p *parser) object(depth int) (value, error) {
	if depth > maxDepth {
		return nil, p.fail("nested deeper than %d", maxDepth)
	}
	p.pos++ // '{'

	obj := jsonObject{}
	p.skipSpace()
	if p.consume('}') {
		return obj, nil
	}
	for {
		name, err := p.memberName()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[name]; dup {
			return nil, p.fail("duplicate member name %.40q", name)
		}

		p.skipSpace()
		obj[name], err = p.value(depth)
		if err != nil {
			return nil, err
		}

		p.skipSpace()
		if p.consume('}') {
			return obj, nil
		}
		if !p.consume(',') {
			return nil, p.fail("expected ',' or '}' after an object member")
		}
		p.skipSpace()
	}
}

// memberName reads a member name and the colon after it.
func (p *parser) memberName() (string, error) {
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", p.fail("expected a member name")
	}
	name, err := p.string()
	if err != nil {
		return "", err
	}

	p.skipSpace()
	if !p.consume(':') {
		return "", p.fail("expected ':' after a member name")
	}
	return name, nil
}

func (p *parser) array(depth int) (value, error) {
	if depth > maxDepth {
		return nil, p.fail("nested deeper than %d", maxDepth)
	}
	p.pos++ // '['

	arr := jsonArray{}
	p.skipSpace()
	if p.consume(']') {
		return arr, nil
	}
	for {
		elem, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, elem)

		p.skipSpace()
		if p.consume(']') {
			return arr, nil
		}
		if !p.consume(',') {
			return nil, p.fail("expected ',' or ']' after an array element")
		}
		p.skipSpace()
	}
}

// number reads a number literal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() (value, error) {
	start := p.pos

	p.consume('-')
	if !p.consume('0') && p.digits() == 0 {
		return nil, p.fail("malformed number")
	}
	if p.consume('.') && p.digits() == 0 {
		return nil, p.fail("malformed number fraction")
	}
	if p.consume('e') || p.consume('E') {
		if !p.consume('+') {
			p.consume('-')
		}
		if p.digits() == 0 {
			return nil, p.fail("malformed number exponent")
		}
	}

	n, err := canonicalNumber(string(p.data[start:p.pos]))
	if err != nil {
		return nil, p.fail("%v", err)
	}
	return n, nil
}

// digits skips a run of ASCII digits and says how long it was.
func (p *parser) digits() int {
	start := p.pos
	for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
		p.pos++
	}
	return p.pos - start
}

func isDigit(c byte) bool {
	return '0' <= c && c <= '9'
}

// string reads a quoted string.
func (p *parser) string() (string, error) {
	p.pos++ // opening quote

	var b []byte
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(b), nil
		case c == '\\':
			var err error
			if b, err = p.escape(b); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", p.fail("control character %#02x in a string", c)
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail("invalid UTF-8")
			}
			b = append(b, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
	return "", p.fail("unterminated string")
}

// escape reads the escape sequence at p.pos and appends what it stands for.
func (p *parser) escape(b []byte) ([]byte, error) {
	if p.pos+1 >= len(p.data) {
		return nil, p.fail("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2

	if short := strings.IndexByte(`"\/bfnrt`, c); short >= 0 {
		return append(b, "\"\\/\b\f\n\r\t"[short]), nil
	}
	if c != 'u' {
		return nil, p.fail("unknown escape \\%c", c)
	}

	r, err := p.hex4()
	if err != nil {
		return nil, err
	}
	if utf16.IsSurrogate(r) {
		// Only a high surrogate directly followed by a low one is a character.
		if !p.consume('\\') || !p.consume('u') {
			return nil, p.fail("unpaired surrogate \\u%04x", r)
		}
		low, err := p.hex4()
		if err != nil {
			return nil, err
		}
		if r = utf16.DecodeRune(r, low); r == utf8.RuneError {
			return nil, p.fail("unpaired surrogate in \\u escapes")
		}
	}
	return utf8.AppendRune(b, r), nil
}

// hex4 reads the four hex digits of a \u escape.
func (p *parser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.fail("short \\u escape")
	}

	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		d, ok := hexValue(c)
		if !ok {
			return 0, p.fail("bad hex digit %q in \\u escape", c)
		}
		r = r<<4 | d
	}
	p.pos += 4
	return r, nil
}

func hexValue(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}
