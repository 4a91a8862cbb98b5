package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/byoda/byoda-go/internal/contract"
)

// layoutVersion is the version of what the store itself lays out: its own
// tables and how it names tables, columns and indexes. PRAGMA user_version
// holds it.
const layoutVersion = 1

// metaTables are the store's own tables. Their names cannot clash with the
// tables of data classes, which all start with '_'.
//
// byoda_store records which service the file belongs to and the highest
// contract version its tables were brought up to.
//
// byoda_counters holds the counters of §4.7 of the Data API: conds is the
// JSON list of [field, value] pairs, sorted by field, that a row must match
// to count; name is the key the reference would use for the counter.
const metaTables = `
CREATE TABLE IF NOT EXISTS byoda_store (
	service_id       INTEGER NOT NULL,
	contract_version INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS byoda_counters (
	class TEXT NOT NULL,
	conds TEXT NOT NULL,
	name  TEXT NOT NULL,
	value INTEGER NOT NULL,
	used  REAL NOT NULL,
	PRIMARY KEY (class, conds)
) STRICT, WITHOUT ROWID;
`

// migrate brings the file up to date with contract c, in one transaction.
func (s *Store) migrate(ctx context.Context, c *contract.Contract) error {
	return s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		if err := checkLayout(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, metaTables); err != nil {
			return fmt.Errorf("creating store tables: %w", err)
		}
		if err := s.recordContract(ctx, tx, c); err != nil {
			return err
		}

		for _, name := range c.ClassNames() {
			if err := s.migrateClass(ctx, tx, c.Classes[name]); err != nil {
				return fmt.Errorf("preparing table of class %s: %w", name, err)
			}
		}

		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", layoutVersion))
		if err != nil {
			return fmt.Errorf("recording layout version: %w", err)
		}
		return nil
	})
}

// checkLayout refuses a file that a newer version of this package laid out.
func checkLayout(ctx context.Context, tx *sql.Tx) error {
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("reading layout version: %w", err)
	}
	if version > layoutVersion {
		return fmt.Errorf("layout version %d is newer than this program knows (%d)",
			version, layoutVersion)
	}
	return nil
}

// recordContract checks that the file belongs to c's service and records
// c's version. A version older than the recorded one is allowed, because
// tables only ever grow, but it is worth a warning.
func (s *Store) recordContract(ctx context.Context, tx *sql.Tx, c *contract.Contract) error {
	var serviceID int64
	var version int
	err := tx.QueryRowContext(ctx,
		"SELECT service_id, contract_version FROM byoda_store").Scan(&serviceID, &version)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx,
			"INSERT INTO byoda_store (service_id, contract_version) VALUES (?, ?)",
			int64(c.ServiceID), c.Version)
		if err != nil {
			return fmt.Errorf("recording contract version: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading contract version: %w", err)
	}

	if serviceID != int64(c.ServiceID) {
		return fmt.Errorf("%w: the file is of service %d, the contract of service %d",
			ErrWrongService, serviceID, c.ServiceID)
	}
	if version > c.Version {
		s.logger.Warn("contract is older than the data store", "path", s.path,
			"contract_version", c.Version, "store_contract_version", version)
		return nil
	}
	_, err = tx.ExecContext(ctx, "UPDATE byoda_store SET contract_version = ?", c.Version)
	if err != nil {
		return fmt.Errorf("recording contract version: %w", err)
	}
	return nil
}

// column is a column of a class's table.
type column struct {
	name, typ string
}

// The meta columns: who wrote a row, its cursor, and for cache-only classes
// when it expires and where it came from.
const (
	colCursor          = "cursor"
	colID              = "id"
	colIDType          = "id_type"
	colExpires         = "expires"
	colOriginClassName = "origin_class_name"
)

// migrateClass creates the table of class cl or adds the columns it lacks,
// and creates the indexes that cl's fields ask for.
func (s *Store) migrateClass(ctx context.Context, tx *sql.Tx, cl *contract.Class) error {
	table := tableName(cl.Name)
	want := columns(cl)
	defs := make([]string, len(want))
	for i, col := range want {
		defs[i] = quote(col.name) + " " + col.typ
	}
	create := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s) STRICT", quote(table),
		strings.Join(defs, ", "))
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("creating table: %w", err)
	}

	if err := s.addColumns(ctx, tx, table, want); err != nil {
		return err
	}
	return s.migrateIndexes(ctx, tx, table, indexes(cl))
}

