package dirstore

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresDSNEnv names the variable with the DSN of a PostgreSQL server on
// which the tests may create and drop databases.
const postgresDSNEnv = "BYODA_TEST_POSTGRES_DSN"

func TestPostgres(t *testing.T) {
	postgresServerDSN(t) // skips or fails once rather than in every subtest
	testStore(t, func(t *testing.T) Store {
		return openPostgresForTest(t, freshDatabase(t))
	})
}

func TestPostgresTwoStoresShareDatabase(t *testing.T) {
	ctx := t.Context()
	dsn := freshDatabase(t)
	a := openPostgresForTest(t, dsn)
	b := openPostgresForTest(t, dsn)

	addr := netip.MustParseAddr("192.0.2.10")
	if err := a.SetAddress(ctx, "x.members-4294929430.byoda.test", addr); err != nil {
		t.Fatalf("SetAddress: %v", err)
	}
	if got, err := b.Address(ctx, "x.members-4294929430.byoda.test"); err != nil || got != addr {
		t.Errorf("Address through second store = %v, %v; want %v", got, err, addr)
	}

	mustCreate(t, a, 4294929430)
	if err := b.CreateService(ctx, 4294929430, []byte("other")); !errors.Is(err, ErrExists) {
		t.Errorf("CreateService through second store: err = %v, want ErrExists", err)
	}
	for version := 1; version <= 3; version++ {
		raceContract(t, []Store{a, b}, 4294929430, version)
	}
}

// TestPostgresConcurrentOpen opens several stores on a new database at once,
// as directory instances starting together do; all must create or find the
// schema without error.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := freshDatabase(t)
	const instances = 4

	var (
		wg     sync.WaitGroup
		stores [instances]*PostgresStore
		errs   [instances]error
	)
	for i := range instances {
		wg.Go(func() {
			stores[i], errs[i] = OpenPostgres(t.Context(), dsn)
		})
	}
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: OpenPostgres: %v", i, err)
			continue
		}
		stores[i].Close()
	}
}

func TestOpenPicksPostgresForURL(t *testing.T) {
	s, err := Open(t.Context(), freshDatabase(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	if _, ok := s.(*PostgresStore); !ok {
		t.Errorf("Open of a postgres DSN returned %T, want *PostgresStore", s)
	}
}

func openPostgresForTest(t *testing.T, dsn string) *PostgresStore {
	t.Helper()
	s, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	return s
}

// postgresServerDSN returns the DSN of the test server, or skips the test
// when there is none, except in CI, where a missing server is a failure.
func postgresServerDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(postgresDSNEnv)
	if dsn != "" {
		return dsn
	}

	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set; CI must run the PostgreSQL tests (source scripts/testenv.sh)",
			postgresDSNEnv)
	}
	t.Skipf("%s is not set; source scripts/testenv.sh to run the PostgreSQL tests",
		postgresDSNEnv)

	return ""
}

// freshDatabase creates a database that only the calling test uses, drops it
// when the test ends, and returns its DSN.
func freshDatabase(t *testing.T) string {
	t.Helper()
	server := postgresServerDSN(t)
	name := "dirstore_test_" + strings.ToLower(rand.Text())

	// Database names cannot be query parameters; the name is quoted instead.
	adminExec(t, server, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		adminExec(t, server, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+
			" WITH (FORCE)")
	})

	return withDatabase(t, server, name)
}

// adminExec runs one statement on the server's own database.
func adminExec(t *testing.T, server, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connecting to test server: %v", err)
	}
	defer conn.Close(ctx)

	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withDatabase returns the server DSN changed to name database name.
func withDatabase(t *testing.T, server, name string) string {
	t.Helper()
	if !strings.HasPrefix(server, "postgres://") && !strings.HasPrefix(server, "postgresql://") {
		// In a key=value DSN the last value of a key wins.
		return server + " dbname=" + name
	}

	u, err := url.Parse(server)
	if err != nil {
		// The error would quote the DSN, password and all.
		t.Fatalf("%s is not a valid URL", postgresDSNEnv)
	}
	u.Path = "/" + name

	return u.String()
}
