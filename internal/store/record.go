package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/byoda/byoda-go/internal/contract"
)

// Record is one record of a data class, keyed by field name. Records given
// to the Store hold values as encoding/json decodes them (json.Number
// included) or plain Go values: string, bool, int, int64, float64,
// time.Time, uuid.UUID, and []any, []string, []Record or []map[string]any
// for arrays. Records the Store returns hold every field of the class, nil
// where unset, as string (also uuids, and date-times in ISO-8601 UTC with a
// Z), int64, float64, bool or []any, with embedded records as Records.
type Record map[string]any

// Origin says who wrote a row: the requester of the write, as the Data API
// identified it.
type Origin struct {
	// ID is the requester's id: a member id, or a service id for the
	// service.
	ID string

	// IDType is the requester's id type as the wire writes it, such as
	// "members-" or "service-".
	IDType string

	// ClassName is the class that a row of a cache-only class was copied
	// from on another pod; empty for everything else.
	ClassName string
}

// normalize checks r against the record class cl and returns the canonical
// values of its fields that are set. Keys that are not fields of cl are
// dropped, as the reference does; every required field must have a value.
func normalize(cl *contract.Class, r Record) (map[string]any, error) {
	vals := make(map[string]any, len(r))
	for _, f := range cl.Fields {
		raw, ok := r[f.Name]
		if !ok || raw == nil {
			continue
		}
		v, err := convert(f, raw)
		if err != nil {
			return nil, within(f.Name, err)
		}
		vals[f.Name] = v
	}

	var missing []string
	for _, name := range cl.Required {
		if _, ok := vals[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, &invalidField{why: fmt.Errorf("%s record misses required %s",
			cl.Name, plural("field", missing))}
	}
	return vals, nil
}

// invalidField is a record that does not fit its class. It is an
// ErrInvalidRecord whose message leads to the value at fault.
type invalidField struct {
	// path leads from the record to the value, such as
	// "video_thumbnails[1].url"; empty for the record itself.
	path string
	why  error
}

func (e *invalidField) Error() string {
	if e.path == "" {
		return fmt.Sprintf("%v: %v", ErrInvalidRecord, e.why)
	}
	return fmt.Sprintf("%v: field %s: %v", ErrInvalidRecord, e.path, e.why)
}

func (e *invalidField) Unwrap() error { return ErrInvalidRecord }

// within returns err as an invalidField whose path starts with step, a
// field name or an index such as "[1]".
func within(step string, err error) error {
	var inner *invalidField
	if !errors.As(err, &inner) {
		return &invalidField{path: step, why: err}
	}
	switch {
	case inner.path == "":
		return &invalidField{path: step, why: inner.why}
	case strings.HasPrefix(inner.path, "["):
		return &invalidField{path: step + inner.path, why: inner.why}
	}
	return &invalidField{path: step + "." + inner.path, why: inner.why}
}

// node returns the output form of a record of class cl: every field, with
// nil for those vals does not hold.
func node(cl *contract.Class, vals map[string]any) Record {
	n := make(Record, len(cl.Fields))
	for _, f := range cl.Fields {
		n[f.Name] = nil
		if v, ok := vals[f.Name]; ok {
			n[f.Name] = output(v)
		}
	}
	return n
}

// partialNode returns the output form of just the fields in vals.
func partialNode(vals map[string]any) Record {
	n := make(Record, len(vals))
	for name, v := range vals {
		n[name] = output(v)
	}
	return n
}

// plural writes "field a" or "fields a, b".
func plural(noun string, names []string) string {
	if len(names) == 1 {
		return noun + " " + names[0]
	}
	return noun + "s " + strings.Join(names, ", ")
}
