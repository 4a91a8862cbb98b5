package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contract"
)

// Values move through three forms. The input form is whatever JSON decoding
// or a Go caller hands over. The canonical form is what convert makes of it:
//
//	string, uuid  string (a uuid in lower case with hyphens)
//	date-time     instant
//	integer       int64
//	number        float64
//	boolean       bool
//	array         []any in output form
//
// The output form, which queries return, is JSON-ready: as canonical, but
// date-times as ISO-8601 strings in UTC and embedded records as Records
// holding every field of their class.

// instant is a date-time in whole microseconds since the Unix epoch: the
// precision of the Data API's ISO strings, and exact where a float of
// seconds is not.
type instant int64

// The range of date-times, years 1 to 9999, as ISO-8601 can write them.
var (
	minInstant = instant(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	maxInstant = instant(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro())
)

// convert returns the canonical form of v for field f, or nil for nil.
func convert(f *contract.Field, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if f.Type == contract.TypeArray {
		return toArray(f, v)
	}
	return convertScalar(f.Type, v)
}

// convertScalar returns the canonical form of v, which is not nil, for a
// scalar of type t.
func convertScalar(t contract.FieldType, v any) (any, error) {
	var (
		out any
		ok  bool
	)
	switch t {
	case contract.TypeString:
		out, ok = v.(string)
	case contract.TypeUUID:
		out, ok = toUUID(v)
	case contract.TypeDateTime:
		out, ok = toInstant(v)
	case contract.TypeInteger:
		out, ok = toInteger(v)
	case contract.TypeNumber:
		out, ok = toNumber(v)
	case contract.TypeBoolean:
		out, ok = toBool(v)
	}
	if !ok {
		return nil, fmt.Errorf("%s is not a valid %s", describe(v), t)
	}
	return out, nil
}

// describe names v for error messages without repeating long input.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			return strconv.Quote(x[:40]) + "..."
		}
		return strconv.Quote(x)
	case json.Number, float64, int, int64, bool:
		return fmt.Sprint(x)
	case []any:
		return "an array"
	case map[string]any, Record:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// canonicalUUID reports whether s is a uuid in the form toUUID gives:
// lower-case hex digits in groups of 8, 4, 4, 4 and 12, joined by hyphens.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c < '0' || c > '9' && c < 'a' || c > 'f':
			return false
		}
	}
	return true
}

func toUUID(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		id, err := uuid.Parse(strings.TrimSpace(x))
		return id.String(), err == nil
	case uuid.UUID:
		return x.String(), true
	}
	return "", false
}

// toInteger accepts whole numbers, also when written as 2.0 or as a decimal
// string, as the reference does.
func toInteger(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case float64:
		return wholeNumber(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		return wholeNumber(f)
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// wholeNumber returns f as an int64 if it is a whole number in range.
func wholeNumber(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// toNumber accepts finite numbers and decimal strings.
func toNumber(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// toBool accepts true and false, the numbers 0 and 1, and the strings that
// the reference's models take for them.
func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "on", "t", "y":
			return true, true
		case "false", "0", "no", "off", "f", "n":
			return false, true
		}
		return false, false
	}
	if i, ok := toInteger(v); ok && (i == 0 || i == 1) {
		return i == 1, true
	}
	return false, false
}

// toInstant accepts ISO-8601 strings and epoch seconds, as numbers or as
// decimal strings.
func toInstant(v any) (instant, bool) {
	switch x := v.(type) {
	case time.Time:
		return inRange(x.Round(time.Microsecond).UnixMicro())
	case string:
		if t, ok := parseDateTime(x); ok {
			return inRange(t.UnixMicro())
		}
	}
	secs, ok := toNumber(v)
	if !ok || math.Abs(secs) > float64(maxInstant)/1e6 {
		return 0, false
	}
	return inRange(int64(fromSeconds(secs)))
}

func inRange(us int64) (instant, bool) {
	t := instant(us)
	return t, t >= minInstant && t <= maxInstant
}

// dateTimeLayouts are the ISO-8601 forms that parseDateTime reads, after it
// has turned a space between date and time into a 'T'. time.Parse takes
// fractional seconds after the seconds without being told.
var dateTimeLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05-07",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseDateTime reads an ISO-8601 date-time leniently: 'T' or a space
// between date and time, seconds and their fraction optional, and an offset
// that defaults to UTC (the reference uses the host's zone, which no pod
// should depend on). The result is rounded to the microsecond.
func parseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && (s[10] == ' ' || s[10] == 't') {
		s = s[:10] + "T" + s[11:]
	}
	if strings.HasSuffix(s, "z") {
		s = s[:len(s)-1] + "Z"
	}
	for _, layout := range dateTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Round(time.Microsecond).UTC(), true
		}
	}
	return time.Time{}, false
}

// time returns t as a time.Time in UTC.
func (t instant) time() time.Time {
	return time.UnixMicro(int64(t)).UTC()
}

