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

	// Values asks for the fields of each record in Edge.Values rather than
	// in Edge.Node, which stays nil. A caller that goes through the fields
	// in order, such as one that writes them out, is spared building a
	// map per record, which costs more than reading the record.
	Values bool
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

	// Node holds every field of the record; nil when QueryOptions.Values
	// asked for Values instead.
	Node Record

	// Values holds the value of each field of the record class, in the
	// order of the class's Fields, as Node would hold it; nil unless
	// QueryOptions.Values asked for it.
	Values []any
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

	query, args, err := selectSQL(cl, fields, q, first)
	if err != nil {
		return Page{}, fmt.Errorf("querying %s: %w", class, err)
	}
	edges, err := s.readEdges(ctx, cl, fields, query, args, first+1, q.Values)
	if err != nil {
		return Page{}, fmt.Errorf("querying %s: %w", class, err)
	}
	return page(edges, first), nil
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

// selectSQL builds the query of q on the table of cl. Array classes fetch
// one row more than a page, to learn whether another page follows.
func selectSQL(cl *contract.Class, fields []*contract.Field, q QueryOptions,
	first int) (string, []any, error) {
	table := quote(tableName(cl.Name))
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(metaColumns(cl), ", "))
	for _, f := range fields {
		b.WriteString(", " + quote(fieldColumn(f.Name)))
	}
	b.WriteString(" FROM " + table)

	if cl.Kind == contract.ObjectClass {
		b.WriteString(" ORDER BY rowid DESC LIMIT 1")
		return b.String(), nil, nil
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
		b.WriteString(" WHERE " + where)
	}
	b.WriteString(" ORDER BY rowid LIMIT ?")
	return b.String(), append(args, first+1), nil
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
// connection and returns its rows as edges, with nodes or, if values is
// set, with values.
func (s *Store) readEdges(ctx context.Context, cl *contract.Class, fields []*contract.Field,
	query string, args []any, limit int, values bool) ([]Edge, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	defer rows.Close()

	sc := newEdgeScanner(cl, fields, values, limit)
	edges := make([]Edge, 0, min(limit, edgeSlab))
	for rows.Next() {
		e, err := sc.scan(rows)
		if err != nil {
			return nil, err
		}
		edges = append(edges, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	return edges, nil
}

// edgeScanner reads rows of the meta columns followed by the columns of
// fields into edges, through buffers that it reuses from row to row.
type edgeScanner struct {
	fields    []*contract.Field
	cacheOnly bool
	values    []any
	dest      []any

	// at is the position in the record class's fields of each of fields,
	// and width the number of the class's fields.
	at    []int
	width int

	// empty is a node with every field of the class unset, which each
	// node starts as a copy of: copying a map costs a little less than
	// filling one key by key. It is nil when the edges get values rather
	// than nodes.
	empty Record

	// slab is where the values of edges are cut from, so that a page of
	// them costs few allocations; left is how many rows may follow.
	slab []any
	left int
}

// newEdgeScanner returns a scanner of at most limit rows of fields of cl.
func newEdgeScanner(cl *contract.Class, fields []*contract.Field, values bool,
	limit int) *edgeScanner {
	rec := cl.Record()
	sc := &edgeScanner{fields: fields, cacheOnly: cl.CacheOnly > 0, width: len(rec.Fields),
		left: limit}
	if !values {
		sc.empty = node(rec, nil)
	}
	for i, j := 0, 0; i < len(rec.Fields) && j < len(fields); i++ {
		if rec.Fields[i] == fields[j] {
			sc.at = append(sc.at, i)
			j++
		}
	}
	sc.values = make([]any, len(metaColumns(cl))+len(fields))
	sc.dest = make([]any, len(sc.values))
	for i := range sc.values {
		sc.dest[i] = &sc.values[i]
	}
	return sc
}

// edgeSlab is how many edges' values one allocation holds at most.
const edgeSlab = 64

// scan reads the current row of rows.
func (sc *edgeScanner) scan(rows *sql.Rows) (Edge, error) {
	clear(sc.values)
	if err := rows.Scan(sc.dest...); err != nil {
		return Edge{}, fmt.Errorf("reading row: %w", err)
	}

	v := sc.values
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
		return e, nil
	}

	if len(sc.slab) < sc.width {
		sc.slab = make([]any, sc.width*max(1, min(sc.left, edgeSlab)))
	}
	sc.left--
	e.Values, sc.slab = sc.slab[:sc.width:sc.width], sc.slab[sc.width:]
	for i, f := range sc.fields {
		if v[i] != nil {
			e.Values[sc.at[i]] = fromSQL(f, v[i])
		}
	}
	return e, nil
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
