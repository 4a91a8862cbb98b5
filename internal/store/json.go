package store

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/byoda/byoda-go/internal/contract"
)

// Records go out of the pod as JSON, mostly in pages of query answers, up
// to a thousand records each with every field of its class. Encoding them
// with encoding/json costs more than reading them from the store, mostly
// in reflection and in sorting the keys of every map, so they are written
// by hand here, byte for byte as encoding/json writes them: object keys
// sorted, HTML characters escaped. The contract keeps the fields of a
// class sorted by name, so the values of a local record, which come in
// that order, need no sorting, nor do the keys of a node that holds every
// field of its class; a record that does not, such as one from another
// pod, has its keys sorted. Values of types the encoder does not know go
// through encoding/json.

// AppendJSON appends r as encoding/json writes it, r being a record of the
// class rec when rec is not nil, which spares sorting its keys when it has
// every field of rec.
func AppendJSON(b []byte, rec *contract.Class, r map[string]any) ([]byte, error) {
	if r == nil {
		return append(b, "null"...), nil
	}
	if rec != nil && len(r) == len(rec.Fields) {
		out, ok, err := appendNode(b, rec, r)
		if ok || err != nil {
			return out, err
		}
	}

	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, k)
		b = append(b, ':')
		var f *contract.Field
		if rec != nil {
			f, _ = rec.Field(k)
		}
		var err error
		if b, err = appendValue(b, f, r[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// fieldKeys holds the keys of the fields of a class as JSON writes them,
// with their colons, one after the other: key i ends at end[i].
type fieldKeys struct {
	text []byte
	end  []int
}

func newFieldKeys(rec *contract.Class) fieldKeys {
	k := fieldKeys{end: make([]int, len(rec.Fields))}
	for i, f := range rec.Fields {
		k.text = append(AppendJSONString(k.text, f.Name), ':')
		k.end[i] = len(k.text)
	}
	return k
}

// key returns key i with its colon.
func (k fieldKeys) key(i int) []byte {
	start := 0
	if i > 0 {
		start = k.end[i-1]
	}
	return k.text[start:k.end[i]]
}

// appendValues appends a node of class rec whose fields have the values
// vals, in the order of the fields; keys are the keys of rec's fields.
func appendValues(b []byte, rec *contract.Class, keys fieldKeys, vals []any) ([]byte, error) {
	b = append(b, '{')
	for i, f := range rec.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, keys.key(i)...)
		var err error
		if b, err = appendValue(b, f, vals[i]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendNode appends r, which holds as many keys as rec has fields, with
// its keys in the order of the fields. It reports false if a field is not
// among the keys; b then holds what it held before.
func appendNode(b []byte, rec *contract.Class, r map[string]any) ([]byte, bool, error) {
	b = append(b, '{')
	for i, f := range rec.Fields {
		v, ok := r[f.Name]
		if !ok {
			return b, false, nil
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, f.Name)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, f, v); err != nil {
			return b, false, err
		}
	}
	return append(b, '}'), true, nil
}

// appendValue appends v, the value of field f if f is not nil, which
// tells the class of embedded records.
func appendValue(b []byte, f *contract.Field, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return AppendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		if !math.IsInf(x, 0) && !math.IsNaN(x) {
			return appendFloat(b, x), nil
		}
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		var item *contract.Class
		if f != nil {
			item = f.ItemClass
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendItem(b, item, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case Record:
		return AppendJSON(b, nil, x)
	case map[string]any:
		return AppendJSON(b, nil, x)
	}
	return appendMarshaled(b, v)
}

// appendItem appends an element of an array, a record of class item if
// item is not nil.
func appendItem(b []byte, item *contract.Class, v any) ([]byte, error) {
	switch x := v.(type) {
	case Record:
		return AppendJSON(b, item, x)
	case map[string]any:
		return AppendJSON(b, item, x)
	}
	return appendValue(b, nil, v)
}

// appendMarshaled appends v as encoding/json writes it.
func appendMarshaled(b []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, data...), nil
}

// AppendJSONString appends s as a JSON string, as encoding/json writes
// it. Strings of printable ASCII that need no escapes, such as ids,
// cursors and most names, are copied; the others go through
// encoding/json, which escapes HTML characters, control characters,
// U+2028 and U+2029, and replaces invalid UTF-8.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' ||
			c == '<' || c == '>' || c == '&' {
			data, _ := json.Marshal(s) // a string always encodes
			return append(b, data...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat appends the finite f as encoding/json writes a float64: the
// shortest decimal that reads back as f, in exponent form, with the
// exponent unpadded, when f is below 1e-6 or from 1e21 on.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format != 'e' {
		return b
	}
	// strconv pads the exponent to two digits: 1e-07 becomes 1e-7.
	exp := b[start:]
	if n := len(exp); n >= 4 && exp[n-4] == 'e' && exp[n-3] == '-' && exp[n-2] == '0' {
		exp[n-2] = exp[n-1]
		b = b[:len(b)-1]
	}
	return b
}
