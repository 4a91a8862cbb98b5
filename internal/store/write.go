package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// maxCursorTries bounds the draws of an unused cursor. A cursor shares its
// high half with at most 255 other rows in every 2^24 appended to its
// table (see newCursor), so a draw collides about once in 256 at worst
// until a table has grown past tens of millions of rows.
const maxCursorTries = 8

// Mutate replaces the record of the object class with r and returns 1, the
// number of records written. Fields that r leaves out become null. The
// record's cursor is "", as in the reference.
//
// Errors: ErrUnknownClass, ErrWrongKind, ErrInvalidRecord (also for a
// record without fields), ErrNotCacheOnly.
func (s *Store) Mutate(ctx context.Context, class string, r Record, o Origin) (int, error) {
	cl, err := s.class(class, contract.ObjectClass)
	if err != nil {
		return 0, fmt.Errorf("mutating %s: %w", class, err)
	}
	vals, err := writable(cl, r, o)
	if err != nil {
		return 0, fmt.Errorf("mutating %s: %w", class, err)
	}

	rw, err := s.newRow(cl, vals, o)
	if err != nil {
		return 0, fmt.Errorf("mutating %s: %w", class, err)
	}
	rw.add(colCursor, "")
	err = s.write(ctx, rw.size(), func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+quote(tableName(class))); err != nil {
			return fmt.Errorf("deleting the old record: %w", err)
		}
		if _, err := tx.ExecContext(ctx, rw.insert(tableName(class)), rw.args...); err != nil {
			return fmt.Errorf("inserting the record: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mutating %s: %w", class, err)
	}
	return 1, nil
}

// Append adds r to the array class and returns its edge: the new cursor,
// the origin and every field of the record. A row of a cache-only class
// expires after the class's time span. The counters that count the record
// go up.
//
// Errors: ErrUnknownClass, ErrWrongKind, ErrInvalidRecord, ErrNotCacheOnly.
func (s *Store) Append(ctx context.Context, class string, r Record, o Origin) (Edge, error) {
	cl, err := s.class(class, contract.ArrayClass)
	if err != nil {
		return Edge{}, fmt.Errorf("appending to %s: %w", class, err)
	}
	if err := checkOrigin(cl, o); err != nil {
		return Edge{}, fmt.Errorf("appending to %s: %w", class, err)
	}
	vals, err := normalize(cl.Items, r)
	if err != nil {
		return Edge{}, fmt.Errorf("appending to %s: %w", class, err)
	}
	rw, err := s.newRow(cl, vals, o)
	if err != nil {
		return Edge{}, fmt.Errorf("appending to %s: %w", class, err)
	}

	var cursor string
	err = s.write(ctx, rw.size(), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if cursor, err = s.appendRow(ctx, tx, class, rw); err != nil {
			return err
		}
		keys, err := s.loadCounterKeys(ctx, tx, class)
		if err != nil {
			return err
		}
		added := []map[string]string{counterValues(cl.Items, vals)}
		return adjustCounters(ctx, tx, class, keys, nil, added)
	})
	if err != nil {
		return Edge{}, fmt.Errorf("appending to %s: %w", class, err)
	}
	return Edge{Cursor: cursor, Origin: o, Expires: rw.expires, Node: node(cl.Items, vals)}, nil
}

