package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contract"
)

// owner is the origin of the writes in tests: the pod's own member.
var owner = Origin{ID: "11111111-2222-4333-8444-555555555555", IDType: "members-"}

// readShared reads a file of the shared test data beside the repository,
// which holds reference files that are not ours to ship.
func readShared(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	path := filepath.Join(append([]string{"..", "..", "..", "shared", "testdata"}, elem...)...)
	data, err := os.ReadFile(path)
	if err == nil {
		return data
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("reading shared test data: %v", err)
	}
	tb.Skipf("shared test data not found beside the repository: %v", err)
	return nil
}

// addressBook returns the address book contract, changed by edits, which
// get its JSON decoded.
func addressBook(tb testing.TB, edits ...func(doc map[string]any)) *contract.Contract {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readShared(tb, "contracts", "addressbook.json"), &doc); err != nil {
		tb.Fatalf("decoding addressbook.json: %v", err)
	}
	for _, edit := range edits {
		edit(doc)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := contract.Parse(raw)
	if err != nil {
		tb.Fatalf("parsing the address book contract: %v", err)
	}
	return c
}

// schemaOf returns the jsonschema of a decoded contract.
func schemaOf(doc map[string]any) map[string]any {
	return doc["jsonschema"].(map[string]any)
}

// addClass adds an array class name, of records rec, to a decoded contract.
func addClass(doc map[string]any, name string, rec map[string]any, props ...any) {
	js := schemaOf(doc)
	recName := name + "_record"
	rec["$id"] = "/schemas/" + recName
	rec["type"] = "object"
	js["$defs"].(map[string]any)[recName] = rec
	class := map[string]any{
		"type":  "array",
		"items": map[string]any{"$ref": "#/schemas/" + recName},
	}
	if len(props) > 0 {
		class["#properties"] = props
	}
	js["properties"].(map[string]any)[name] = class
}

// openStore opens a store in a fresh file for c.
func openStore(tb testing.TB, c *contract.Contract) *Store {
	tb.Helper()
	s, err := Open(context.Background(), filepath.Join(tb.TempDir(), "data.db"), c, nil)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// asset returns the n-th asset record of the acceptance cases of the Data
// API, created at created.
func asset(n int, created time.Time) Record {
	status := "external"
	if n%2 == 0 {
		status = "published"
	}
	thumbnail := func() any {
		return Record{"thumbnail_id": uuid.NewString(), "url": "https://example.com/t.jpg",
			"width": 640, "height": 480}
	}
	chapter := func(start float64) any {
		return map[string]any{"chapter_id": uuid.NewString(), "start": start,
			"end": start + 10, "title": "chapter"}
	}
	return Record{
		"created_timestamp": created.Format(time.RFC3339Nano),
		"asset_type":        "post",
		"asset_id":          uuid.NewString(),
		"creator":           "Steven",
		"title":             fmt.Sprintf("test asset-%d", n),
		"subject":           "just a test asset",
		"contents":          "some utf-8 text: ünïcödé",
		"keywords":          []any{"just", "testing"},
		"ingest_status":     status,
		"video_thumbnails":  []any{thumbnail(), thumbnail()},
		"video_chapters":    []any{chapter(0), chapter(10), chapter(20)},
		"claims":            []any{claim()},
	}
}

func claim() Record {
	return Record{
		"claim_id": uuid.NewString(), "issuer_id": uuid.NewString(), "issuer_type": "app",
		"object_type": "asset", "keyfield": "asset_id", "keyfield_id": uuid.NewString(),
		"object_fields": []any{"asset_id", "title"}, "requester_id": uuid.NewString(),
		"requester_type": "member", "signature": "c2ln", "signature_timestamp": time.Now(),
		"signature_format_version": 1, "signature_url": "https://example.com/s",
		"renewal_url": "https://example.com/r", "confirmation_url": "https://example.com/c",
		"cert_fingerprint": "ab:cd", "cert_expiration": "2030-01-01T00:00:00Z",
	}
}

// appendAssets appends n assets to class, a second apart, and returns their
// edges.
func appendAssets(tb testing.TB, s *Store, class string, n int) []Edge {
	tb.Helper()
	start := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	edges := make([]Edge, n)
	for i := range n {
		created := start.Add(time.Duration(i) * time.Second)
		e, err := s.Append(context.Background(), class, asset(i, created), owner)
		if err != nil {
			tb.Fatalf("Append %d: %v", i, err)
		}
		edges[i] = e
	}
	return edges
}

// filter parses a JSON filter for class of s.
func filter(tb testing.TB, s *Store, class, raw string) Filter {
	tb.Helper()
	cl, ok := s.Contract().Class(class)
	if !ok {
		tb.Fatalf("no class %s", class)
	}
	f, err := ParseFilter(cl, json.RawMessage(raw))
	if err != nil {
		tb.Fatalf("ParseFilter(%s): %v", raw, err)
	}
	return f
}

// queryAll returns the edges of every row of class that f selects.
func queryAll(tb testing.TB, s *Store, class string, f Filter) []Edge {
	tb.Helper()
	p, err := s.Query(context.Background(), class, QueryOptions{Filter: f, First: MaxPageSize})
	if err != nil {
		tb.Fatalf("Query %s: %v", class, err)
	}
	if p.HasNextPage {
		tb.Fatalf("Query %s: more than %d rows", class, MaxPageSize)
	}
	return p.Edges
}

func TestOpenCreatesEveryClass(t *testing.T) {
	c := addressBook(t)
	s := openStore(t, c)
	ctx := context.Background()

	for _, name := range c.ClassNames() {
		cl := c.Classes[name]
		have := tableColumnsOf(t, s, tableName(name))
		for _, col := range columns(cl) {
			if have[col.name] != col.typ {
				t.Errorf("table %s: column %s has type %q, want %q", name, col.name,
					have[col.name], col.typ)
			}
		}
		if _, err := s.Query(ctx, name, QueryOptions{}); err != nil {
			t.Errorf("Query %s: %v", name, err)
		}
	}

	var strict int
	err := s.r.QueryRowContext(ctx,
		`SELECT strict FROM pragma_table_list WHERE name = '_network_assets'`).Scan(&strict)
	if err != nil || strict != 1 {
		t.Errorf("_network_assets strict = %d, %v; want 1", strict, err)
	}
	for _, idx := range []string{"BYODA_IDX__network_assets._asset_id",
		"BYODA_IDX__network_assets.cursor", "BYODA_IDX__incoming_assets.expires",
		"BYODA_IDX__network_assets._publisher"} {
		if !indexExists(t, s, idx) {
			t.Errorf("index %s is missing", idx)
		}
	}
	if indexExists(t, s, "BYODA_IDX__network_assets._title") {
		t.Error("title, which asks for no index, has one")
	}

	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil ||
		mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync int
	if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil ||
		sync != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	var temp int
	if err := s.w.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp); err != nil ||
		temp != 2 {
		t.Errorf("temp_store = %d, %v; want 2 (MEMORY)", temp, err)
	}
}

