package dataapi

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/store"
)

// Query responses are the bulk of what the Data API writes: pages of up to
// a thousand records, each with every field of its class. Encoding them
// with encoding/json costs more than reading them from the store, mostly
// in reflection and in sorting the keys of every map, so they are written
// by hand here. The output is byte for byte what encoding/json writes:
// object keys sorted, HTML characters escaped, and a final newline. The
// contract keeps the fields of a class sorted by name, so the fields of a
// local record, which come as values in that order, need no sorting, nor
// do the keys of a node that holds every field of its class; a record that
// does not, such as one from another pod, has its keys sorted. Values of
// types the hand-written encoder does not know go through encoding/json.

// maxPooledResponse is the largest response buffer kept for reuse.
const maxPooledResponse = 1 << 20

// responseBuffers keeps the buffers of query responses for later ones.
var responseBuffers = sync.Pool{New: func() any { return new([]byte) }}

// writeQueryResponse writes resp, a page of records of the class rec, as
// api.WriteJSON would.
func writeQueryResponse(w http.ResponseWriter, rec *contract.Class, resp *queryResponse) {
	bp := responseBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledResponse {
			responseBuffers.Put(bp)
		}
	}()

	b := (*bp)[:0]
	if n := responseSize(resp); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b, err := appendQueryResponse(b, rec, resp)
	*bp = b
	if err != nil {
		// Only encoding/json knows how to fail the same way.
		withNodes(rec, resp)
		api.WriteJSON(w, http.StatusOK, resp)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// responseSize guesses how many bytes the JSON of resp takes, so that its
// buffer grows rarely.
func responseSize(resp *queryResponse) int {
	return 256 + 1024*len(resp.Edges)
}

// appendQueryResponse appends the JSON of resp and a newline to b.
func appendQueryResponse(b []byte, rec *contract.Class, resp *queryResponse) ([]byte, error) {
	var err error
	keys := newFieldKeys(rec)
	b = append(b, `{"total_count":`...)
	b = strconv.AppendInt(b, int64(resp.TotalCount), 10)
	b = append(b, `,"edges":`...)
	if resp.Edges == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range resp.Edges {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendEdge(b, rec, keys, &resp.Edges[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}

	b = append(b, `,"page_info":{"has_next_page":`...)
	b = strconv.AppendBool(b, resp.PageInfo.HasNextPage)
	b = append(b, `,"end_cursor":`...)
	b = appendStringPtr(b, resp.PageInfo.EndCursor)
	b = append(b, '}')
	if len(resp.Unanswered) > 0 {
		b = append(b, `,"unanswered_peers":[`...)
		for i, id := range resp.Unanswered {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...), nil
}

func appendEdge(b []byte, rec *contract.Class, keys fieldKeys, e *queryEdge) ([]byte,
	error) {
	b = append(b, `{"cursor":`...)
	b = appendString(b, e.Cursor)
	b = append(b, `,"origin":`...)
	b = appendString(b, e.Origin)
	b = append(b, `,"node":`...)
	var err error
	if e.values != nil {
		b, err = appendValues(b, rec, keys, e.values)
	} else {
		b, err = appendRecord(b, rec, e.Node)
	}
	if err != nil {
		return b, err
	}
	b = append(b, `,"expires_at":`...)
	b = appendStringPtr(b, e.ExpiresAt)
	return append(b, '}'), nil
}

// appendRecord appends r, a record of the class rec when rec is not nil.
func appendRecord(b []byte, rec *contract.Class, r map[string]any) ([]byte, error) {
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
		b = appendString(b, k)
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
		k.text = append(appendString(k.text, f.Name), ':')
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

// withNodes gives the edges of resp that hold values their nodes, for
// encoding/json.
func withNodes(rec *contract.Class, resp *queryResponse) {
	for i := range resp.Edges {
		e := &resp.Edges[i]
		if e.values == nil {
			continue
		}
		e.Node = make(store.Record, len(rec.Fields))
		for j, f := range rec.Fields {
			e.Node[f.Name] = e.values[j]
		}
		e.values = nil
	}
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
		b = appendString(b, f.Name)
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
		return appendString(b, x), nil
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
	case store.Record:
		return appendRecord(b, nil, x)
	case map[string]any:
		return appendRecord(b, nil, x)
	}
	return appendMarshaled(b, v)
}

// appendItem appends an element of an array, a record of class item if
// item is not nil.
func appendItem(b []byte, item *contract.Class, v any) ([]byte, error) {
	switch x := v.(type) {
	case store.Record:
		return appendRecord(b, item, x)
	case map[string]any:
		return appendRecord(b, item, x)
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

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendString appends s as a JSON string. Strings of printable ASCII that
// need no escapes, such as ids, cursors and most names, are copied; the
// others go through encoding/json, which escapes HTML characters, control
// characters, U+2028 and U+2029, and replaces invalid UTF-8.
func appendString(b []byte, s string) []byte {
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
