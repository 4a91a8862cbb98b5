package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// Counters count the rows of an array class, all of them or those with
// given values in counter fields (§4.7 of the Data API). The reference
// keeps, in a separate cache, a counter for every combination of counter
// fields of every appended record: 2^n writes per append for n counter
// fields. Here a counter exists once someone asked for it, lives in the
// class's own database, and is changed in the same transaction as the rows
// it counts, by appends, updates, deletes and expiry alike, so it is
// always exact. It starts from a count of the matching rows.
const (
	// counterIdle is how long a counter nobody reads is kept, as long as
	// the reference keeps its cache entries.
	counterIdle = 72 * time.Hour

	// counterTouch is how often reading a counter records that it is in
	// use, so that reading rarely writes.
	counterTouch = time.Hour

	// maxCounters bounds the counters of one class. Past it, Counter
	// counts rows without keeping a counter.
	maxCounters = 1000
)

// Counter returns the number of rows of the array class that f selects. f
// may only test counter fields for equality (eq, or at for date-times);
// the zero Filter counts every row. The first call for a filter counts
// rows; later calls read a counter that writes keep up to date.
//
// Errors: ErrUnknownClass, ErrWrongKind, ErrInvalidFilter.
func (s *Store) Counter(ctx context.Context, class string, f Filter) (int64, error) {
	cl, err := s.class(class, contract.ArrayClass)
	if err == nil {
		err = f.check(cl)
	}
	var key counterKey
	if err == nil {
		key, err = counterKeyOf(f)
	}
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", class, err)
	}

	now := s.now()
	var value int64
	var used float64
	err = s.r.QueryRowContext(ctx,
		"SELECT value, used FROM byoda_counters WHERE class = ? AND conds = ?",
		class, key.conds).Scan(&value, &used)
	switch {
	case err == nil && now.Sub(fromSeconds(used).time()) < counterTouch:
		return value, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("counting %s: reading counter: %w", class, err)
	}

	err = s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		value, err = s.counter(ctx, tx, cl, f, key, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", class, err)
	}
	return value, nil
}

// counter reads the counter key of cl, noting that it is in use, or
// creates it from a count of the rows that f selects.
func (s *Store) counter(ctx context.Context, tx *sql.Tx, cl *contract.Class, f Filter,
	key counterKey, now time.Time) (int64, error) {
	var value int64
	err := tx.QueryRowContext(ctx,
		"SELECT value FROM byoda_counters WHERE class = ? AND conds = ?",
		cl.Name, key.conds).Scan(&value)
	if err == nil {
		_, err = tx.ExecContext(ctx,
			"UPDATE byoda_counters SET used = ? WHERE class = ? AND conds = ?",
			toSeconds(now), cl.Name, key.conds)
		return value, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("reading counter: %w", err)
	}

	count := "SELECT COUNT(*) FROM " + quote(tableName(cl.Name))
	where, args := f.where(nil)
	if where != "" {
		count += " WHERE " + where
	}
	if err := tx.QueryRowContext(ctx, count, args...).Scan(&value); err != nil {
		return 0, fmt.Errorf("counting rows: %w", err)
	}

	var n int
	err = tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM byoda_counters WHERE class = ?",
		cl.Name).Scan(&n)
	if err != nil || n >= maxCounters {
		return value, err
	}
	delete(s.counterKeys, cl.Name)
	_, err = tx.ExecContext(ctx, `INSERT INTO byoda_counters (class, conds, name, value, used)
		VALUES (?, ?, ?, ?, ?)`, cl.Name, key.conds, key.name(cl.Name), value, toSeconds(now))
	if err != nil {
		return 0, fmt.Errorf("creating counter: %w", err)
	}
	s.logger.Debug("created counter", "counter", key.name(cl.Name), "value", value)
	return value, nil
}

// counterKey names a counter by the values that rows must have to count.
type counterKey struct {
	// pairs are the field names and the string forms of their values,
	// sorted by field name.
	pairs [][2]string

	// conds is pairs in JSON, as byoda_counters keeps it.
	conds string
}

// counterKeyOf returns the key of the counter of the rows that f selects.
func counterKeyOf(f Filter) (counterKey, error) {
	pairs := make([][2]string, 0, len(f.conds))
	for _, c := range f.conds {
		if c.op != "eq" && c.op != "at" || !c.field.Counter {
			return counterKey{}, fmt.Errorf("%w: counters count by equality (eq or at) of "+
				"counter fields, not by %s %s", ErrInvalidFilter, c.field.Name, c.op)
		}
		pairs = append(pairs, [2]string{c.field.Name, python(c.value)})
	}
	slices.SortFunc(pairs, func(a, b [2]string) int { return cmp.Compare(a[0], b[0]) })
	return newCounterKey(pairs)
}

func newCounterKey(pairs [][2]string) (counterKey, error) {
	conds, err := json.Marshal(pairs)
	if err != nil {
		return counterKey{}, fmt.Errorf("encoding counter key: %w", err)
	}
	return counterKey{pairs: pairs, conds: string(conds)}, nil
}

