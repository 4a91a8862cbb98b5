package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// Paging limits.
const (
	// DefaultPageSize is the number of edges a query returns when it does
	// not say.
	DefaultPageSize = 20

	// MaxPageSize is the most edges one query returns; a larger page size
	// is cut to it, and HasNextPage tells the caller to go on. Pod workers
	// page with 1000.
	MaxPageSize = 1000

	// MaxFields is the most field names one query may select.
	MaxFields = 1024

	// MaxFieldNameLength is the longest field name a query may select.
	MaxFieldNameLength = 63

	// CursorLength is the length of a cursor: 8 hex digits, as in the
	// reference, whose pods check that length.
	CursorLength = 8
)

// QueryOptions says what a query returns.
type QueryOptions struct {
	// Filter selects the records of an array class. Object classes ignore
	// it.
	Filter Filter

	// First is the page size: DefaultPageSize when 0, cut to MaxPageSize
	// when larger. It must not be negative.
	First int

	// After continues a listing after the edge with this cursor; empty
	// starts at the beginning.
	After string

	// Fields names the fields to read; the class's required fields are
	// always read too. The fields not read are nil in the nodes. Empty
	// reads every field.
	Fields []string

	// JSON asks for each record as JSON, in Edge.JSON, rather than in
	// Edge.Node, which stays nil. A caller that writes records out is
	// spared building a map per record and encoding it, which costs more
	// than reading the record, and queries of every field of an array
	// class read the records that the store keeps as JSON.
	JSON bool
}

// Page is the result of a query.
type Page struct {
	Edges []Edge

	// HasNextPage says that more records follow the last edge.
	HasNextPage bool

	// EndCursor is the cursor of the last edge; "" when there is none.
	EndCursor string

	// TotalCount is the number of edges returned, as in the reference, not
	// the number of records that match.
	TotalCount int
}

// Edge is one record with what the store keeps beside it.
type Edge struct {
	// Cursor names the row for After; "" for object classes.
	Cursor string

	// Origin is who wrote the row.
	Origin Origin

	// Expires is when a row of a cache-only class expires; zero for other
	// classes.
	Expires time.Time

	// Node holds every field of the record; nil when QueryOptions.JSON
	// asked for JSON instead.
	Node Record

	// JSON is the record as AppendJSON writes Node, with every field of
	// the class, null when not read; nil unless QueryOptions.JSON asked
	// for it. It is shared and must not be changed.
	JSON []byte
}

// Query returns records of class. For an array class, these are the rows
// that match the filter, in the order they were appended, starting after
// the row whose cursor is After. A well-formed After that names no row,
// for example because the row was deleted, gives an empty page, as in the
// reference. For an object class, the page holds its record, if it has
// been set, and paging and filter are ignored.
//
// Errors: ErrUnknownClass, ErrInvalidPageSize, ErrBadCursor,
// ErrInvalidFields, ErrInvalidFilter.
func (s *Store) Query(ctx context.Context, class string, q QueryOptions) (Page, error) {
	cl, err := s.class(class, 0)
	if err != nil {
		return Page{}, fmt.Errorf("querying %s: %w", class, err)
	}
	first, err := pageSize(q)
	if err != nil {
		return Page{}, fmt.Errorf("querying %s: %w", class, err)
	}
	fields, err := selectFields(cl.Record(), q.Fields)
	if err != nil {
		return Page{}, fmt.Errorf("querying %s: %w", class, err)
	}

	var edges []Edge
	if q.JSON && cl.Kind == contract.ArrayClass && len(q.Fields) == 0 && s.cache.on() {
		edges, err = s.readKept(ctx, cl, fields, q, first)
	} else {
		var query string
		var args []any
		query, args, err = selectSQL(cl, selectColumns(cl, fields), q, first)
		if err == nil {
			edges, _, err = s.readEdges(ctx, cl, fields, query, args, first+1, q.JSON, false)
		}
	}
	if err != nil {
		return Page{}, fmt.Errorf("querying %s: %w", class, err)
	}
	return page(edges, first), nil
}