// AppendMany appends the records rs to the array class as Append would, one
// after the other, but in one transaction: it appends all of them or, when
// one fails, none. It returns how many it appended. Loading many records
// this way costs one commit rather than one per record; the records are
// held in memory until then, so a large load goes in parts.
//
// Errors: ErrUnknownClass, ErrWrongKind, ErrInvalidRecord (naming the
// record at fault), ErrNotCacheOnly.
func (s *Store) AppendMany(ctx context.Context, class string, rs []Record, o Origin) (int,
	error) {
	cl, err := s.class(class, contract.ArrayClass)
	if err == nil {
		err = checkOrigin(cl, o)
	}
	if err != nil {
		return 0, fmt.Errorf("appending to %s: %w", class, err)
	}

	rows := make([]row, len(rs))
	added := make([]map[string]string, len(rs))
	size := 0
	for i, r := range rs {
		vals, err := normalize(cl.Items, r)
		if err == nil {
			rows[i], err = s.newRow(cl, vals, o)
		}
		if err != nil {
			return 0, fmt.Errorf("appending to %s: record %d: %w", class, i, err)
		}
		added[i] = counterValues(cl.Items, vals)
		size += rows[i].size()
	}

	err = s.write(ctx, size, func(ctx context.Context, tx *sql.Tx) error {
		for _, rw := range rows {
			if _, err := s.appendRow(ctx, tx, class, rw); err != nil {
				return err
			}
		}
		keys, err := s.loadCounterKeys(ctx, tx, class)
		if err != nil {
			return err
		}
		return adjustCounters(ctx, tx, class, keys, nil, added)
	})
	if err != nil {
		return 0, fmt.Errorf("appending to %s: %w", class, err)
	}
	return len(rs), nil
}

// Update sets the fields of r that have a value in every row of the array
// class that f selects, and returns how many rows it changed together with
// the fields it set, in output form. As in the reference, r must hold the
// required fields, and no field can be cleared. Rows keep their cursors,
// so that a listing in progress does not lose its place; the origin
// becomes o, and rows of a cache-only class get a new expiry. Counters
// follow the changed values.
//
// Errors: ErrUnknownClass, ErrWrongKind, ErrEmptyFilter, ErrInvalidFilter,
// ErrInvalidRecord, ErrNotCacheOnly.
func (s *Store) Update(ctx context.Context, class string, f Filter, r Record,
	o Origin) (int, Record, error) {
	cl, err := s.class(class, contract.ArrayClass)
	if err == nil {
		err = checkFilter(cl, f)
	}
	var vals map[string]any
	if err == nil {
		vals, err = writable(cl, r, o)
	}
	var rw row
	if err == nil {
		rw, err = s.newRow(cl, vals, o)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("updating %s: %w", class, err)
	}

	var n int
	err = s.writeChanging(ctx, class, rw.size(), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = s.updateRows(ctx, tx, cl, f, rw, counterValues(cl.Items, vals))
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("updating %s: %w", class, err)
	}
	return n, partialNode(vals), nil
}

// Delete deletes the rows of the array class that f selects and returns
// how many there were. The counters that counted them go down.
//
// Errors: ErrUnknownClass, ErrWrongKind, ErrEmptyFilter, ErrInvalidFilter.
func (s *Store) Delete(ctx context.Context, class string, f Filter) (int, error) {
	cl, err := s.class(class, contract.ArrayClass)
	if err == nil {
		err = checkFilter(cl, f)
	}
	if err != nil {
		return 0, fmt.Errorf("deleting from %s: %w", class, err)
	}

	where, args := f.where(nil)
	var n int
	err = s.writeChanging(ctx, class, 0, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = s.deleteRows(ctx, tx, cl, where, args)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deleting from %s: %w", class, err)
	}
	return n, nil
}

// Expire deletes the rows of cache-only classes that expire at or before
// now, and the counters that nobody read for three days, and returns the
// number of rows deleted. The pod calls it now and then, with a now some
// minutes ahead to drop rows just before they expire.
func (s *Store) Expire(ctx context.Context, now time.Time) (int, error) {
	c := s.Contract()
	total := 0
	for _, name := range c.ClassNames() {
		cl := c.Classes[name]
		if cl.CacheOnly == 0 {
			continue
		}
		where := quote(colExpires) + " <= ?"
		args := []any{toSeconds(now)}
		var n int
		err := s.writeChanging(ctx, name, 0, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			n, err = s.deleteRows(ctx, tx, cl, where, args)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("expiring rows of %s: %w", name, err)
		}
		total += n
	}

	err := s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		clear(s.counterKeys)
		_, err := tx.ExecContext(ctx, "DELETE FROM byoda_counters WHERE used < ?",
			toSeconds(now.Add(-counterIdle)))
		return err
	})
	if err != nil {
		return total, fmt.Errorf("expiring counters: %w", err)
	}
	return total, nil
}

