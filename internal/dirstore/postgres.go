package dirstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresMigrations are the steps from one schema version to the next; the
// schema version is the number of steps applied. Append, never edit.
var postgresMigrations = []string{
	`CREATE TABLE IF NOT EXISTS directory_addresses (
		name    TEXT PRIMARY KEY,
		addr    TEXT NOT NULL,
		updated TIMESTAMPTZ NOT NULL
	);
	CREATE TABLE IF NOT EXISTS directory_services (
		id              BIGINT PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
		ca_cert_chain   BYTEA NOT NULL,
		data_cert_chain BYTEA,
		contract        BYTEA,
		version         BIGINT NOT NULL DEFAULT 0,
		created         TIMESTAMPTZ NOT NULL,
		updated         TIMESTAMPTZ NOT NULL
	);`,
}

// migrationLockKey is the advisory lock that serializes schema migrations of
// directory instances opening one database at the same time.
const migrationLockKey int64 = 0x6279_6f64_6164_6972

// PostgresStore is a Store in a PostgreSQL database. Several directory
// instances may share one database.
type PostgresStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*PostgresStore)(nil)

// OpenPostgres connects to the PostgreSQL database that dsn names, a URL or a
// key=value string as libpq takes them, and creates or updates the schema.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	// Errors here leave the DSN out: it may hold a password.
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening postgres pool: %w", err)
	}

	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}

	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("preparing postgres schema: %w", err)
	}

	return &PostgresStore{pool: pool}, nil
}

// migratePostgres brings the schema up to date in one transaction. Without
// the lock, two instances racing through CREATE TABLE IF NOT EXISTS can still
// collide on the catalog.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning migration: %w", err)
	}
	defer tx.Rollback(ctx)

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("locking schema: %w", err)
	}

	_, err = tx.Exec(ctx,
		`CREATE TABLE IF NOT EXISTS directory_schema (version INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("creating schema table: %w", err)
	}

	var version int
	err = tx.QueryRow(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM directory_schema`).Scan(&version)
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(postgresMigrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)",
			version, len(postgresMigrations))
	}

	for i := version; i < len(postgresMigrations); i++ {
		if _, err := tx.Exec(ctx, postgresMigrations[i]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", i+1, err)
		}
	}

	_, err = tx.Exec(ctx, `DELETE FROM directory_schema`)
	if err == nil {
		_, err = tx.Exec(ctx, `INSERT INTO directory_schema (version) VALUES ($1)`,
			len(postgresMigrations))
	}
	if err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}

	return tx.Commit(ctx)
}

// SetAddress points name at addr, replacing any earlier address.
func (s *PostgresStore) SetAddress(ctx context.Context, name string, addr netip.Addr) error {
	name, err := normalizeName(name)
	if err != nil {
		return err
	}
	addr, err = normalizeAddr(addr)
	if err != nil {
		return err
	}

	_, err = s.pool.Exec(ctx, `
		INSERT INTO directory_addresses (name, addr, updated) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET addr = excluded.addr, updated = excluded.updated`,
		name, addr.String(), now())
	if err != nil {
		return fmt.Errorf("setting address of %s: %w", name, err)
	}

	return nil
}

// Address returns the address of name, or ErrNotFound.
func (s *PostgresStore) Address(ctx context.Context, name string) (netip.Addr, error) {
	name, err := normalizeName(name)
	if err != nil {
		return netip.Addr{}, err
	}

	var text string
	err = s.pool.QueryRow(ctx,
		`SELECT addr FROM directory_addresses WHERE name = $1`, name).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		return netip.Addr{}, fmt.Errorf("address of %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reading address of %s: %w", name, err)
	}

	return parseStoredAddr(name, text)
}

// CreateService stores a new service with its CA cert chain, or returns
// ErrExists when the id is taken, also by another instance at the same time.
func (s *PostgresStore) CreateService(ctx context.Context, id uint32, caCertChain []byte) error {
	if err := checkBlob("ca cert chain", caCertChain); err != nil {
		return err
	}

	t := now()
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO directory_services (id, ca_cert_chain, created, updated)
		VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
		int64(id), caCertChain, t, t)
	if err != nil {
		return fmt.Errorf("creating service %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("creating service %d: %w", id, ErrExists)
	}

	return nil
}

