package store

import (
	"context"
	"database/sql/driver"
	"errors"
)

// Compiling a statement costs SQLite about as much as running it for most
// of the statements of the store: a query that reads a page of fifty
// records of thirty fields spends a quarter of its time compiling, and an
// append runs four statements or more. The statements of the store come
// from a small set of shapes, with their values bound as arguments, so each
// connection keeps the statements it compiled, by their text, and runs them
// again. SQLite recompiles a kept statement by itself when the schema
// changed.

// maxCachedStmts bounds the statements one connection keeps.
const maxCachedStmts = 64

// cachingConn is a connection of sqliteDriver that keeps its compiled
// statements. database/sql uses a connection from one goroutine at a time,
// so it needs no lock.
type cachingConn struct {
	driver.Conn
	begin   driver.ConnBeginTx
	prepare driver.ConnPrepareContext
	exec    driver.ExecerContext
	query   driver.QueryerContext
	pinger  driver.Pinger
	reset   driver.SessionResetter
	valid   driver.Validator

	stmts map[string]*cachedStmt
}

// cachedStmt is a kept statement. busy is set while it runs, or while the
// rows of a query it ran are open; a statement runs once at a time, so a
// second use of the same text meanwhile compiles a statement of its own.
type cachedStmt struct {
	stmt interface {
		driver.StmtExecContext
		driver.StmtQueryContext
		Close() error
	}
	busy bool
}

// newCachingConn wraps c, which must be a connection of sqliteDriver.
func newCachingConn(c driver.Conn) (*cachingConn, error) {
	cc := &cachingConn{Conn: c, stmts: map[string]*cachedStmt{}}
	var ok [7]bool
	cc.begin, ok[0] = c.(driver.ConnBeginTx)
	cc.prepare, ok[1] = c.(driver.ConnPrepareContext)
	cc.exec, ok[2] = c.(driver.ExecerContext)
	cc.query, ok[3] = c.(driver.QueryerContext)
	cc.pinger, ok[4] = c.(driver.Pinger)
	cc.reset, ok[5] = c.(driver.SessionResetter)
	cc.valid, ok[6] = c.(driver.Validator)
	for _, has := range ok {
		if !has {
			c.Close()
			return nil, errors.New("opening data store: the SQLite driver lacks an interface")
		}
	}
	return cc, nil
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.begin.BeginTx(ctx, opts)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, query)
}

func (c *cachingConn) Ping(ctx context.Context) error { return c.pinger.Ping(ctx) }

func (c *cachingConn) ResetSession(ctx context.Context) error {
	return c.reset.ResetSession(ctx)
}

func (c *cachingConn) IsValid() bool { return c.valid.IsValid() }

// ExecContext runs query with the kept statement of its text.
func (c *cachingConn) ExecContext(ctx context.Context, query string,
	args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.take(ctx, query)
	if cs == nil {
		if err != nil {
			return nil, err
		}
		return c.exec.ExecContext(ctx, query, args)
	}
	defer func() { cs.busy = false }()
	return cs.stmt.ExecContext(ctx, args)
}

// QueryContext runs query with the kept statement of its text, which stays
// busy until the rows are closed.
func (c *cachingConn) QueryContext(ctx context.Context, query string,
	args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.take(ctx, query)
	if cs == nil {
		if err != nil {
			return nil, err
		}
		return c.query.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		cs.busy = false
		return nil, err
	}
	return &cachedRows{Rows: rows, stmt: cs}, nil
}

// take returns the kept statement of query, compiling it if need be, and
// marks it busy. It returns nil when the statement is busy already, and an
// error, also nil, when compiling failed; the caller then runs query
// without keeping it.
func (c *cachingConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	cs, ok := c.stmts[query]
	if ok {
		if cs.busy {
			return nil, nil
		}
		cs.busy = true
		return cs, nil
	}

	st, err := c.prepare.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	kept, ok := st.(interface {
		driver.StmtExecContext
		driver.StmtQueryContext
		Close() error
	})
	if !ok {
		st.Close()
		return nil, nil
	}
	c.evict()
	cs = &cachedStmt{stmt: kept, busy: true}
	c.stmts[query] = cs
	return cs, nil
}

// evict makes room for a statement when the cache is full, closing one
// that is not busy.
func (c *cachingConn) evict() {
	if len(c.stmts) < maxCachedStmts {
		return
	}
	for q, cs := range c.stmts {
		if !cs.busy {
			cs.stmt.Close()
			delete(c.stmts, q)
			return
		}
	}
}

// Close closes the kept statements and the connection.
func (c *cachingConn) Close() error {
	var errs []error
	for q, cs := range c.stmts {
		errs = append(errs, cs.stmt.Close())
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.Conn.Close())...)
}

// cachedRows are the rows of a kept statement, which they free when
// closed.
type cachedRows struct {
	driver.Rows
	stmt *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.stmt.busy = false
	return err
}
