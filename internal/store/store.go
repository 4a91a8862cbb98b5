package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/byoda/byoda-go/internal/contract"
)

// Errors that callers tell apart. The comments give the HTTP status that the
// Data API answers with.
var (
	// ErrUnknownClass means the contract has no data class of that name
	// (404: the route does not exist).
	ErrUnknownClass = errors.New("unknown data class")

	// ErrWrongKind means the operation does not fit the kind of class, such
	// as append on an object class (404: the route does not exist).
	ErrWrongKind = errors.New("operation does not apply to this kind of class")

	// ErrInvalidRecord means a record does not fit its class (422).
	ErrInvalidRecord = errors.New("invalid record")

	// ErrInvalidFilter means a filter names an unknown field or operator,
	// or has a value of the wrong type (400).
	ErrInvalidFilter = errors.New("invalid filter")

	// ErrEmptyFilter means update or delete got a filter without
	// conditions, which would touch every row (400). It is also an
	// ErrInvalidFilter.
	ErrEmptyFilter = fmt.Errorf("%w: a filter with at least one condition is required",
		ErrInvalidFilter)

	// ErrBadCursor means an after cursor that cannot be a cursor: it is
	// neither empty nor CursorLength long (422).
	ErrBadCursor = errors.New("malformed cursor")

	// ErrInvalidPageSize means a negative page size (422).
	ErrInvalidPageSize = errors.New("page size must not be negative")

	// ErrInvalidFields means a field selection names a field the class
	// does not have, or too many (400).
	ErrInvalidFields = errors.New("invalid field selection")

	// ErrNotCacheOnly means an origin class name was given for a class that
	// is not cache-only (400).
	ErrNotCacheOnly = errors.New("origin class name given for a class that is not cache-only")

	// ErrWrongService means the database file belongs to another service
	// than the contract (Open and Upgrade).
	ErrWrongService = errors.New("database belongs to another service")

	// ErrClosed means the Store was closed before its writer took up a
	// write, which did not happen (503: the pod is shutting down).
	ErrClosed = errors.New("data store is closed")
)

// minReadConns is the fewest read connections a Store may keep open; it
// keeps one per CPU when there are more. Readers do not block each other or
// the writer in WAL mode.
const minReadConns = 4

// busyTimeout is how long a connection waits for another process's lock,
// such as a backup's, before it fails.
const busyTimeout = 10 * time.Second

// Store is the data of one membership: one SQLite file holding a table per
// data class of the service's contract. It is safe for concurrent use. All
// writes go through one goroutine and its connection, so they never wait on
// each other's locks, and writes that come together share a commit;
// queries use a pool of read-only connections beside it.
type Store struct {
	path     string
	w        *sql.DB // one connection, the only one that writes
	r        *sql.DB // read-only connections
	logger   *slog.Logger
	contract atomic.Pointer[contract.Contract]

	// The writer goroutine takes writes from ops until closing is closed,
	// and closes stopped when it has returned.
	ops       chan *writeOp
	closing   chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once

	// now is the clock, for the expiry of cache-only rows and counters.
	now func() time.Time

	// cache keeps edges that queries read.
	cache *edgeCache

	// counterKeys keeps the counters the writer read, and lastRowids the
	// rowid of the row it last appended to each table; only it uses them.
	counterKeys counterKeys
	lastRowids  map[string]int64
}

