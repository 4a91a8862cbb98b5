package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// TestKeptStatements runs statements on one connection as the statement
// cache must handle them: the same text again while its rows are open,
// more texts than the cache keeps, and a kept statement after the schema
// changed under it.
func TestKeptStatements(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	count := `SELECT COUNT(*) FROM "_network_assets" WHERE "_title" = ?`
	countOf := func(tx *sql.Tx, title string) (int, error) {
		var n int
		err := tx.QueryRowContext(ctx, count, title).Scan(&n)
		return n, err
	}

	err := s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		insert := `INSERT INTO "_network_assets" ("_title", "cursor") VALUES (?, ?)`
		for i := range 3 {
			if _, err := tx.ExecContext(ctx, insert, "t", fmt.Sprintf("c%07d", i)); err != nil {
				return err
			}
		}

		// Rows of the kept statement stay open while the same text runs.
		list := `SELECT "cursor" FROM "_network_assets" WHERE "_title" = ? ORDER BY rowid`
		outer, err := tx.QueryContext(ctx, list, "t")
		if err != nil {
			return err
		}
		seen := 0
		for outer.Next() {
			inner, err := tx.QueryContext(ctx, list, "t")
			if err != nil {
				return err
			}
			n := 0
			for inner.Next() {
				n++
			}
			if err := inner.Close(); err != nil || n != 3 {
				return fmt.Errorf("inner listing: %d rows, %v", n, err)
			}
			seen++
		}
		if err := outer.Close(); err != nil || seen != 3 {
			return fmt.Errorf("outer listing: %d rows, %v", seen, err)
		}

		// More texts than the cache keeps, and the first one again.
		for i := range maxCachedStmts + 10 {
			var n int
			q := fmt.Sprintf("SELECT %d + COUNT(*) FROM byoda_store", i)
			if err := tx.QueryRowContext(ctx, q).Scan(&n); err != nil || n != i+1 {
				return fmt.Errorf("%s: %d, %v", q, n, err)
			}
		}
		if n, err := countOf(tx, "t"); err != nil || n != 3 {
			return fmt.Errorf("counting after evictions: %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A column added under a kept statement.
	err = s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `ALTER TABLE "_network_assets" ADD COLUMN "x" TEXT`)
		if err != nil {
			return err
		}
		n, err := countOf(tx, "t")
		if err == nil && n != 3 {
			err = fmt.Errorf("%d rows", n)
		}
		return err
	})
	if err != nil {
		t.Errorf("a kept statement after a schema change: %v", err)
	}
}
