package backup

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
)

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// busyTimeout is how long the backup waits for a writer's lock; the pod's
// stores wait as long for the backup's.
const busyTimeout = 10 * time.Second

// isSQLite reports whether the file at path is an SQLite database.
func isSQLite(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()

	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return bytes.Equal(head, sqliteHeader), nil
}

// backuper is the part of modernc.org/sqlite's connection that runs
// SQLite's online backup.
type backuper interface {
	NewBackup(dst string) (*sqlite.Backup, error)
}

// snapshotSQLite copies the database at src, which it never creates, to the
// new file dst through
// SQLite's online backup API, in one step: the copy is the database as of
// one transaction, and writers, which in WAL mode do not wait for readers,
// go on meanwhile. The copy is then checked with PRAGMA quick_check and
// left as one file, in rollback-journal mode, without -wal or -shm.
func snapshotSQLite(ctx context.Context, src, dst string) error {
	conn, err := (&sqlite.Driver{}).Open(sqliteDSN(src, "query_only(1)") + "&mode=rw")
	if err != nil {
		return fmt.Errorf("opening database %s: %w", src, err)
	}
	defer conn.Close()

	// The copy is a staging file that is synced as part of the archive,
	// if at all: it needs neither a journal nor syncs of its own.
	b, err := conn.(backuper).NewBackup(sqliteDSN(dst, "journal_mode(OFF)",
		"synchronous(OFF)"))
	if err != nil {
		return fmt.Errorf("starting the backup of %s: %w", src, err)
	}
	_, stepErr := b.Step(-1)
	copied, err := b.Commit()
	if err = errors.Join(stepErr, err); err != nil {
		return fmt.Errorf("backing up database %s: %w", src, err)
	}

	err = checkCopy(ctx, copied)
	if closeErr := copied.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("closing the copy of %s: %w", src, closeErr)
	}
	if err != nil {
		return fmt.Errorf("backing up database %s: %w", src, err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(dst + suffix); err == nil {
			return fmt.Errorf("backing up database %s: the copy left a %s file", src, suffix)
		}
	}
	return nil
}

// checkCopy puts a copied database in rollback-journal mode, so that it is
// one file, and runs SQLite's quick check on it.
func checkCopy(ctx context.Context, conn driver.Conn) error {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return errors.New("the SQLite connection cannot query")
	}
	for _, stmt := range []string{"PRAGMA journal_mode=DELETE", "PRAGMA quick_check"} {
		rows, err := q.QueryContext(ctx, stmt, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		vals := make([]driver.Value, len(rows.Columns()))
		err = rows.Next(vals)
		rows.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		if stmt == "PRAGMA quick_check" && fmt.Sprint(vals[0]) != "ok" {
			return fmt.Errorf("the copy fails SQLite's quick check: %v", vals[0])
		}
	}
	return nil
}

// sqliteDSN names the database at path for modernc.org/sqlite, with a busy
// timeout and pragmas.
func sqliteDSN(path string, pragmas ...string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
}