// Service returns the service with the id, or ErrNotFound.
func (s *PostgresStore) Service(ctx context.Context, id uint32) (Service, error) {
	row := s.pool.QueryRow(ctx, `
		SELECT id, ca_cert_chain, data_cert_chain, contract, version, created, updated
		FROM directory_services WHERE id = $1`, int64(id))

	svc, err := scanPostgresService(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Service{}, fmt.Errorf("service %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Service{}, fmt.Errorf("reading service %d: %w", id, err)
	}

	return svc, nil
}

// SetServiceDataCert stores or replaces the data cert chain of a service, or
// returns ErrNotFound.
func (s *PostgresStore) SetServiceDataCert(ctx context.Context, id uint32, chain []byte) error {
	if err := checkBlob("data cert chain", chain); err != nil {
		return err
	}

	tag, err := s.pool.Exec(ctx, `
		UPDATE directory_services SET data_cert_chain = $1, updated = $2 WHERE id = $3`,
		chain, now(), int64(id))
	if err != nil {
		return fmt.Errorf("setting data cert of service %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("setting data cert of service %d: %w", id, ErrNotFound)
	}

	return nil
}

// SetContract stores a contract if version is higher than the stored one.
// The version check and the write are one statement; PostgreSQL re-checks
// the condition of a writer that waited for another's row lock, so of
// instances racing with the same version only one wins. It returns
// ErrNotFound or ErrStaleVersion otherwise.
func (s *PostgresStore) SetContract(
	ctx context.Context, id uint32, version int, contract []byte,
) error {
	if err := checkBlob("contract", contract); err != nil {
		return err
	}

	tag, err := s.pool.Exec(ctx, `
		UPDATE directory_services SET contract = $1, version = $2, updated = $3
		WHERE id = $4 AND version < $2`,
		contract, int64(version), now(), int64(id))
	if err != nil {
		return fmt.Errorf("setting contract of service %d: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}

	return s.whyNotUpdated(ctx, id)
}

// whyNotUpdated tells a missing service from a stale contract version after
// a conditional update changed nothing. Services are never deleted, so the
// answer cannot go out of date between the two statements.
func (s *PostgresStore) whyNotUpdated(ctx context.Context, id uint32) error {
	var one int
	err := s.pool.QueryRow(ctx,
		`SELECT 1 FROM directory_services WHERE id = $1`, int64(id)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("setting contract of service %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("looking up service %d: %w", id, err)
	}

	return fmt.Errorf("setting contract of service %d: %w", id, ErrStaleVersion)
}

// Services lists the services that have a contract, ordered by id, skipping
// skip of them and returning at most count (all when count <= 0).
func (s *PostgresStore) Services(ctx context.Context, skip, count int) ([]Service, error) {
	limit, err := checkPage(skip, count)
	if err != nil {
		return nil, err
	}

	// PostgreSQL reads LIMIT NULL as no limit.
	var limitArg *int64
	if limit >= 0 {
		l := int64(limit)
		limitArg = &l
	}

	rows, err := s.pool.Query(ctx, `
		SELECT id, ca_cert_chain, data_cert_chain, contract, version, created, updated
		FROM directory_services WHERE contract IS NOT NULL
		ORDER BY id LIMIT $1 OFFSET $2`, limitArg, int64(skip))
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}

	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Service, error) {
		return scanPostgresService(row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}

	return list, nil
}

// Close closes the connection pool.
func (s *PostgresStore) Close() error {
	s.pool.Close()

	return nil
}

// scanPostgresService reads one row of directory_services.
func scanPostgresService(row pgx.Row) (Service, error) {
	var (
		id      int64
		version int64
		svc     Service
	)
	err := row.Scan(&id, &svc.CACertChain, &svc.DataCertChain, &svc.Contract,
		&version, &svc.Created, &svc.Updated)
	if err != nil {
		return Service{}, err
	}

	svc.ID, err = serviceID(id)
	if err != nil {
		return Service{}, err
	}
	svc.Version = int(version)
	svc.Created = svc.Created.UTC()
	svc.Updated = svc.Updated.UTC()

	return svc, nil
}
