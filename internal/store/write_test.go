package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contract"
)

func TestRecordValidation(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withProbes))
	base := func(edit func(Record)) Record {
		r := asset(0, time.Now())
		edit(r)
		return r
	}

	tests := []struct {
		name   string
		class  string
		record Record
		wantIn string
	}{
		{"required field missing", "network_assets",
			base(func(r Record) { delete(r, "asset_type") }), "misses required field asset_type"},
		{"required fields null", "network_assets",
			base(func(r Record) { r["asset_id"], r["asset_type"] = nil, nil }),
			"misses required fields asset_id, asset_type"},
		{"bad uuid", "network_assets", base(func(r Record) { r["asset_id"] = "blah" }),
			`field asset_id: "blah" is not a valid uuid`},
		{"bad date-time", "network_assets",
			base(func(r Record) { r["created_timestamp"] = "yesterday" }),
			"field created_timestamp"},
		{"number for a string", "network_assets", base(func(r Record) { r["title"] = 5 }),
			"field title: 5 is not a valid string"},
		{"string for a number", "network_assets",
			base(func(r Record) { r["duration"] = "long" }), "field duration"},
		{"bad boolean", "network_assets",
			base(func(r Record) { r["screen_orientation_horizontal"] = 2 }),
			"field screen_orientation_horizontal"},
		{"string for an array", "network_assets",
			base(func(r Record) { r["keywords"] = "just testing" }), "is not an array"},
		{"wrong item type", "network_assets",
			base(func(r Record) { r["keywords"] = []any{"a", 5} }), "field keywords[1]"},
		{"null item", "network_assets",
			base(func(r Record) { r["keywords"] = []any{nil} }), "field keywords[0]"},
		{"embedded record misses a field", "network_assets", base(func(r Record) {
			r["video_thumbnails"] = []any{Record{"thumbnail_id": uuid.NewString()}}
		}), "field video_thumbnails[0]: video_thumbnail record misses required fields"},
		{"embedded value of the wrong type", "network_assets", base(func(r Record) {
			r["video_chapters"] = []any{Record{"chapter_id": uuid.NewString(), "start": "x",
				"end": 1}}
		}), "field video_chapters[0].start"},
		{"embedded record is not an object", "network_assets",
			base(func(r Record) { r["video_chapters"] = []any{"chapter"} }),
			"field video_chapters[0]"},
		{"integer with a fraction", "probes", Record{"i": 2.5}, "field i"},
		{"date-time out of range", "probes", Record{"d": "10000-01-01T00:00:00Z"}, "field d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(ctx, tt.class, tt.record, owner)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Append: %v, want an ErrInvalidRecord", err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Append: %q does not say %q", err, tt.wantIn)
			}
		})
	}
	if n := len(queryAll(t, s, "network_assets", Filter{})); n != 0 {
		t.Errorf("%d rows after failed appends, want 0", n)
	}
}

