// Package dirstore keeps the state of a network's directory server: the
// addresses that the network's DNS names resolve to, and the services with
// their certificate chains and network-signed contracts.
//
// Two implementations share the Store interface. SQLiteStore keeps everything
// in one local file and is the default. PostgresStore lets several directory
// instances serve one network from a single PostgreSQL database; its writes
// are atomic across instances.
package dirstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ErrNotFound is returned when the requested address or service is not stored.
var ErrNotFound = errors.New("dirstore: not found")

// ErrExists is returned when creating a service whose id is already taken.
var ErrExists = errors.New("dirstore: already exists")

// ErrStaleVersion is returned by SetContract when the offered version is not
// higher than the version already stored for the service.
var ErrStaleVersion = errors.New("dirstore: version not higher than the stored one")

// ErrInvalid is returned when an argument is unusable, such as an empty name,
// an invalid address or an empty certificate chain.
var ErrInvalid = errors.New("dirstore: invalid argument")

// maxNameLen is the longest DNS name in presentation form, without the
// trailing dot.
const maxNameLen = 253

// Service is a service registered with the network.
type Service struct {
	// ID is the ServiceID.
	ID uint32
	// CACertChain is the PEM of the service CA cert and its chain, set once
	// when the network signs the service CA.
	CACertChain []byte
	// DataCertChain is the PEM of the service data cert and its chain; nil
	// until the service registers.
	DataCertChain []byte
	// Contract is the network-signed contract JSON, stored verbatim; nil
	// until the network accepts a contract.
	Contract []byte
	// Version is the version of Contract; 0 when there is none.
	Version int
	// Created is when the service was created.
	Created time.Time
	// Updated is when the service last changed.
	Updated time.Time
}

// Store is the storage of a directory server. Names are fully qualified DNS
// names; the store lower-cases them and drops a trailing dot.
type Store interface {
	// SetAddress points name at addr, replacing any earlier address.
	SetAddress(ctx context.Context, name string, addr netip.Addr) error

	// Address returns the address of name, or ErrNotFound.
	Address(ctx context.Context, name string) (netip.Addr, error)

	// CreateService stores a new service with its CA cert chain, or returns
	// ErrExists when the id is taken: the first to register an id keeps it.
	CreateService(ctx context.Context, id uint32, caCertChain []byte) error

	// Service returns the service with the id, or ErrNotFound.
	Service(ctx context.Context, id uint32) (Service, error)

	// SetServiceDataCert stores or replaces the data cert chain of a service,
	// or returns ErrNotFound.
	SetServiceDataCert(ctx context.Context, id uint32, chain []byte) error

	// SetContract stores a contract if version is higher than the stored
	// one, atomically: of several writers racing with the same version,
	// exactly one wins. It returns ErrNotFound for an unknown service and
	// ErrStaleVersion when the version is not higher.
	SetContract(ctx context.Context, id uint32, version int, contract []byte) error

	// Services lists the services that have a contract, ordered by id,
	// skipping skip of them and returning at most count (all when count <= 0).
	Services(ctx context.Context, skip, count int) ([]Service, error)

	// Close releases the store's connections.
	Close() error
}

// Open opens the store that source names. A "postgres://" or "postgresql://"
// URL, or a key=value DSN with a host key, opens PostgreSQL; anything else is
// taken as the path of a SQLite file.
func Open(ctx context.Context, source string) (Store, error) {
	if isPostgresSource(source) {
		return OpenPostgres(ctx, source)
	}

	return OpenSQLite(ctx, source)
}

// isPostgresSource reports whether source names a PostgreSQL database. A
// key=value DSN must consist of key=value fields only, so that a file path
// that happens to contain "host=" still opens SQLite.
func isPostgresSource(source string) bool {
	if strings.HasPrefix(source, "postgres://") || strings.HasPrefix(source, "postgresql://") {
		return true
	}

	fields := strings.Fields(source)
	hasHost := false
	for _, f := range fields {
		if !strings.Contains(f, "=") {
			return false
		}
		if strings.HasPrefix(f, "host=") {
			hasHost = true
		}
	}

	return hasHost
}

// normalizeName returns name lower-cased and without a trailing dot.
func normalizeName(name string) (string, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || len(name) > maxNameLen {
		return "", fmt.Errorf("%w: name must have 1 to %d characters", ErrInvalid, maxNameLen)
	}

	return name, nil
}

// normalizeAddr returns the form of addr to store. An IPv4-mapped IPv6
// address, as a dual-stack listener reports IPv4 callers, becomes IPv4.
func normalizeAddr(addr netip.Addr) (netip.Addr, error) {
	if !addr.IsValid() {
		return netip.Addr{}, fmt.Errorf("%w: invalid address", ErrInvalid)
	}
	if addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: address %s has a zone", ErrInvalid, addr)
	}

	return addr.Unmap(), nil
}

// checkBlob rejects an empty cert chain or contract.
func checkBlob(what string, b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}

	return nil
}

// checkPage rejects a negative skip and turns count into a row limit, with
// -1 for no limit.
func checkPage(skip, count int) (limit int, err error) {
	if skip < 0 {
		return 0, fmt.Errorf("%w: negative skip %d", ErrInvalid, skip)
	}
	if count <= 0 {
		return -1, nil
	}

	return count, nil
}

// now is the time stamp for a write. Both backends keep microseconds, so the
// time is cut to that and a value reads back exactly as it was written.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// serviceID converts an id read from a database column.
func serviceID(v int64) (uint32, error) {
	if v < 0 || v > int64(^uint32(0)) {
		return 0, fmt.Errorf("stored service id %d out of range", v)
	}

	return uint32(v), nil
}

// parseStoredAddr parses an address read back from a database.
func parseStoredAddr(name, text string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("stored address of %s: %w", name, err)
	}

	return addr, nil
}