// Open opens the data store in the SQLite file at path, creating the file
// when missing, and brings its tables up to date with c: a STRICT table
// "_<class>" for every data class the Data API serves, a column "_<field>"
// for every field, and the indexes that the fields ask for. Columns of
// fields that c no longer has stay, unread; a field c adds gets a column.
//
// The file is in WAL mode with synchronous=FULL: a write that returned
// survives a crash of the process or of the machine. A nil logger discards.
func Open(ctx context.Context, path string, c *contract.Contract,
	logger *slog.Logger) (*Store, error) {
	if c == nil {
		return nil, errors.New("opening data store: no contract")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// Each write of a batch runs in a savepoint, whose journal holds the
	// pages the write changed until the savepoint ends. In memory, that
	// journal costs a copy of each page; in a temporary file, which SQLite
	// uses past 64 KiB by default, it costs write calls. Crash recovery
	// never reads it: the log is what makes a commit durable.
	w, err := openDB(path, 1, true, "journal_mode(WAL)", "synchronous(FULL)",
		"temp_store(MEMORY)")
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, w: w, logger: logger, now: time.Now,
		cache:       newEdgeCache(DefaultCacheBytes),
		counterKeys: counterKeys{},
		lastRowids:  map[string]int64{},
	}
	s.startWriter()
	if err := s.migrate(ctx, c); err != nil {
		s.stopWriter()
		w.Close()
		return nil, fmt.Errorf("preparing data store %s: %w", path, err)
	}

	// Readers open only now: the writer has put the file in WAL mode.
	readConns := max(minReadConns, runtime.GOMAXPROCS(0))
	s.r, err = openDB(path, readConns, false, "query_only(1)")
	if err == nil {
		err = s.r.PingContext(ctx)
	}
	if err != nil {
		if s.r != nil {
			s.r.Close()
		}
		s.stopWriter()
		w.Close()
		return nil, fmt.Errorf("opening readers of data store %s: %w", path, err)
	}
	s.contract.Store(c)
	logger.Info("opened data store", "path", path, "service_id", c.ServiceID,
		"contract_version", c.Version)
	return s, nil
}

// Close waits for the operations in progress to finish and closes the
// database. A write in progress is one that the writer took up; writes it
// has not taken up by then fail with ErrClosed.
func (s *Store) Close() error {
	s.stopWriter()
	return errors.Join(s.r.Close(), s.w.Close())
}

// Contract returns the contract the store currently follows.
func (s *Store) Contract() *contract.Contract {
	return s.contract.Load()
}

// Upgrade moves the open store to c, a later version of the service's
// contract, as Open would: new classes get tables, new fields columns and
// indexes. Operations that started before Upgrade returned use the old
// contract, which is safe because nothing is ever dropped.
func (s *Store) Upgrade(ctx context.Context, c *contract.Contract) error {
	if c == nil {
		return errors.New("upgrading data store: no contract")
	}
	if err := s.migrate(ctx, c); err != nil {
		return fmt.Errorf("upgrading data store %s: %w", s.path, err)
	}
	s.contract.Store(c)
	// Edges are kept by class, and the classes of c are new ones.
	s.cache.clear(nil, true)
	s.logger.Info("upgraded data store", "path", s.path, "contract_version", c.Version)
	return nil
}

// openDB opens a pool of at most conns connections to the file at path,
// each set up with pragmas. A writer's transactions take the write lock when
// they begin, so that none fails halfway for want of it.
func openDB(path string, conns int, writer bool, pragmas ...string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("opening data store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving data store path %s: %w", path, err)
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if writer {
		q.Set("_txlock", "immediate")
	}
	// Escaping keeps a '?', '#' or '%' in the path from being read as URI
	// syntax.
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()

	db := sql.OpenDB(connector{dsn: dsn})
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// sqliteDriver is the SQLite driver of every Store: the stock one, plus the
// byoda_match function that regex and glob filters call. It is set up once
// and never changed.
var sqliteDriver = newDriver()

func newDriver() *sqlite.Driver {
	d := &sqlite.Driver{}
	d.MustRegisterDeterministicScalarFunction(matchFunction, 2, sqlMatch)
	return d
}

// connector opens connections of sqliteDriver that keep their compiled
// statements; unlike sql.Register, it names no driver process-wide.
type connector struct {
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := sqliteDriver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return newCachingConn(conn)
}

func (c connector) Driver() driver.Driver {
	return sqliteDriver
}

// class returns the data class name, checking that it is of kind, unless
// kind is 0.
func (s *Store) class(name string, kind contract.ClassKind) (*contract.Class, error) {
	cl, ok := s.Contract().Class(name)
	if !ok || cl == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownClass, name)
	}
	if kind != 0 && cl.Kind != kind {
		return nil, fmt.Errorf("%w: %s is an %s class", ErrWrongKind, name, cl.Kind)
	}
	return cl, nil
}