// readKept reads the page of q, a query of every field of the array class
// cl, through the edges the store keeps, and keeps those it had to read.
func (s *Store) readKept(ctx context.Context, cl *contract.Class, fields []*contract.Field,
	q QueryOptions, first int) ([]Edge, error) {
	s.cache.barrier.RLock()
	defer s.cache.barrier.RUnlock()

	query, args, err := selectSQL(cl, "rowid", q, first)
	if err != nil {
		return nil, err
	}
	rowids, err := s.readRowids(ctx, query, args, first+1)
	if err != nil {
		return nil, err
	}
	if edges, ok := s.cache.lookup(cl, rowids); ok {
		return edges, nil
	}

	// The rows are read again, with the rows appended since.
	query, args, err = selectSQL(cl, "rowid, "+selectColumns(cl, fields), q, first)
	if err != nil {
		return nil, err
	}
	edges, rowids, err := s.readEdges(ctx, cl, fields, query, args, first+1, true, true)
	if err != nil {
		return nil, err
	}
	s.cache.keep(cl, rowids, edges)
	return edges, nil
}

// readRowids runs query, which returns at most limit rowids, on a read
// connection.
func (s *Store) readRowids(ctx context.Context, query string, args []any, limit int,
) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	defer rows.Close()

	ids := make([]int64, 0, limit)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("reading row: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	return ids, nil
}

// pageSize checks the paging options and returns the page size.
func pageSize(q QueryOptions) (int, error) {
	if q.First < 0 {
		return 0, fmt.Errorf("%w: %d", ErrInvalidPageSize, q.First)
	}
	if len(q.After) != 0 && len(q.After) != CursorLength {
		return 0, fmt.Errorf("%w: a cursor has %d characters", ErrBadCursor, CursorLength)
	}

	switch {
	case q.First == 0:
		return DefaultPageSize, nil
	case q.First > MaxPageSize:
		return MaxPageSize, nil
	}
	return q.First, nil
}

// selectFields returns the fields of rec that a query reads: names and the
// required fields, or all of them when names is empty.
func selectFields(rec *contract.Class, names []string) ([]*contract.Field, error) {
	if len(names) == 0 {
		return rec.Fields, nil
	}
	if len(names) > MaxFields {
		return nil, fmt.Errorf("%w: more than %d fields", ErrInvalidFields, MaxFields)
	}

	var fields []*contract.Field
	for _, name := range names {
		if len(name) > MaxFieldNameLength {
			return nil, fmt.Errorf("%w: field name longer than %d characters",
				ErrInvalidFields, MaxFieldNameLength)
		}
		if _, ok := rec.Field(name); !ok {
			return nil, fmt.Errorf("%w: %q is not a field of %s", ErrInvalidFields, name,
				rec.Name)
		}
	}
	for _, f := range rec.Fields {
		if f.Required || slices.Contains(names, f.Name) {
			fields = append(fields, f)
		}
	}
	return fields, nil
}

// selectColumns lists the columns that a query of fields of cl reads:
// the meta columns, then those of the fields.
func selectColumns(cl *contract.Class, fields []*contract.Field) string {
	var b strings.Builder
	b.WriteString(strings.Join(metaColumns(cl), ", "))
	for _, f := range fields {
		b.WriteString(", " + quote(fieldColumn(f.Name)))
	}
	return b.String()
}

// selectSQL builds the query of the columns cols of q on the table of cl.
// Array classes fetch one row more than a page, to learn whether another
// page follows.
func selectSQL(cl *contract.Class, cols string, q QueryOptions, first int) (string, []any,
	error) {
	table := quote(tableName(cl.Name))
	query := "SELECT " + cols + " FROM " + table
	if cl.Kind == contract.ObjectClass {
		return query + " ORDER BY rowid DESC LIMIT 1", nil, nil
	}

	if err := q.Filter.check(cl); err != nil {
		return "", nil, err
	}
	where, args := q.Filter.where(nil)
	if q.After != "" {
		where = joinConditions(where, fmt.Sprintf("rowid > (SELECT rowid FROM %s WHERE %s = ?)",
			table, quote(colCursor)))
		args = append(args, q.After)
	}
	if where != "" {
		query += " WHERE " + where
	}
	return query + " ORDER BY rowid LIMIT ?", append(args, first+1), nil
}

// joinConditions joins two SQL conditions with AND; either may be empty.
func joinConditions(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + " AND " + b
}

// metaColumns lists the meta columns that queries read, quoted, in the
// order scanEdge expects them.
func metaColumns(cl *contract.Class) []string {
	cols := []string{quote(colCursor), quote(colID), quote(colIDType)}
	if cl.CacheOnly > 0 {
		cols = append(cols, quote(colExpires), quote(colOriginClassName))
	}
	return cols
}

