package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/byoda/byoda-go/internal/contract"
)

// Limits on filters, which arrive from the network.
const (
	// MaxConditions is the most conditions one filter may have.
	MaxConditions = 64

	// MaxListLength is the most values a vin or nin list may have.
	MaxListLength = 1000

	// MaxPatternLength is the longest regex or glob pattern, in bytes.
	MaxPatternLength = 1024
)

// Filter selects records by the values of their fields, as the filters of
// the Data API do (§3.5): {"<field>": {"<operator>": <value>, ...}, ...}.
// A record is selected when it meets every condition. A condition never
// holds for a field without a value, as in SQL. The zero Filter has no
// conditions and selects every record.
//
// The operators depend on the type of the field:
//
//	string     eq, ne, regex, glob, vin, nin
//	uuid       eq, ne
//	date-time  at, nat, after, before, atafter, atbefore
//	integer    eq, ne, gt, lt, egt (>=), elt (<=)
//	number     eq, ne, gt, lt, egt (>=), elt (<=)
//	boolean    eq, ne
//
// Values go through the field's type as record values do, so a uuid
// compares regardless of case and a date-time may be an ISO-8601 string or
// epoch seconds. regex matches at the start of the value, as Python's
// re.match does, with Go's syntax. glob matches the whole value, with '*'
// for any run of characters, '?' for one, and '[...]' for one of a set.
// vin and nin test membership of a list of strings; given a single string,
// they test whether the field's value is a substring of it, as the
// reference does.
type Filter struct {
	class string
	conds []condition
}

// condition is one "<field> <operator> <value>" of a filter.
type condition struct {
	field *contract.Field
	op    string

	// value is the canonical value compared with; for vin and nin a
	// []string, or a string when substr is set.
	value  any
	substr bool

	re *regexp.Regexp // for regex and glob
}

// ParseFilter reads the JSON filter raw for class: an object of conditions
// per field. Null or an empty raw make the zero Filter. An error, an
// ErrInvalidFilter, names the field and operator at fault: a field the
// class does not have, an operator its type does not take, or a value that
// does not fit the type. A null value for an operator is skipped, as in the
// reference; a null for a field's conditions is an error.
func ParseFilter(class *contract.Class, raw json.RawMessage) (Filter, error) {
	f := Filter{class: class.Name}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return f, nil
	}

	fields, err := members(raw)
	if err != nil {
		return Filter{}, filterError("%v", err)
	}
	rec := class.Record()
	for _, m := range fields {
		conds, err := parseConditions(rec, m.key, m.value)
		if err != nil {
			return Filter{}, err
		}
		f.conds = append(f.conds, conds...)
		if len(f.conds) > MaxConditions {
			return Filter{}, filterError("more than %d conditions", MaxConditions)
		}
	}
	return f, nil
}

// parseConditions reads the conditions on field name of rec.
func parseConditions(rec *contract.Class, name string, raw json.RawMessage) ([]condition, error) {
	field, ok := rec.Field(name)
	if !ok {
		return nil, filterError("%q is not a field of %s", name, rec.Name)
	}
	if !field.Scalar() {
		return nil, filterError("field %q is an array, which filters cannot test", name)
	}
	if isNull(raw) {
		return nil, filterError("field %q has null instead of conditions", name)
	}
	ops, err := members(raw)
	if err != nil {
		return nil, filterError("field %q: %v", name, err)
	}

	var conds []condition
	allowed := operators(field.Type)
	for _, m := range ops {
		if !slices.Contains(allowed, m.key) {
			return nil, filterError("field %q: %q is not an operator for a %s field; use %s",
				name, m.key, field.Type, strings.Join(allowed, ", "))
		}
		if isNull(m.value) {
			continue
		}
		c, err := newCondition(field, m.key, m.value)
		if err != nil {
			return nil, filterError("field %q, operator %q: %v", name, m.key, err)
		}
		conds = append(conds, c)
	}
	return conds, nil
}

func filterError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidFilter, fmt.Sprintf(format, args...))
}

// operators lists the operators that test fields of type t, by the
// reference's names.
func operators(t contract.FieldType) []string {
	switch t {
	case contract.TypeString:
		return []string{"eq", "ne", "regex", "glob", "vin", "nin"}
	case contract.TypeUUID, contract.TypeBoolean:
		return []string{"eq", "ne"}
	case contract.TypeDateTime:
		return []string{"at", "nat", "after", "before", "atafter", "atbefore"}
	case contract.TypeInteger, contract.TypeNumber:
		return []string{"eq", "ne", "gt", "lt", "egt", "elt"}
	}
	return nil
}

