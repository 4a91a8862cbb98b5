package dirstore

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestSQLite(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		return openSQLiteForTest(t, filepath.Join(t.TempDir(), "directory.db"))
	})
}

func openSQLiteForTest(t *testing.T, path string) *SQLiteStore {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	return s
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "directory.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}

	addr := netip.MustParseAddr("2001:db8::42")
	if err := s.SetAddress(ctx, "a.accounts.byoda.test", addr); err != nil {
		t.Fatalf("SetAddress: %v", err)
	}
	mustCreate(t, s, 42)
	if err := s.SetContract(ctx, 42, 2, []byte(`{"version":2}`)); err != nil {
		t.Fatalf("SetContract: %v", err)
	}
	before := mustService(t, s, 42)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openSQLiteForTest(t, path)
	if got, err := s.Address(ctx, "a.accounts.byoda.test"); err != nil || got != addr {
		t.Errorf("Address after reopen = %v, %v; want %v", got, err, addr)
	}
	after := mustService(t, s, 42)
	if string(after.Contract) != string(before.Contract) || after.Version != 2 ||
		!after.Created.Equal(before.Created) || !after.Updated.Equal(before.Updated) {
		t.Errorf("service after reopen = %+v, want %+v", after, before)
	}
}

func TestSQLiteTwoStoresShareFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.db")
	a := openSQLiteForTest(t, path)
	b := openSQLiteForTest(t, path)

	mustCreate(t, a, 5)
	if err := b.CreateService(t.Context(), 5, []byte("other")); !errors.Is(err, ErrExists) {
		t.Errorf("CreateService through second store: err = %v, want ErrExists", err)
	}
	raceContract(t, []Store{a, b}, 5, 1)
}

// TestSQLitePragmas checks that every pooled connection, not just the first,
// runs with the durable settings.
func TestSQLitePragmas(t *testing.T) {
	ctx := t.Context()
	s := openSQLiteForTest(t, filepath.Join(t.TempDir(), "directory.db"))

	pragmas := []struct {
		name string
		want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for i := range 3 {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		// Held open, so the next iteration gets another connection.
		defer conn.Close()

		for _, p := range pragmas {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
				t.Fatalf("connection %d: PRAGMA %s: %v", i, p.name, err)
			}
			if got != p.want {
				t.Errorf("connection %d: %s = %q, want %q", i, p.name, got, p.want)
			}
		}
	}
}

func TestSQLitePathWithURISyntax(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir?x=1#y%20z.db")
	s := openSQLiteForTest(t, path)
	mustCreate(t, s, 1)

	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.db")
	s := openSQLiteForTest(t, path)
	_, err := s.db.ExecContext(t.Context(), `UPDATE directory_schema SET version = version + 1`)
	if err != nil {
		t.Fatalf("raising schema version: %v", err)
	}
	s.Close()

	if s, err := OpenSQLite(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("OpenSQLite of a newer schema succeeded")
	}
}

func TestSQLiteEmptyPath(t *testing.T) {
	if _, err := OpenSQLite(t.Context(), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenSQLite(\"\"): err = %v, want ErrInvalid", err)
	}
}
