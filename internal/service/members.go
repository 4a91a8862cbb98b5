package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// ErrUnknownMember is returned for a member the service has never signed.
var ErrUnknownMember = errors.New("unknown member")

// Member status values, as the reference names them.
const (
	StatusSigned     = "SIGNED"
	StatusRegistered = "REGISTERED"
)

// Member is what the service keeps about one member.
type Member struct {
	ID            string
	Status        string
	Address       netip.Addr
	SchemaVersion int
	TLSCert       []byte // PEM of the member's TLS certificate and chain
	DataCertChain []byte // PEM of the member data certificate and chain
	LastSeen      time.Time
}

// Members is the service's member list in an embedded SQLite database.
type Members struct {
	db *sql.DB
}

const membersSchema = `
CREATE TABLE IF NOT EXISTS members (
	member_id       TEXT PRIMARY KEY,
	status          TEXT NOT NULL,
	address         TEXT NOT NULL DEFAULT '',
	schema_version  INTEGER NOT NULL DEFAULT 0,
	tls_cert        BLOB,
	data_cert_chain BLOB,
	created         INTEGER NOT NULL,
	last_seen       INTEGER NOT NULL
)`

// OpenMembers opens (creating when needed) the member database at path, with
// WAL and durable commits.
func OpenMembers(ctx context.Context, path string) (*Members, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(5000)",
		"foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening members database: %w", err)
	}

	if _, err := db.ExecContext(ctx, membersSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating members table: %w", err)
	}
	return &Members{db: db}, nil
}

// Close closes the database.
func (m *Members) Close() error { return m.db.Close() }

// Get returns a member, or ErrUnknownMember.
func (m *Members) Get(ctx context.Context, id string) (Member, error) {
	var (
		mem      = Member{ID: id}
		addr     string
		lastSeen int64
	)
	err := m.db.QueryRowContext(ctx, `SELECT status, address, schema_version, tls_cert,
		data_cert_chain, last_seen FROM members WHERE member_id = ?`, id).Scan(
		&mem.Status, &addr, &mem.SchemaVersion, &mem.TLSCert, &mem.DataCertChain, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, ErrUnknownMember
	}
	if err != nil {
		return Member{}, fmt.Errorf("reading member %s: %w", id, err)
	}

	if addr != "" {
		mem.Address, _ = netip.ParseAddr(addr)
	}
	mem.LastSeen = time.Unix(0, lastSeen)
	return mem, nil
}

// Signed records that the member's TLS certificate was signed; a member that
// registered keeps its status.
func (m *Members) Signed(ctx context.Context, id string, addr netip.Addr, tlsCert []byte,
) error {
	now := time.Now().UnixNano()
	_, err := m.db.ExecContext(ctx, `INSERT INTO members (member_id, status, address,
		tls_cert, created, last_seen) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (member_id) DO UPDATE SET address = excluded.address,
		tls_cert = excluded.tls_cert, last_seen = excluded.last_seen`,
		id, StatusSigned, addr.String(), tlsCert, now, now)
	if err != nil {
		return fmt.Errorf("recording member %s: %w", id, err)
	}
	return nil
}

// Registered records a member's registration: the contract version it uses
// and its data certificate chain. A member whose signing the service did not
// record (its database was restored from an older copy, say) is added.
func (m *Members) Registered(ctx context.Context, id string, addr netip.Addr, version int,
	dataChain []byte) error {
	now := time.Now().UnixNano()
	_, err := m.db.ExecContext(ctx, `INSERT INTO members (member_id, status, address,
		schema_version, data_cert_chain, created, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (member_id) DO UPDATE SET status = excluded.status,
		address = excluded.address, schema_version = excluded.schema_version,
		data_cert_chain = excluded.data_cert_chain, last_seen = excluded.last_seen`,
		id, StatusRegistered, addr.String(), version, dataChain, now, now)
	if err != nil {
		return fmt.Errorf("registering member %s: %w", id, err)
	}
	return nil
}

// Count returns how many members the service has.
func (m *Members) Count(ctx context.Context) (int, error) {
	var n int
	err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM members`).Scan(&n)
	return n, err
}