func TestRecordCoercion(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withProbes))
	id := uuid.New()

	tests := []struct {
		name string
		in   Record
		want Record
	}{
		{"numeric strings", Record{"i": "42", "n": " 2.5 "}, Record{"i": int64(42), "n": 2.5}},
		{"whole floats", Record{"i": 7.0, "n": json.Number("3")}, Record{"i": int64(7), "n": 3.0}},
		{"booleans", Record{"b": "true"}, Record{"b": true}},
		{"boolean 0", Record{"b": 0}, Record{"b": false}},
		{"upper-case uuid", Record{"u": strings.ToUpper(id.String())}, Record{"u": id.String()}},
		{"uuid value", Record{"u": id}, Record{"u": id.String()}},
		{"epoch seconds", Record{"d": 1714566896.123456},
			Record{"d": "2024-05-01T12:34:56.123456Z"}},
		{"epoch string", Record{"d": "1714566896"}, Record{"d": "2024-05-01T12:34:56Z"}},
		{"offset", Record{"d": "2024-05-01T14:34:56+02:00"}, Record{"d": "2024-05-01T12:34:56Z"}},
		{"naive is UTC", Record{"d": "2024-05-01 12:34:56.5"},
			Record{"d": "2024-05-01T12:34:56.500000Z"}},
		{"date only", Record{"d": "2024-05-01"}, Record{"d": "2024-05-01T00:00:00Z"}},
		{"nanoseconds round", Record{"d": "2024-05-01T12:34:56.1234567Z"},
			Record{"d": "2024-05-01T12:34:56.123457Z"}},
		{"time.Time", Record{"d": time.Date(2024, 5, 1, 14, 34, 56, 0,
			time.FixedZone("x", 7200))}, Record{"d": "2024-05-01T12:34:56Z"}},
		{"unknown keys dropped", Record{"s": "x", "nope": 1}, Record{"s": "x"}},
		{"string array", Record{"a": []string{"x", "y"}}, Record{"a": []any{"x", "y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := s.Append(ctx, "probes", tt.in, owner)
			if err != nil {
				t.Fatal(err)
			}
			f := filter(t, s, "probes", `{}`)
			var got Record
			for _, q := range queryAll(t, s, "probes", f) {
				if q.Cursor == e.Cursor {
					got = q.Node
				}
			}
			for k, v := range tt.want {
				if !equalNodes(Record{k: got[k]}, Record{k: v}) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			if _, ok := got["nope"]; ok {
				t.Error("an unknown key was kept")
			}
		})
	}
}

// TestUpdate follows §5.9 of the Data API.
func TestUpdate(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	edges := appendAssets(t, s, "network_assets", 5)
	first := edges[0].Node["asset_id"].(string)
	newID := uuid.NewString()

	f := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+first+`"}}`)
	now := time.Now()
	service := Origin{ID: "4294929430", IDType: "service-"}
	n, set, err := s.Update(ctx, "network_assets", f, Record{"asset_id": newID,
		"asset_type": "audio", "created_timestamp": now, "title": nil}, service)
	if err != nil || n != 1 {
		t.Fatalf("Update: %d, %v", n, err)
	}
	if set["asset_id"] != newID || set["asset_type"] != "audio" || len(set) != 3 {
		t.Errorf("Update set %v", set)
	}

	got := queryAll(t, s, "network_assets", filter(t, s, "network_assets",
		`{"asset_id":{"eq":"`+newID+`"}}`))
	switch {
	case len(got) != 1:
		t.Fatalf("%d rows with the new id, want 1", len(got))
	case got[0].Node["asset_type"] != "audio" || got[0].Node["title"] != "test asset-0":
		t.Errorf("updated node = %v", got[0].Node)
	case got[0].Cursor != edges[0].Cursor:
		t.Errorf("the cursor changed from %s to %s", edges[0].Cursor, got[0].Cursor)
	case got[0].Origin != service:
		t.Errorf("origin = %+v, want %+v", got[0].Origin, service)
	}

	random := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+uuid.NewString()+`"}}`)
	if n, _, err := s.Update(ctx, "network_assets", random, asset(9, now), owner); err != nil ||
		n != 0 {
		t.Errorf("Update of no row: %d, %v", n, err)
	}
	others := filter(t, s, "network_assets", `{"asset_id":{"ne":"`+newID+`"}}`)
	r := asset(9, now)
	delete(r, "video_thumbnails")
	if n, _, err := s.Update(ctx, "network_assets", others, r, owner); err != nil || n != 4 {
		t.Errorf("Update of the others: %d, %v", n, err)
	}
	if got := queryAll(t, s, "network_assets", Filter{}); got[1].Node["video_thumbnails"] == nil {
		t.Error("a field the update left out was cleared")
	}

	missing := asset(0, now)
	delete(missing, "asset_type")
	if _, _, err := s.Update(ctx, "network_assets", others, missing, owner); !errors.Is(err,
		ErrInvalidRecord) {
		t.Errorf("Update without a required field: %v", err)
	}
	for _, raw := range []string{``, `{}`, `{"asset_id":{}}`, `{"asset_id":{"title":null}}`,
		`{"title":{"eq":null}}`} {
		f, err := ParseFilter(cl(t, s, "network_assets"), json.RawMessage(raw))
		if err != nil {
			continue // refused already
		}
		if _, _, err := s.Update(ctx, "network_assets", f, asset(0, now), owner); !errors.Is(err,
			ErrEmptyFilter) {
			t.Errorf("Update with filter %q: %v, want ErrEmptyFilter", raw, err)
		}
	}
}