// seconds returns t as epoch seconds, the form SQLite stores. Dividing the
// exact microseconds once makes equal instants give equal floats, so that
// the "at" filter can compare them. A float64 holds the microseconds
// exactly within some 285 years of 1970; further out, stored date-times
// come back rounded, as in the reference.
func (t instant) seconds() float64 {
	return float64(t) / 1e6
}

// String returns t in ISO-8601 with a Z, and microseconds when there are
// any: the form of query responses.
func (t instant) String() string {
	return t.format("2006-01-02T15:04:05", "Z")
}

// python returns t as Python's str() writes an aware datetime in UTC, the
// form used in counter keys and in the string form of filters.
func (t instant) python() string {
	return t.format("2006-01-02 15:04:05", "+00:00")
}

// fromSeconds converts stored epoch seconds back, rounding to the nearest
// microsecond.
func fromSeconds(secs float64) instant {
	return instant(math.Round(secs * 1e6))
}

func (t instant) format(layout, zone string) string {
	tt := t.time()
	var buf [40]byte
	b := tt.AppendFormat(buf[:0], layout)
	if us := tt.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		for div := 100000; div > 0; div /= 10 {
			b = append(b, byte('0'+us/div%10))
		}
	}
	return string(append(b, zone...))
}

// toArray converts an array field's value: a list of scalars of the field's
// item type, or of records of its item class. The result is in output form.
func toArray(f *contract.Field, v any) ([]any, error) {
	items, ok := asList(v)
	if !ok {
		return nil, fmt.Errorf("%s is not an array", describe(v))
	}

	out := make([]any, len(items))
	for i, item := range items {
		var err error
		out[i], err = arrayItem(f, item)
		if err != nil {
			return nil, within(fmt.Sprintf("[%d]", i), err)
		}
	}
	return out, nil
}

// arrayItem converts one element of an array field to output form.
func arrayItem(f *contract.Field, item any) (any, error) {
	if item == nil {
		return nil, errors.New("null is not allowed in an array")
	}
	if f.ItemClass == nil {
		v, err := convertScalar(f.ItemType, item)
		if err != nil {
			return nil, err
		}
		return output(v), nil
	}

	r, ok := asRecord(item)
	if !ok {
		return nil, fmt.Errorf("%s is not a %s record", describe(item), f.ItemClass.Name)
	}
	vals, err := normalize(f.ItemClass, r)
	if err != nil {
		return nil, err
	}
	return node(f.ItemClass, vals), nil
}

// asList returns the elements of the slice types that JSON decoding and Go
// callers use for arrays.
func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case []string:
		return listOf(x), true
	case []Record:
		return listOf(x), true
	case []map[string]any:
		return listOf(x), true
	}
	return nil, false
}

func listOf[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func asRecord(v any) (Record, bool) {
	switch x := v.(type) {
	case Record:
		return x, true
	case map[string]any:
		return Record(x), true
	}
	return nil, false
}

// output returns the output form of the canonical value v.
func output(v any) any {
	if t, ok := v.(instant); ok {
		return t.String()
	}
	return v
}

// sqlValue returns the canonical value v as SQLite stores it.
func sqlValue(v any) (any, error) {
	switch x := v.(type) {
	case instant:
		return x.seconds(), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case []any:
		return marshalArray(x)
	}
	return v, nil
}

// marshalArray writes an array as the JSON text that BLOB columns hold,
// without escaping HTML characters, which nothing here renders.
func marshalArray(a []any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encoding array: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// fromSQL returns the output form of a column value of field f. A value that
// no longer fits the field, because a contract changed its type, comes back
// as stored rather than being hidden.
func fromSQL(f *contract.Field, v any) any {
	if v == nil {
		return nil
	}
	switch x := v.(type) {
	case []byte:
		if f.Type == contract.TypeArray {
			if out, ok := readArray(f, x); ok {
				return out
			}
			return storedArray(f, x)
		}
	case string:
		// The common cases, which convert would copy.
		if f.Type == contract.TypeString || f.Type == contract.TypeUUID && canonicalUUID(x) {
			return v
		}
	}

	canon, err := convert(f, v)
	if err != nil {
		return v
	}
	return output(canon)
}

// storedArray returns the output form of the stored array b of field f the
// long way: decoded by encoding/json and then converted. Text that is not
// JSON comes back as a string, and a value that does not fit f as decoded.
func storedArray(f *contract.Field, b []byte) any {
	var decoded any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		return string(b)
	}
	canon, err := convert(f, decoded)
	if err != nil {
		return decoded
	}
	return output(canon)
}

// python returns the canonical value v as Python's str() writes it, which
// counter keys and the string form of filters use.
func python(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case instant:
		return x.python()
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return pythonFloat(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

// pythonFloat writes f as Python's repr does: the shortest digits that read
// back as f, in exponent form below 1e-4 and from 1e16 on, and with ".0" on
// whole numbers.
func pythonFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	n, _ := strconv.Atoi(exp)
	if f == 0 || n >= -4 && n < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, n)
}