// comparison returns the SQL operator of an operator that compares.
func comparison(op string) string {
	switch op {
	case "eq", "at":
		return "="
	case "ne", "nat":
		return "!="
	case "gt", "after":
		return ">"
	case "lt", "before":
		return "<"
	case "egt", "atafter":
		return ">="
	case "elt", "atbefore":
		return "<="
	}
	return ""
}

// newCondition makes the condition "field op raw", raw not being null.
func newCondition(field *contract.Field, op string, raw json.RawMessage) (condition, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return condition{}, err
	}

	c := condition{field: field, op: op}
	switch op {
	case "vin", "nin":
		return c.withList(v)
	case "regex", "glob":
		return c.withPattern(v)
	}
	c.value, err = convertScalar(field.Type, v)
	return c, err
}

// withList sets the value of a vin or nin condition: a list of strings or
// one string.
func (c condition) withList(v any) (condition, error) {
	if s, ok := v.(string); ok {
		c.value, c.substr = s, true
		return c, nil
	}
	items, ok := v.([]any)
	if !ok {
		return c, fmt.Errorf("%s is neither a list of strings nor a string", describe(v))
	}
	if len(items) > MaxListLength {
		return c, fmt.Errorf("the list has more than %d values", MaxListLength)
	}

	list := make([]string, len(items))
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			return c, fmt.Errorf("list value %d, %s, is not a string", i, describe(item))
		}
		list[i] = s
	}
	c.value = list
	return c, nil
}

// withPattern sets the pattern of a regex or glob condition.
func (c condition) withPattern(v any) (condition, error) {
	s, ok := v.(string)
	if !ok {
		return c, fmt.Errorf("%s is not a string", describe(v))
	}
	if len(s) > MaxPatternLength {
		return c, fmt.Errorf("the pattern is longer than %d bytes", MaxPatternLength)
	}

	src := "^(?:" + s + ")"
	if c.op == "glob" {
		var err error
		if src, err = globRegexp(s); err != nil {
			return c, err
		}
	}
	re, err := compilePattern(src)
	if err != nil {
		return c, err
	}
	c.value, c.re = s, re
	return c, nil
}

// RecordFilter returns the filter that selects the records equal to r in
// the required fields of class, in the order of its required list: "at"
// for date-times, "eq" for the rest. Required arrays, which filters cannot
// test, are left out. It finds a row again by what identifies it, as the
// refresh of cache-only rows does.
func RecordFilter(class *contract.Class, r Record) (Filter, error) {
	rec := class.Record()
	f := Filter{class: class.Name}
	for _, name := range rec.Required {
		field, _ := rec.Field(name)
		if !field.Scalar() {
			continue
		}
		if r[name] == nil {
			return Filter{}, &invalidField{path: name, why: errors.New("required, but missing")}
		}
		v, err := convertScalar(field.Type, r[name])
		if err != nil {
			return Filter{}, within(name, err)
		}

		op := "eq"
		if field.Type == contract.TypeDateTime {
			op = "at"
		}
		f.conds = append(f.conds, condition{field: field, op: op, value: v})
	}
	return f, nil
}

// Empty reports whether f has no conditions.
func (f Filter) Empty() bool {
	return len(f.conds) == 0
}

// Class returns the name of the class f was made for; empty for the zero
// Filter, which fits every class.
func (f Filter) Class() string {
	return f.class
}

// String returns f as the reference writes filters in data logs and update
// messages: "<field> <operator> <value>" joined by " and ", with strings,
// uuids and date-times in single quotes, and date-times as Python writes
// them.
func (f Filter) String() string {
	parts := make([]string, len(f.conds))
	for i, c := range f.conds {
		parts[i] = c.field.Name + " " + c.op + " " + c.python()
	}
	return strings.Join(parts, " and ")
}