// TestDelete follows §5.10 of the Data API.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appendAssets(t, s, "network_assets", 10)

	if _, err := s.Delete(ctx, "network_assets", Filter{}); !errors.Is(err, ErrEmptyFilter) {
		t.Errorf("Delete without a filter: %v", err)
	}
	random := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+uuid.NewString()+`"}}`)
	if n, err := s.Delete(ctx, "network_assets", random); err != nil || n != 0 {
		t.Errorf("Delete of no row: %d, %v", n, err)
	}

	p, err := s.Query(ctx, "network_assets", QueryOptions{First: 3})
	if err != nil || p.TotalCount != 3 {
		t.Fatal(p, err)
	}
	one := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+
		p.Edges[1].Node["asset_id"].(string)+`"}}`)
	if n, err := s.Delete(ctx, "network_assets", one); err != nil || n != 1 {
		t.Errorf("Delete of one: %d, %v", n, err)
	}
	but := filter(t, s, "network_assets", `{"asset_id":{"ne":"`+
		p.Edges[2].Node["asset_id"].(string)+`"}}`)
	if n, err := s.Delete(ctx, "network_assets", but); err != nil || n != 8 {
		t.Errorf("Delete of all but one: %d, %v", n, err)
	}
	rest := filter(t, s, "network_assets", `{"asset_type":{"ne":""}}`)
	if n, err := s.Delete(ctx, "network_assets", rest); err != nil || n != 1 {
		t.Errorf("Delete of the last: %d, %v", n, err)
	}
	if n := len(queryAll(t, s, "network_assets", Filter{})); n != 0 {
		t.Errorf("%d rows left", n)
	}
}

// TestDateTimeOperators follows §5.8 of the Data API.
func TestDateTimeOperators(t *testing.T) {
	s := openStore(t, addressBook(t))
	edges := appendAssets(t, s, "network_assets", 5)
	p := edges[1].Node["created_timestamp"].(string)

	tests := map[string]int{"at": 1, "nat": 4, "before": 1, "after": 3, "atbefore": 2,
		"atafter": 4}
	for op, want := range tests {
		f := filter(t, s, "network_assets", `{"created_timestamp":{"`+op+`":"`+p+`"}}`)
		if got := len(queryAll(t, s, "network_assets", f)); got != want {
			t.Errorf("%s %s: %d rows, want %d", op, p, got, want)
		}
	}
}

// TestFailedWriteChangesNothing makes the insert of a mutate fail after its
// delete, with a column whose type a newer contract changed.
func TestFailedWriteChangesNothing(t *testing.T) {
	ctx := context.Background()
	prefs := func(typ string) func(map[string]any) {
		return func(doc map[string]any) {
			schemaOf(doc)["properties"].(map[string]any)["prefs"] = map[string]any{
				"type":       "object",
				"properties": map[string]any{"level": map[string]any{"type": typ}},
			}
		}
	}
	s := openStore(t, addressBook(t, prefs("integer")))
	if _, err := s.Mutate(ctx, "prefs", Record{"level": 3}, owner); err != nil {
		t.Fatal(err)
	}

	next := addressBook(t, prefs("string"), func(doc map[string]any) { doc["version"] = 2 })
	if err := s.Upgrade(ctx, next); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mutate(ctx, "prefs", Record{"level": "high"}, owner); err == nil {
		t.Fatal("a string went into an INTEGER column")
	}
	p, err := s.Query(ctx, "prefs", QueryOptions{})
	if err != nil || p.TotalCount != 1 || p.Edges[0].Node["level"] != int64(3) {
		t.Errorf("after the failed mutate: %+v, %v; want the old record", p, err)
	}
}

func TestMutateEmptyRecord(t *testing.T) {
	s := openStore(t, addressBook(t))
	_, err := s.Mutate(context.Background(), "person", Record{"nope": 1}, owner)
	if !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("Mutate with no field: %v", err)
	}
}

func TestCacheOnly(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return start }

	copied := Origin{ID: uuid.NewString(), IDType: "members-", ClassName: "public_assets"}
	e, err := s.Append(ctx, "incoming_assets", asset(0, start), copied)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(72 * time.Hour); !e.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", e.Expires, want)
	}
	if _, err := s.Append(ctx, "feed_assets", asset(1, start), owner); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "network_assets", asset(2, start), copied); !errors.Is(err,
		ErrNotCacheOnly) {
		t.Errorf("an origin class name on network_assets: %v", err)
	}

	got := queryAll(t, s, "incoming_assets", Filter{})
	if len(got) != 1 || got[0].Origin != copied || !got[0].Expires.Equal(e.Expires) {
		t.Fatalf("incoming_assets = %+v", got)
	}
	count, err := s.Counter(ctx, "incoming_assets", Filter{})
	if err != nil || count != 1 {
		t.Fatalf("Counter: %d, %v", count, err)
	}

	if n, err := s.Expire(ctx, e.Expires.Add(-time.Second)); err != nil || n != 0 {
		t.Errorf("Expire before the expiry: %d, %v", n, err)
	}
	if n, err := s.Expire(ctx, e.Expires); err != nil || n != 1 {
		t.Errorf("Expire at the expiry: %d, %v", n, err)
	}
	if n := len(queryAll(t, s, "incoming_assets", Filter{})); n != 0 {
		t.Errorf("%d incoming assets left after expiry", n)
	}
	if n := len(queryAll(t, s, "feed_assets", Filter{})); n != 1 {
		t.Errorf("%d feed assets, which keep a week, left; want 1", n)
	}
	if count, err := s.Counter(ctx, "incoming_assets", Filter{}); err != nil || count != 0 {
		t.Errorf("Counter after expiry: %d, %v", count, err)
	}
}

