package store

import (
	"context"
	"database/sql"
	"fmt"
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

	// Node holds every field of the record.
	Node Record
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
	edges, err := s.readEdges(ctx, cl, fields, query, args)
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

// readEdges runs query on a read connection and returns its rows as edges.
func (s *Store) readEdges(ctx context.Context, cl *contract.Class, fields []*contract.Field,
	query string, args []any) ([]Edge, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	defer rows.Close()

	edges := []Edge{}
	for rows.Next() {
		e, err := scanEdge(rows, cl, fields)
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

// scanEdge reads a row of the meta columns followed by the columns of
// fields.
func scanEdge(rows *sql.Rows, cl *contract.Class, fields []*contract.Field) (Edge, error) {
	var (
		cursor, id, idType, originClass sql.NullString
		expires                         sql.NullFloat64
	)
	dest := []any{&cursor, &id, &idType}
	if cl.CacheOnly > 0 {
		dest = append(dest, &expires, &originClass)
	}
	values := make([]any, len(fields))
	for i := range values {
		dest = append(dest, &values[i])
	}
	if err := rows.Scan(dest...); err != nil {
		return Edge{}, fmt.Errorf("reading row: %w", err)
	}

	rec := cl.Record()
	e := Edge{
		Cursor: cursor.String,
		Origin: Origin{ID: id.String, IDType: idType.String, ClassName: originClass.String},
		Node:   node(rec, nil),
	}
	if expires.Valid {
		e.Expires = fromSeconds(expires.Float64).time()
	}
	for i, f := range fields {
		e.Node[f.Name] = fromSQL(f, values[i])
	}
	return e, nil
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