// readEdges runs query, which returns at most limit rows, on a read
// connection and returns its rows as edges, with nodes or, if asJSON is
// set, with JSON. If withRowid is set, the query's first column is the
// rowid, which comes back for every edge.
func (s *Store) readEdges(ctx context.Context, cl *contract.Class, fields []*contract.Field,
	query string, args []any, limit int, asJSON, withRowid bool) ([]Edge, []int64, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading rows: %w", err)
	}
	defer rows.Close()

	sc := newEdgeScanner(cl, fields, asJSON, withRowid)
	edges := make([]Edge, 0, min(limit, edgeSlab))
	var rowids []int64
	for rows.Next() {
		e, id, err := sc.scan(rows)
		if err != nil {
			return nil, nil, err
		}
		edges = append(edges, e)
		if withRowid {
			rowids = append(rowids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading rows: %w", err)
	}
	return edges, rowids, nil
}

// edgeScanner reads rows of the meta columns followed by the columns of
// fields into edges, through buffers that it reuses from row to row.
type edgeScanner struct {
	rec       *contract.Class
	fields    []*contract.Field
	cacheOnly bool
	rowid     bool
	values    []any
	dest      []any

	// empty is a node with every field of the class unset, which each
	// node starts as a copy of: copying a map costs a little less than
	// filling one key by key. It is nil when the edges get JSON.
	empty Record

	// For edges with JSON: at is the position in the record class's
	// fields of each of fields, node the values of a record's fields in
	// the class's order, keys the JSON keys of the class and buf where a
	// record is encoded.
	at   []int
	node []any
	keys fieldKeys
	buf  []byte
}

// newEdgeScanner returns a scanner of rows of fields of cl, preceded by
// their rowid if withRowid is set.
func newEdgeScanner(cl *contract.Class, fields []*contract.Field, asJSON,
	withRowid bool) *edgeScanner {
	rec := cl.Record()
	sc := &edgeScanner{rec: rec, fields: fields, cacheOnly: cl.CacheOnly > 0,
		rowid: withRowid}
	if asJSON {
		for i, j := 0, 0; i < len(rec.Fields) && j < len(fields); i++ {
			if rec.Fields[i] == fields[j] {
				sc.at = append(sc.at, i)
				j++
			}
		}
		sc.node = make([]any, len(rec.Fields))
		sc.keys = newFieldKeys(rec)
	} else {
		sc.empty = node(rec, nil)
	}
	n := len(metaColumns(cl)) + len(fields)
	if withRowid {
		n++
	}
	sc.values = make([]any, n)
	sc.dest = make([]any, n)
	for i := range sc.values {
		sc.dest[i] = &sc.values[i]
	}
	return sc
}

// edgeSlab is how many edges readEdges makes room for at first.
const edgeSlab = 64

// scan reads the current row of rows, and its rowid if the scanner reads
// them.
func (sc *edgeScanner) scan(rows *sql.Rows) (Edge, int64, error) {
	clear(sc.values)
	if err := rows.Scan(sc.dest...); err != nil {
		return Edge{}, 0, fmt.Errorf("reading row: %w", err)
	}

	v := sc.values
	var rowid int64
	if sc.rowid {
		rowid, _ = v[0].(int64)
		v = v[1:]
	}
	e := Edge{Cursor: text(v[0]), Origin: Origin{ID: text(v[1]), IDType: text(v[2])}}
	v = v[3:]
	if sc.cacheOnly {
		if secs, ok := float(v[0]); ok {
			e.Expires = fromSeconds(secs).time()
		}
		e.Origin.ClassName = text(v[1])
		v = v[2:]
	}

	if sc.empty != nil {
		e.Node = maps.Clone(sc.empty)
		for i, f := range sc.fields {
			if v[i] != nil {
				e.Node[f.Name] = fromSQL(f, v[i])
			}
		}
		return e, rowid, nil
	}

	clear(sc.node)
	for i, f := range sc.fields {
		if v[i] != nil {
			sc.node[sc.at[i]] = fromSQL(f, v[i])
		}
	}
	var err error
	if sc.buf, err = appendValues(sc.buf[:0], sc.rec, sc.keys, sc.node); err != nil {
		return Edge{}, 0, fmt.Errorf("encoding row: %w", err)
	}
	e.JSON = slices.Clone(sc.buf)
	return e, rowid, nil
}

// text returns a meta column's value as a string, "" for null.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// float returns a meta column's value as a float, and false for null.
func float(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// page cuts edges to a page of first edges.
func page(edges []Edge, first int) Page {
	p := Page{Edges: edges}
	if len(edges) > first {
		p.Edges, p.HasNextPage = edges[:first], true
	}
	if n := len(p.Edges); n > 0 {
		p.EndCursor = p.Edges[n-1].Cursor
	}
	p.TotalCount = len(p.Edges)
	return p
}