// checkOrigin refuses an origin class name for a class that is not
// cache-only: only copies of other pods' records have one.
func checkOrigin(cl *contract.Class, o Origin) error {
	if o.ClassName != "" && cl.CacheOnly == 0 {
		return fmt.Errorf("%w: %s", ErrNotCacheOnly, cl.Name)
	}
	return nil
}

// checkFilter checks the filter of an update or delete, which must have a
// condition.
func checkFilter(cl *contract.Class, f Filter) error {
	if err := f.check(cl); err != nil {
		return err
	}
	if f.Empty() {
		return ErrEmptyFilter
	}
	return nil
}

// writable normalizes the record of a mutate or update, which must set at
// least one field.
func writable(cl *contract.Class, r Record, o Origin) (map[string]any, error) {
	if err := checkOrigin(cl, o); err != nil {
		return nil, err
	}
	vals, err := normalize(cl.Record(), r)
	if err != nil {
		return nil, err
	}
	if len(vals) == 0 {
		return nil, &invalidField{why: errors.New("the record sets no field")}
	}
	return vals, nil
}

// row holds the columns of a row to write, quoted, and their values.
type row struct {
	cols    []string
	args    []any
	expires time.Time // zero unless the class is cache-only
}

func (rw *row) add(col string, v any) {
	rw.cols = append(rw.cols, quote(col))
	rw.args = append(rw.args, v)
}

// newRow returns the columns that writing vals with origin o to a row of
// cl sets.
func (s *Store) newRow(cl *contract.Class, vals map[string]any, o Origin) (row, error) {
	var rw row
	for _, f := range cl.Record().Fields {
		v, ok := vals[f.Name]
		if !ok {
			continue
		}
		sv, err := sqlValue(v)
		if err != nil {
			return row{}, err
		}
		rw.add(fieldColumn(f.Name), sv)
	}

	rw.add(colID, o.ID)
	rw.add(colIDType, o.IDType)
	if cl.CacheOnly > 0 {
		rw.expires = s.now().Add(cl.CacheOnly).UTC().Round(time.Microsecond)
		rw.add(colExpires, toSeconds(rw.expires))
	}
	if o.ClassName != "" {
		rw.add(colOriginClassName, o.ClassName)
	}
	return rw, nil
}

// size is about how many bytes writing rw takes, for the bounds of a batch
// of writes.
func (rw row) size() int {
	n := 0
	for _, v := range rw.args {
		switch x := v.(type) {
		case string:
			n += len(x)
		case []byte:
			n += len(x)
		default:
			n += 8
		}
	}
	return n
}

// insert returns the INSERT statement of the row into table.
func (rw row) insert(table string) string {
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", quote(table),
		strings.Join(rw.cols, ", "), placeholders(len(rw.cols)))
}

// appendRow inserts rw into the table of class with an unused cursor, which
// it returns.
func (s *Store) appendRow(ctx context.Context, tx *sql.Tx, class string, rw row) (string,
	error) {
	rw.cols, rw.args = slices.Clone(rw.cols), slices.Clone(rw.args)
	rw.add(colCursor, "")
	table := tableName(class)
	insert := rw.insert(table) + " ON CONFLICT (" + quote(colCursor) + ") DO NOTHING"

	last, err := s.lastRowid(ctx, tx, table)
	if err != nil {
		return "", err
	}
	for range maxCursorTries {
		cursor := newCursor(last + 1)
		rw.args[len(rw.args)-1] = cursor
		res, err := tx.ExecContext(ctx, insert, rw.args...)
		if err != nil {
			return "", fmt.Errorf("inserting the record: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return "", fmt.Errorf("inserting the record: %w", err)
		}
		if n == 0 {
			continue // the cursor was taken
		}
		if id, err := res.LastInsertId(); err == nil {
			s.lastRowids[table] = id
		}
		return cursor, nil
	}
	return "", errors.New("inserting the record: found no unused cursor")
}

// lastRowid returns the rowid of the row last appended to table, as far
// as the writer knows: the largest when it first asks, then that of each
// row it appends. It only places cursors (see newCursor), so that it may
// run ahead of the table after a rollback does no harm.
func (s *Store) lastRowid(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	if id, ok := s.lastRowids[table]; ok {
		return id, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(rowid), 0) FROM "+quote(table)).
		Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("reading the last rowid: %w", err)
	}
	s.lastRowids[table] = id
	return id, nil
}

