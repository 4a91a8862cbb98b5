package dirstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteMigrations are the steps from one schema version to the next; the
// schema version is the number of steps applied. Append, never edit.
// Timestamps are unix microseconds, which sort and compare as integers.
var sqliteMigrations = []string{
	`CREATE TABLE directory_addresses (
		name    TEXT PRIMARY KEY,
		addr    TEXT NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE TABLE directory_services (
		id              INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
		ca_cert_chain   BLOB NOT NULL,
		data_cert_chain BLOB,
		contract        BLOB,
		version         INTEGER NOT NULL DEFAULT 0,
		created         INTEGER NOT NULL,
		updated         INTEGER NOT NULL
	);`,
}

// SQLiteStore is a Store in a local SQLite file. It is safe for concurrent
// use, also by several processes sharing the file.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// OpenSQLite opens the SQLite database file at path, creating it and its
// schema when missing. A commit that returned is on disk: the database runs
// in WAL mode with synchronous=FULL.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	dsn, err := sqliteDSN(path)
	if err != nil {
		return nil, err
	}

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite database %s: %w", path, err)
	}

	if err := migrateSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing sqlite database %s: %w", path, err)
	}

	return &SQLiteStore{db: db}, nil
}

// sqliteDSN builds a file URI for path whose parameters configure every
// connection the pool opens. Immediate transactions take the write lock at
// BEGIN, so two processes migrating one new file do not deadlock.
func sqliteDSN(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: empty sqlite path", ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolving sqlite path %s: %w", path, err)
	}

	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")

	// Escaping keeps a '?', '#' or '%' in the path from being read as
	// URI syntax.
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode(), nil
}

// migrateSQLite brings the schema up to date in one transaction.
func migrateSQLite(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning migration: %w", err)
	}
	defer tx.Rollback()

	_, err = tx.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS directory_schema (version INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("creating schema table: %w", err)
	}

	var version int
	err = tx.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM directory_schema`).Scan(&version)
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(sqliteMigrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)",
			version, len(sqliteMigrations))
	}

	for i := version; i < len(sqliteMigrations); i++ {
		if _, err := tx.ExecContext(ctx, sqliteMigrations[i]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", i+1, err)
		}
	}

	_, err = tx.ExecContext(ctx, `DELETE FROM directory_schema`)
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO directory_schema (version) VALUES (?)`,
			len(sqliteMigrations))
	}
	if err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}

	return tx.Commit()
}

// SetAddress points name at addr, replacing any earlier address.
func (s *SQLiteStore) SetAddress(ctx context.Context, name string, addr netip.Addr) error {
	name, err := normalizeName(name)
	if err != nil {
		return err
	}
	addr, err = normalizeAddr(addr)
	if err != nil {
		return err
	}

	_, err = s.db.ExecContext(ctx, `
		INSERT INTO directory_addresses (name, addr, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET addr = excluded.addr, updated = excluded.updated`,
		name, addr.String(), now().UnixMicro())
	if err != nil {
		return fmt.Errorf("setting address of %s: %w", name, err)
	}

	return nil
}

// Address returns the address of name, or ErrNotFound.
func (s *SQLiteStore) Address(ctx context.Context, name string) (netip.Addr, error) {
	name, err := normalizeName(name)
	if err != nil {
		return netip.Addr{}, err
	}

	var text string
	err = s.db.QueryRowContext(ctx,
		`SELECT addr FROM directory_addresses WHERE name = ?`, name).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return netip.Addr{}, fmt.Errorf("address of %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reading address of %s: %w", name, err)
	}

	return parseStoredAddr(name, text)
}

// CreateService stores a new service with its CA cert chain, or returns
// ErrExists when the id is taken.
func (s *SQLiteStore) CreateService(ctx context.Context, id uint32, caCertChain []byte) error {
	if err := checkBlob("ca cert chain", caCertChain); err != nil {
		return err
	}

	t := now().UnixMicro()
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO directory_services (id, ca_cert_chain, created, updated)
		VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		int64(id), caCertChain, t, t)
	if err != nil {
		return fmt.Errorf("creating service %d: %w", id, err)
	}

	return expectOneRow(res, fmt.Errorf("creating service %d: %w", id, ErrExists))
}