// migrateIndexes creates the indexes of want that table lacks and builds
// anew those that a file of an earlier version of this package defined
// otherwise. SQLite keeps the statement that created an index, with "IF
// NOT EXISTS" taken out, which tells.
func (s *Store) migrateIndexes(ctx context.Context, tx *sql.Tx, table string,
	want []index) error {
	have := map[string]string{}
	rows, err := tx.QueryContext(ctx,
		"SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? "+
			"AND sql IS NOT NULL", table)
	if err != nil {
		return fmt.Errorf("reading indexes: %w", err)
	}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return fmt.Errorf("reading indexes: %w", err)
		}
		have[name] = def
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading indexes: %w", err)
	}

	for _, idx := range want {
		name, def := idx.name(table), idx.create(table)
		old, ok := have[name]
		if ok && old == def {
			continue
		}
		if ok {
			if _, err := tx.ExecContext(ctx, "DROP INDEX "+quote(name)); err != nil {
				return fmt.Errorf("dropping index %s: %w", name, err)
			}
			s.logger.Info("rebuilding index", "table", table, "index", name)
		}
		if _, err := tx.ExecContext(ctx, def); err != nil {
			return fmt.Errorf("creating index %s: %w", name, err)
		}
	}
	return nil
}

// addColumns adds the columns of want that table lacks. Columns are never
// dropped or retyped: a column whose type differs from what the contract
// now says keeps its type and gets a warning.
func (s *Store) addColumns(ctx context.Context, tx *sql.Tx, table string, want []column) error {
	have, err := tableColumns(ctx, tx, table)
	if err != nil {
		return err
	}

	for _, col := range want {
		typ, ok := have[col.name]
		if ok {
			if !strings.EqualFold(typ, col.typ) {
				s.logger.Warn("column type differs from the contract", "table", table,
					"column", col.name, "type", typ, "contract_type", col.typ)
			}
			continue
		}
		add := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", quote(table), quote(col.name),
			col.typ)
		if _, err := tx.ExecContext(ctx, add); err != nil {
			return fmt.Errorf("adding column %s: %w", col.name, err)
		}
		s.logger.Info("added column", "table", table, "column", col.name)
	}
	return nil
}

// tableColumns returns the types of the columns of table, by name.
func tableColumns(ctx context.Context, tx *sql.Tx, table string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	defer rows.Close()

	cols := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("reading columns: %w", err)
		}
		cols[name] = typ
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	return cols, nil
}

// columns lists the columns of the table of class cl: one per field of its
// records, then the meta columns.
func columns(cl *contract.Class) []column {
	rec := cl.Record()
	cols := make([]column, 0, len(rec.Fields)+5)
	for _, f := range rec.Fields {
		cols = append(cols, column{fieldColumn(f.Name), columnType(f.Type)})
	}
	cols = append(cols, column{colCursor, "TEXT"}, column{colID, "TEXT"},
		column{colIDType, "TEXT"})
	if cl.CacheOnly > 0 {
		cols = append(cols, column{colExpires, "REAL"}, column{colOriginClassName, "TEXT"})
	}
	return cols
}

// columnType is the SQLite type that stores fields of type t. Date-times
// are epoch seconds and arrays JSON text, as in the reference.
func columnType(t contract.FieldType) string {
	switch t {
	case contract.TypeInteger, contract.TypeBoolean:
		return "INTEGER"
	case contract.TypeNumber, contract.TypeDateTime:
		return "REAL"
	case contract.TypeArray:
		return "BLOB"
	}
	return "TEXT"
}

// index is an index on one column of a class's table. Indexes of fields
// leave out the rows where the field is null: most fields of most records
// are, and a row costs a write only of the indexes that hold it. A filter
// compares a field with =, <, IN and the like, which no null passes, so
// SQLite still uses the index for it.
type index struct {
	column string
	unique bool
	sparse bool // only rows where the column is not null
}

// name is the index's name. The reference names indexes
// BYODA_IDX_<table>_<field>, which two pairs of names can share; the dot,
// which no name of a contract holds, keeps ours apart.
func (idx index) name(table string) string {
	return "BYODA_IDX_" + table + "." + idx.column
}

// create is the statement that creates the index, as SQLite keeps it.
func (idx index) create(table string) string {
	kind := "INDEX"
	if idx.unique {
		kind = "UNIQUE INDEX"
	}
	def := fmt.Sprintf("CREATE %s %s ON %s (%s)", kind, quote(idx.name(table)), quote(table),
		quote(idx.column))
	if idx.sparse {
		def += " WHERE " + quote(idx.column) + " IS NOT NULL"
	}
	return def
}

// indexes lists the indexes of the table of class cl: those the fields ask
// for, the cursors of an array class, which are unique so that a cursor
// names one row, and the expiry of a cache-only class.
func indexes(cl *contract.Class) []index {
	var idxs []index
	for _, f := range cl.Record().Fields {
		if f.Indexed() {
			idxs = append(idxs, index{column: fieldColumn(f.Name), sparse: true})
		}
	}
	if cl.Kind == contract.ArrayClass {
		idxs = append(idxs, index{column: colCursor, unique: true})
	}
	if cl.CacheOnly > 0 {
		idxs = append(idxs, index{column: colExpires})
	}
	return idxs
}

// tableName is the table of a class, as the reference names it.
func tableName(class string) string {
	return "_" + class
}

// fieldColumn is the column of a field, as the reference names it.
func fieldColumn(field string) string {
	return "_" + field
}

// quote makes name an SQL identifier. Names come from the contract, which
// allows only letters, digits and underscores, but quoting keeps SQL
// keywords usable as names.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