// newCursor draws a cursor for the row that will have rowid id. Its low
// half is random: a client cannot tell the cursors of rows it has not
// seen from those of rows that do not exist. Its high half is id/256, in
// 16 bits, so that the cursors of rows appended one after the other go to
// the same few pages of the table's index of cursors rather than to a
// random page each, which a write would have to add to the log. It has the
// length that the reference's pods expect.
func newCursor(id int64) string {
	var b [CursorLength / 2]byte
	rand.Read(b[2:])
	binary.BigEndian.PutUint16(b[:2], uint16(id>>8))
	return hex.EncodeToString(b[:])
}

// updateRows sets the columns of rw in the rows of cl that f selects;
// counted holds the string forms of the counter fields it sets.
func (s *Store) updateRows(ctx context.Context, tx *sql.Tx, cl *contract.Class, f Filter,
	rw row, counted map[string]string) (int, error) {
	keys, err := s.loadCounterKeys(ctx, tx, cl.Name)
	if err != nil {
		return 0, err
	}
	where, args := f.where(nil)
	table := quote(tableName(cl.Name))

	// Counters need the values the rows had; RETURNING gives only the new.
	var before []map[string]string
	if len(keys) > 0 {
		query := "SELECT " + counterColumns(cl) + " FROM " + table + " WHERE " + where
		if before, err = counterRows(ctx, tx, cl, query, args); err != nil {
			return 0, err
		}
	}

	set := make([]string, len(rw.cols))
	for i, col := range rw.cols {
		set[i] = col + " = ?"
	}
	update := "UPDATE " + table + " SET " + strings.Join(set, ", ") + " WHERE " + where
	res, err := tx.ExecContext(ctx, update, append(slices.Clone(rw.args), args...)...)
	if err != nil {
		return 0, fmt.Errorf("updating rows: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || len(keys) == 0 {
		return int(n), err
	}

	after := make([]map[string]string, len(before))
	for i, old := range before {
		after[i] = overlay(old, counted)
	}
	return int(n), adjustCounters(ctx, tx, cl.Name, keys, before, after)
}

// overlay returns a copy of base with the entries of top put over it.
func overlay(base, top map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(top))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range top {
		out[k] = v
	}
	return out
}

// deleteRows deletes the rows of cl that match the SQL condition where,
// counting them out of the counters.
func (s *Store) deleteRows(ctx context.Context, tx *sql.Tx, cl *contract.Class,
	where string, args []any) (int, error) {
	keys, err := s.loadCounterKeys(ctx, tx, cl.Name)
	if err != nil {
		return 0, err
	}
	del := "DELETE FROM " + quote(tableName(cl.Name)) + " WHERE " + where

	if len(keys) == 0 {
		res, err := tx.ExecContext(ctx, del, args...)
		if err != nil {
			return 0, fmt.Errorf("deleting rows: %w", err)
		}
		n, err := res.RowsAffected()
		return int(n), err
	}

	gone, err := counterRows(ctx, tx, cl, del+" RETURNING "+counterColumns(cl), args)
	if err != nil {
		return 0, err
	}
	return len(gone), adjustCounters(ctx, tx, cl.Name, keys, gone, nil)
}

// placeholders returns n question marks separated by commas.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// toSeconds returns t as the epoch seconds that SQLite stores.
func toSeconds(t time.Time) float64 {
	return instant(t.Round(time.Microsecond).UnixMicro()).seconds()
}