// Service returns the service with the id, or ErrNotFound.
func (s *SQLiteStore) Service(ctx context.Context, id uint32) (Service, error) {
	row := s.db.QueryRowContext(ctx, `
		SELECT id, ca_cert_chain, data_cert_chain, contract, version, created, updated
		FROM directory_services WHERE id = ?`, int64(id))

	svc, err := scanSQLiteService(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Service{}, fmt.Errorf("service %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Service{}, fmt.Errorf("reading service %d: %w", id, err)
	}

	return svc, nil
}

// SetServiceDataCert stores or replaces the data cert chain of a service, or
// returns ErrNotFound.
func (s *SQLiteStore) SetServiceDataCert(ctx context.Context, id uint32, chain []byte) error {
	if err := checkBlob("data cert chain", chain); err != nil {
		return err
	}

	res, err := s.db.ExecContext(ctx, `
		UPDATE directory_services SET data_cert_chain = ?, updated = ? WHERE id = ?`,
		chain, now().UnixMicro(), int64(id))
	if err != nil {
		return fmt.Errorf("setting data cert of service %d: %w", id, err)
	}

	return expectOneRow(res, fmt.Errorf("setting data cert of service %d: %w", id, ErrNotFound))
}

// SetContract stores a contract if version is higher than the stored one.
// The version check and the write are one statement, so concurrent writers
// cannot both win. It returns ErrNotFound or ErrStaleVersion otherwise.
func (s *SQLiteStore) SetContract(
	ctx context.Context, id uint32, version int, contract []byte,
) error {
	if err := checkBlob("contract", contract); err != nil {
		return err
	}

	res, err := s.db.ExecContext(ctx, `
		UPDATE directory_services SET contract = ?, version = ?, updated = ?
		WHERE id = ? AND version < ?`,
		contract, version, now().UnixMicro(), int64(id), version)
	if err != nil {
		return fmt.Errorf("setting contract of service %d: %w", id, err)
	}

	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("setting contract of service %d: %w", id, err)
	}
	if n == 1 {
		return nil
	}

	return s.whyNotUpdated(ctx, id)
}

// whyNotUpdated tells a missing service from a stale contract version after
// a conditional update changed nothing. Services are never deleted, so the
// answer cannot go out of date between the two statements.
func (s *SQLiteStore) whyNotUpdated(ctx context.Context, id uint32) error {
	var one int
	err := s.db.QueryRowContext(ctx,
		`SELECT 1 FROM directory_services WHERE id = ?`, int64(id)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("setting contract of service %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("looking up service %d: %w", id, err)
	}

	return fmt.Errorf("setting contract of service %d: %w", id, ErrStaleVersion)
}

// Services lists the services that have a contract, ordered by id, skipping
// skip of them and returning at most count (all when count <= 0).
func (s *SQLiteStore) Services(ctx context.Context, skip, count int) ([]Service, error) {
	limit, err := checkPage(skip, count)
	if err != nil {
		return nil, err
	}

	// SQLite reads a negative LIMIT as no limit.
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, ca_cert_chain, data_cert_chain, contract, version, created, updated
		FROM directory_services WHERE contract IS NOT NULL
		ORDER BY id LIMIT ? OFFSET ?`, limit, skip)
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	defer rows.Close()

	var list []Service
	for rows.Next() {
		svc, err := scanSQLiteService(rows)
		if err != nil {
			return nil, fmt.Errorf("listing services: %w", err)
		}
		list = append(list, svc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}

	return list, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error {
	return s.db.Close()
}

// scanSQLiteService reads one row of directory_services.
func scanSQLiteService(row interface{ Scan(...any) error }) (Service, error) {
	var (
		id               int64
		svc              Service
		created, updated int64
	)
	err := row.Scan(&id, &svc.CACertChain, &svc.DataCertChain, &svc.Contract,
		&svc.Version, &created, &updated)
	if err != nil {
		return Service{}, err
	}

	svc.ID, err = serviceID(id)
	if err != nil {
		return Service{}, err
	}
	svc.Created = time.UnixMicro(created).UTC()
	svc.Updated = time.UnixMicro(updated).UTC()

	return svc, nil
}

// expectOneRow returns errNone when res reports that no row changed.
func expectOneRow(res sql.Result, errNone error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("counting changed rows: %w", err)
	}
	if n == 0 {
		return errNone
	}

	return nil
}