func tableColumnsOf(tb testing.TB, s *Store, table string) map[string]string {
	tb.Helper()
	tx, err := s.w.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	cols, err := tableColumns(context.Background(), tx, table)
	if err != nil {
		tb.Fatal(err)
	}
	return cols
}

func indexExists(tb testing.TB, s *Store, name string) bool {
	tb.Helper()
	var n int
	err := s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name = ?`,
		name).Scan(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return n == 1
}

// TestSparseIndexes checks that the indexes of fields hold only the rows
// where the field has a value, that filters still search them, and that
// Open rebuilds a full index that a file of an earlier version holds.
func TestSparseIndexes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(ctx, path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	appendAssets(t, s, "network_assets", 3) // without a publisher
	r := asset(3, time.Now())
	r["publisher"] = "p"
	if _, err := s.Append(ctx, "network_assets", r, owner); err != nil {
		t.Fatal(err)
	}
	const idx = "BYODA_IDX__network_assets._publisher"
	if n := indexRows(t, s, idx); n != 1 {
		t.Fatalf("the index of publisher holds %d rows, want the one with a publisher", n)
	}
	cl := s.Contract().Classes["network_assets"]
	for _, raw := range []string{`{"publisher":{"eq":"p"}}`, `{"publisher":{"vin":["p","q"]}}`} {
		q, args, err := selectSQL(cl, "rowid", QueryOptions{Filter: filter(t, s,
			"network_assets", raw)}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if plan := queryPlan(t, s, q, args); !strings.Contains(plan, "INDEX "+idx) {
			t.Errorf("filter %s: plan %q does not search %s", raw, plan, idx)
		}
	}

	// A file of an earlier version, whose index held every row.
	_, err = s.w.ExecContext(ctx, `DROP INDEX "`+idx+`"; CREATE INDEX "`+idx+
		`" ON "_network_assets" ("_publisher")`)
	if err == nil {
		err = s.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, path, addressBook(t), nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := indexRows(t, s, idx); n != 1 {
		t.Fatalf("after Open, the index of publisher holds %d rows, want 1", n)
	}
}

// indexRows counts the entries of the index called name.
func indexRows(tb testing.TB, s *Store, name string) int {
	tb.Helper()
	var cells int
	err := s.r.QueryRow(`SELECT COALESCE(SUM(ncell), 0) FROM dbstat WHERE name = ?`, name).
		Scan(&cells)
	if err != nil {
		tb.Fatal(err)
	}
	return cells
}

// queryPlan returns the details of SQLite's plan of query, joined.
func queryPlan(tb testing.TB, s *Store, query string, args []any) string {
	tb.Helper()
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			tb.Fatal(err)
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "; ")
}

