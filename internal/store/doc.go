// Package store keeps the data of one membership of a pod: the records of
// the data classes that the service's contract declares, in one SQLite
// file per membership.
//
// The layout follows the reference pod (§4 of the Data API), so that its
// files read the same: a STRICT table "_<class>" per data class that the
// Data API serves, a column "_<field>" per field, and meta columns for the
// cursor, the writer's id and id type, and, for cache-only classes, the
// expiry and the class a copied record came from. Date-times are stored as
// epoch seconds (REAL), booleans as 0 and 1, and arrays, of scalars or of
// embedded records, as JSON text in a BLOB. Indexes cover the fields marked
// index or counter, every uuid field, the cursors and the expiry; those of
// fields leave out the rows where the field is null. A newer contract adds
// tables, columns and indexes; nothing is ever dropped.
//
// The store departs from the reference where the reference is broken:
//
//   - cursors are unique per table, random in their low half and kept
//     when a row is updated, where the reference hashes the required
//     fields, so that equal records share one and an update moves it;
//     their high half follows the rowid, so that new rows' cursors go to
//     a few pages of the index rather than each to a page of its own;
//   - filters are typed through the contract everywhere, field names are
//     checked against it, and regex and glob run as Go regular
//     expressions, in linear time;
//   - counters are exact: they live in the same file and change in the
//     same transaction as the rows they count (see Store.Counter);
//   - every write is atomic and durable when it returns: the file is in
//     WAL mode with synchronous=FULL, and writes that come together share
//     a transaction, and so a sync, each in a savepoint of its own, so
//     that one that fails leaves the others.
//
// Queries read records as JSON, which the store writes byte for byte as
// encoding/json does. It keeps, within DefaultCacheBytes, the JSON of the
// array rows that queries read, so that a page read again costs an index
// lookup rather than reading, converting and encoding every column; see
// edgeCache for how writes keep what is kept true.
//
// The Data API's HTTP layer calls the Store with what it parsed: a class
// name, a Filter from ParseFilter, Records, and the Origin of the
// requester. Errors wrap the sentinel errors declared here, which the
// layer maps to HTTP statuses; their messages are fit for clients.
package store