func (c condition) python() string {
	switch v := c.value.(type) {
	case []string:
		quoted := make([]string, len(v))
		for i, s := range v {
			quoted[i] = "'" + s + "'"
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	case string, instant:
		return "'" + python(v) + "'"
	}
	return python(c.value)
}

// Match reports whether the record r meets every condition of f. r may be
// a node as the Store returns it, or a record as a client sends it. Match
// agrees with the filtering that Query does in SQL; the updates websocket
// uses it to pick the changes a subscriber sees.
func (f Filter) Match(r Record) bool {
	for _, c := range f.conds {
		if !c.holds(r[c.field.Name]) {
			return false
		}
	}
	return true
}

// holds reports whether the field value raw meets c.
func (c condition) holds(raw any) bool {
	if raw == nil {
		return false
	}
	v, err := convertScalar(c.field.Type, raw)
	if err != nil {
		return false
	}

	switch c.op {
	case "regex", "glob":
		return c.re.MatchString(v.(string))
	case "vin":
		return c.in(v.(string))
	case "nin":
		return !c.in(v.(string))
	}
	order, ok := compare(v, c.value)
	if !ok {
		return false
	}
	switch comparison(c.op) {
	case "=":
		return order == 0
	case "!=":
		return order != 0
	case ">":
		return order > 0
	case "<":
		return order < 0
	case ">=":
		return order >= 0
	case "<=":
		return order <= 0
	}
	return false
}

// in tests the value s of a string field against a vin or nin list.
func (c condition) in(s string) bool {
	if c.substr {
		return strings.Contains(c.value.(string), s)
	}
	return slices.Contains(c.value.([]string), s)
}

// compare orders two canonical values of one type; false means they cannot
// be ordered. Booleans only compare equal or not.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return strings.Compare(x, y), ok
	case instant:
		y, ok := b.(instant)
		return cmp.Compare(x, y), ok
	case int64:
		y, ok := b.(int64)
		return cmp.Compare(x, y), ok
	case float64:
		y, ok := b.(float64)
		return cmp.Compare(x, y), ok
	case bool:
		y, ok := b.(bool)
		if x == y {
			return 0, ok
		}
		return 1, ok
	}
	return 0, false
}

// where returns f as an SQL condition, with its arguments appended to args;
// "" when f has no conditions.
func (f Filter) where(args []any) (string, []any) {
	parts := make([]string, len(f.conds))
	for i, c := range f.conds {
		parts[i], args = c.sql(args)
	}
	return strings.Join(parts, " AND "), args
}

func (c condition) sql(args []any) (string, []any) {
	col := quote(fieldColumn(c.field.Name))
	switch c.op {
	case "regex", "glob":
		return fmt.Sprintf("%s(?, %s)", matchFunction, col), append(args, c.re.String())
	case "vin", "nin":
		return c.listSQL(col, args)
	}
	v, _ := sqlValue(c.value) // fails only for arrays, which filters do not test
	return col + " " + comparison(c.op) + " ?", append(args, v)
}

// listSQL writes a vin or nin condition. "x NOT IN ()" holds even for null
// in SQLite, so empty lists are written out.
func (c condition) listSQL(col string, args []any) (string, []any) {
	if c.substr {
		test := " > 0"
		if c.op == "nin" {
			test = " = 0"
		}
		return "instr(?, " + col + ")" + test, append(args, c.value)
	}

	list := c.value.([]string)
	switch {
	case len(list) == 0 && c.op == "vin":
		return "0", args
	case len(list) == 0:
		return col + " IS NOT NULL", args
	}
	in := " IN ("
	if c.op == "nin" {
		in = " NOT IN ("
	}
	for _, s := range list {
		args = append(args, s)
	}
	return col + in + strings.TrimPrefix(strings.Repeat(", ?", len(list)), ", ") + ")", args
}

// check refuses a filter made for another class than cl.
func (f Filter) check(cl *contract.Class) error {
	if f.class != "" && f.class != cl.Name {
		return fmt.Errorf("%w: the filter is for class %s, not %s", ErrInvalidFilter,
			f.class, cl.Name)
	}
	return nil
}

// member is a key and value of a JSON object.
type member struct {
	key   string
	value json.RawMessage
}

// members returns the members of the JSON object raw in their order. A key
// that appears twice is an error, as the reference could not see both.
func members(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("reading JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}

	var ms []member
	for dec.More() && len(ms) <= MaxConditions {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("reading JSON: %w", err)
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("reading JSON: %w", err)
		}
		if slices.ContainsFunc(ms, func(m member) bool { return m.key == key }) {
			return nil, fmt.Errorf("%q appears twice", key)
		}
		ms = append(ms, member{key, v})
	}
	if len(ms) > MaxConditions {
		return nil, fmt.Errorf("more than %d conditions", MaxConditions)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("reading JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return ms, nil
}

// decodeJSON decodes raw, keeping numbers exact.
func decodeJSON(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("reading JSON: %w", err)
	}
	return v, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