// withRating is version 2 of the address book: assets get a rating, with
// an index, and there is a new class.
func withRating(doc map[string]any) {
	doc["version"] = 2
	defs := schemaOf(doc)["$defs"].(map[string]any)
	defs["asset"].(map[string]any)["properties"].(map[string]any)["rating"] = map[string]any{
		"type": "integer", "#properties": []any{"index"},
	}
	addClass(doc, "ratings", map[string]any{
		"properties": map[string]any{"stars": map[string]any{"type": "integer"}},
	})
}

func TestMigrationAddsFields(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(ctx, path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := appendAssets(t, s, "network_assets", 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path, addressBook(t, withRating), nil)
	if err != nil {
		t.Fatalf("Open with version 2: %v", err)
	}
	defer s.Close()

	if typ := tableColumnsOf(t, s, "_network_assets")["_rating"]; typ != "INTEGER" {
		t.Errorf("column _rating has type %q, want INTEGER", typ)
	}
	if !indexExists(t, s, "BYODA_IDX__network_assets._rating") {
		t.Error("the index of rating is missing")
	}
	edges := queryAll(t, s, "network_assets", Filter{})
	if len(edges) != 3 {
		t.Fatalf("after the migration, %d rows; want 3", len(edges))
	}
	for i, e := range edges {
		if e.Cursor != old[i].Cursor || e.Node["asset_id"] != old[i].Node["asset_id"] {
			t.Errorf("row %d changed: %v", i, e)
		}
		if v, ok := e.Node["rating"]; !ok || v != nil {
			t.Errorf("row %d: rating = %v, %v; want nil", i, v, ok)
		}
	}

	r := asset(9, time.Now())
	r["rating"] = 5
	if _, err := s.Append(ctx, "network_assets", r, owner); err != nil {
		t.Fatal(err)
	}
	got := queryAll(t, s, "network_assets", filter(t, s, "network_assets", `{"rating":{"egt":4}}`))
	if len(got) != 1 || got[0].Node["rating"] != int64(5) {
		t.Errorf("query by rating: %v", got)
	}
	if _, err := s.Append(ctx, "ratings", Record{"stars": 3}, owner); err != nil {
		t.Errorf("Append to the new class: %v", err)
	}
}

func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appendAssets(t, s, "network_assets", 1)

	if _, err := s.Append(ctx, "ratings", Record{"stars": 3}, owner); !errors.Is(err,
		ErrUnknownClass) {
		t.Fatalf("Append to a class of version 2 before the upgrade: %v", err)
	}
	if err := s.Upgrade(ctx, addressBook(t, withRating)); err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	if s.Contract().Version != 2 {
		t.Errorf("Contract().Version = %d, want 2", s.Contract().Version)
	}
	if _, err := s.Append(ctx, "ratings", Record{"stars": 3}, owner); err != nil {
		t.Errorf("Append after the upgrade: %v", err)
	}

	// An older contract still opens the file: nothing was dropped.
	if err := s.Upgrade(ctx, addressBook(t)); err != nil {
		t.Errorf("going back to version 1: %v", err)
	}
	if n := len(queryAll(t, s, "network_assets", Filter{})); n != 1 {
		t.Errorf("%d assets after going back, want 1", n)
	}
}

func TestOpenRefusesOtherService(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(ctx, path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	other := addressBook(t, func(doc map[string]any) { doc["service_id"] = 16384 })
	if s, err := Open(ctx, path, other, nil); !errors.Is(err, ErrWrongService) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open with another service's contract: %v, want ErrWrongService", err)
	}
}

func TestUnknownClassAndWrongKind(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	some := Filter{}

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"query unknown", func() error {
			_, err := s.Query(ctx, "nope", QueryOptions{})
			return err
		}, ErrUnknownClass},
		{"append unknown", func() error {
			_, err := s.Append(ctx, "nope", Record{}, owner)
			return err
		}, ErrUnknownClass},
		{"defined class is not served", func() error {
			_, err := s.Query(ctx, "asset", QueryOptions{})
			return err
		}, ErrUnknownClass},
		{"mutate an array", func() error {
			_, err := s.Mutate(ctx, "network_assets", asset(0, time.Now()), owner)
			return err
		}, ErrWrongKind},
		{"append to an object", func() error {
			_, err := s.Append(ctx, "person", Record{"given_name": "a"}, owner)
			return err
		}, ErrWrongKind},
		{"update an object", func() error {
			_, _, err := s.Update(ctx, "person", some, Record{}, owner)
			return err
		}, ErrWrongKind},
		{"delete from an object", func() error {
			_, err := s.Delete(ctx, "person", some)
			return err
		}, ErrWrongKind},
		{"count an object", func() error {
			_, err := s.Counter(ctx, "member", some)
			return err
		}, ErrWrongKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// sameCursors reports whether edges have exactly the cursors want, in order.
func sameCursors(edges []Edge, want []string) bool {
	got := make([]string, len(edges))
	for i, e := range edges {
		got[i] = e.Cursor
	}
	return slices.Equal(got, want)
}