func cl(tb testing.TB, s *Store, name string) *contract.Class {
	tb.Helper()
	c, ok := s.Contract().Class(name)
	if !ok {
		tb.Fatalf("no class %s", name)
	}
	return c
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	const writers, each = 4, 25

	errs := make(chan error, 2*writers)
	for w := range writers {
		go func() {
			for i := range each {
				if _, err := s.Append(ctx, "network_assets", asset(w*each+i, time.Now()),
					owner); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		go func() {
			for range each {
				if _, err := s.Query(ctx, "network_assets", QueryOptions{}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 * writers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}

	if n := len(queryAll(t, s, "network_assets", Filter{})); n != writers*each {
		t.Errorf("%d rows, want %d", n, writers*each)
	}
	if n, err := s.Counter(ctx, "network_assets", Filter{}); err != nil || n != writers*each {
		t.Errorf("Counter: %d, %v", n, err)
	}
}

// TestCursorsOfAppends checks the cursors of rows appended one after the
// other: unique, eight hex digits, random in their low half, and sharing
// their high half with the rows appended around them, in blocks of 256 by
// rowid, so that they go to a few pages of the index of cursors.
func TestCursorsOfAppends(t *testing.T) {
	s := openStore(t, addressBook(t))
	const n = 600 // rows 1 to 600: blocks 0, 1 and 2
	edges := appendAssets(t, s, "network_assets", n)

	seen := map[string]bool{}
	lows := map[string]bool{}
	for i, e := range edges {
		if len(e.Cursor) != CursorLength {
			t.Fatalf("cursor %q has %d characters", e.Cursor, len(e.Cursor))
		}
		b, err := hex.DecodeString(e.Cursor)
		if err != nil {
			t.Fatalf("cursor %q is not hex", e.Cursor)
		}
		if seen[e.Cursor] {
			t.Fatalf("cursor %q is given twice", e.Cursor)
		}
		seen[e.Cursor] = true
		lows[e.Cursor[4:]] = true

		rowid := int64(i + 1)
		if high := binary.BigEndian.Uint16(b[:2]); high != uint16(rowid>>8) {
			t.Errorf("row %d has cursor %s; want the high half %04x", rowid, e.Cursor,
				rowid>>8)
		}
	}
	// 600 draws of 16 bits repeat a few values, not hundreds.
	if len(lows) < n-50 {
		t.Errorf("%d distinct low halves in %d cursors", len(lows), n)
	}

	// A store opened again goes on from the table's last rowid.
	path := s.path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := appendAssets(t, s, "network_assets", 1)[0]
	if e.Cursor[:4] != fmt.Sprintf("%04x", (n+1)>>8) {
		t.Errorf("row %d after reopening has cursor %s", n+1, e.Cursor)
	}
}

// TestCursorsAllTaken fills every cursor that the next append may draw and
// checks that the append, after its tries, fails and adds nothing.
func TestCursorsAllTaken(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appendAssets(t, s, "network_assets", 1) // rowid 1: the next has high half 0000

	// Every low half with the high half of rowid 2, taking rowids far
	// past it, which does not move the next append's cursors: the writer
	// knows only of the rows it appended.
	err := s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS
			(SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 65535)
			INSERT INTO "_network_assets" ("cursor") SELECT printf('0000%04x', i) FROM n
			WHERE printf('0000%04x', i) NOT IN (SELECT "cursor" FROM "_network_assets")`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	before := len(storedCursors(t, s))

	_, err = s.Append(ctx, "network_assets", asset(1, time.Now()), owner)
	if err == nil || !strings.Contains(err.Error(), "no unused cursor") {
		t.Fatalf("an append with every cursor taken gave %v", err)
	}
	if after := len(storedCursors(t, s)); after != before {
		t.Errorf("%d rows before the failed append, %d after", before, after)
	}
}