// name returns the key as the reference names it: the class, then
// "_<field>=<value>" per pair. Values may hold '_' and '=', so the name is
// for people; conds is the key.
func (k counterKey) name(class string) string {
	var b strings.Builder
	b.WriteString(class)
	for _, p := range k.pairs {
		b.WriteString("_" + p[0] + "=" + p[1])
	}
	return b.String()
}

// counts reports whether a row with the counter field values values counts
// toward k.
func (k counterKey) counts(values map[string]string) bool {
	for _, p := range k.pairs {
		if v, ok := values[p[0]]; !ok || v != p[1] {
			return false
		}
	}
	return true
}

// counterKeys keeps the counters of each class that the writer read, so
// that a write need not read them again: every write of a row that counts
// asks for them. Only the writer goroutine uses it, in its transactions.
// A write that adds or removes counters forgets the classes it changed,
// and a write or transaction that is rolled back forgets all, since what
// was read in it may be undone.
type counterKeys map[string][]counterKey

// loadCounterKeys returns the counters of class, as tx sees them.
func (s *Store) loadCounterKeys(ctx context.Context, tx *sql.Tx, class string) ([]counterKey,
	error) {
	if keys, ok := s.counterKeys[class]; ok {
		return keys, nil
	}
	keys, err := readCounterKeys(ctx, tx, class)
	if err != nil {
		return nil, err
	}
	s.counterKeys[class] = keys
	return keys, nil
}

// readCounterKeys reads the counters of class.
func readCounterKeys(ctx context.Context, tx *sql.Tx, class string) ([]counterKey, error) {
	rows, err := tx.QueryContext(ctx, "SELECT conds FROM byoda_counters WHERE class = ?", class)
	if err != nil {
		return nil, fmt.Errorf("reading counters: %w", err)
	}
	defer rows.Close()

	var keys []counterKey
	for rows.Next() {
		var conds string
		if err := rows.Scan(&conds); err != nil {
			return nil, fmt.Errorf("reading counters: %w", err)
		}
		var pairs [][2]string
		if err := json.Unmarshal([]byte(conds), &pairs); err != nil {
			return nil, fmt.Errorf("reading counter %s: %w", conds, err)
		}
		keys = append(keys, counterKey{pairs: pairs, conds: conds})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading counters: %w", err)
	}
	return keys, nil
}

// adjustCounters counts the rows removed out of the counters of class and
// the rows added into them. A row is the string forms of its counter
// fields.
func adjustCounters(ctx context.Context, tx *sql.Tx, class string, keys []counterKey,
	removed, added []map[string]string) error {
	for _, k := range keys {
		delta := 0
		for _, r := range removed {
			if k.counts(r) {
				delta--
			}
		}
		for _, r := range added {
			if k.counts(r) {
				delta++
			}
		}
		if delta == 0 {
			continue
		}
		_, err := tx.ExecContext(ctx, `UPDATE byoda_counters SET value = MAX(0, value + ?)
			WHERE class = ? AND conds = ?`, delta, class, k.conds)
		if err != nil {
			return fmt.Errorf("updating counter %s: %w", k.name(class), err)
		}
	}
	return nil
}

// counterValues returns the string forms of the counter fields of a record
// of rec that vals sets.
func counterValues(rec *contract.Class, vals map[string]any) map[string]string {
	out := map[string]string{}
	for _, f := range rec.Fields {
		if v, ok := vals[f.Name]; ok && f.Counter {
			out[f.Name] = python(v)
		}
	}
	return out
}

// counterColumns lists the columns of the counter fields of cl, quoted; "1"
// when it has none, for a statement that must return something per row.
func counterColumns(cl *contract.Class) string {
	var cols []string
	for _, f := range counterFields(cl) {
		cols = append(cols, quote(fieldColumn(f.Name)))
	}
	if len(cols) == 0 {
		return "1"
	}
	return strings.Join(cols, ", ")
}

func counterFields(cl *contract.Class) []*contract.Field {
	var fields []*contract.Field
	for _, f := range cl.Record().Fields {
		if f.Counter {
			fields = append(fields, f)
		}
	}
	return fields
}

// counterRows runs query, which returns the columns of counterColumns, and
// returns each row as the string forms of its counter fields.
func counterRows(ctx context.Context, tx *sql.Tx, cl *contract.Class, query string,
	args []any) ([]map[string]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading counted values: %w", err)
	}
	defer rows.Close()

	fields := counterFields(cl)
	values := make([]any, max(len(fields), 1))
	dest := make([]any, len(values))
	for i := range values {
		dest[i] = &values[i]
	}

	var out []map[string]string
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("reading counted values: %w", err)
		}
		canon := map[string]any{}
		for i, f := range fields {
			if v, err := convert(f, values[i]); err == nil && v != nil {
				canon[f.Name] = v
			}
		}
		out = append(out, counterValues(cl.Record(), canon))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading counted values: %w", err)
	}
	return out, nil
}
