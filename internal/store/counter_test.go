package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// withGaap adds the class of the counter test vector of §4.7 of the Data
// API: counter fields a, b and c, and d, which is no counter.
func withGaap(doc map[string]any) {
	counter := map[string]any{"type": "integer", "#properties": []any{"counter"}}
	addClass(doc, "gaap", map[string]any{
		"properties": map[string]any{"a": counter, "b": counter, "c": counter,
			"d": map[string]any{"type": "integer"}},
	})
}

// subsets returns every subset of the fields of r, as filters on them.
func subsets(r Record) []map[string]any {
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []map[string]any
	for mask := range 1 << len(names) {
		sub := map[string]any{}
		for i, name := range names {
			if mask&(1<<i) != 0 {
				sub[name] = r[name]
			}
		}
		out = append(out, sub)
	}
	return out
}

// eqFilter writes the filter that tests the fields of sub for equality.
func eqFilter(sub map[string]any) string {
	var conds []string
	for k, v := range sub {
		conds = append(conds, fmt.Sprintf(`"%s":{"eq":%v}`, k, v))
	}
	return "{" + strings.Join(conds, ",") + "}"
}

func TestCounters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withGaap))
	records := []Record{
		{"a": 1, "b": 2, "c": 3, "d": 4},
		{"a": 1, "b": 2, "d": 4},
		{"a": 1, "b": 5},
		{"a": 7},
	}
	for _, r := range records[:2] {
		if _, err := s.Append(ctx, "gaap", r, owner); err != nil {
			t.Fatal(err)
		}
	}

	// expect counts the rows of records[:n] that sub selects.
	expect := func(sub map[string]any, rows []Record) int64 {
		var n int64
		for _, r := range rows {
			match := true
			for k, v := range sub {
				match = match && r[k] == v
			}
			if match {
				n++
			}
		}
		return n
	}
	check := func(when string, rows []Record) {
		t.Helper()
		for _, sub := range subsets(Record{"a": 1, "b": 2, "c": 3}) {
			f := filter(t, s, "gaap", eqFilter(sub))
			got, err := s.Counter(ctx, "gaap", f)
			if want := expect(sub, rows); err != nil || got != want {
				t.Errorf("%s: Counter(%s) = %d, %v; want %d", when, eqFilter(sub), got, err, want)
			}
		}
	}
	check("first read", records[:2])

	var names []string
	rows, err := s.r.Query("SELECT name FROM byoda_counters WHERE class = 'gaap' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		rows.Scan(&name)
		names = append(names, name)
	}
	rows.Close()
	want := []string{"gaap", "gaap_a=1", "gaap_a=1_b=2", "gaap_a=1_b=2_c=3", "gaap_a=1_c=3",
		"gaap_b=2", "gaap_b=2_c=3", "gaap_c=3"}
	if !slices.Equal(names, want) {
		t.Errorf("counters %v\nwant     %v", names, want)
	}

	for _, r := range records[2:] {
		if _, err := s.Append(ctx, "gaap", r, owner); err != nil {
			t.Fatal(err)
		}
	}
	check("after appends", records)

	// Moving b from 5 to 2 moves the row between counters.
	moved := filter(t, s, "gaap", `{"b":{"eq":5}}`)
	if n, _, err := s.Update(ctx, "gaap", moved, Record{"b": 2}, owner); err != nil || n != 1 {
		t.Fatalf("Update: %d, %v", n, err)
	}
	records[2]["b"] = 2
	check("after an update", records)

	gone := filter(t, s, "gaap", `{"c":{"eq":3}}`)
	if n, err := s.Delete(ctx, "gaap", gone); err != nil || n != 1 {
		t.Fatalf("Delete: %d, %v", n, err)
	}
	check("after a delete", records[1:])
}

// TestCounterAcceptance follows §5.14 of the Data API.
func TestCounterAcceptance(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appendAssets(t, s, "network_assets", 3)
	c, err := s.Counter(ctx, "network_assets", Filter{})
	if err != nil || c != 3 {
		t.Fatalf("Counter: %d, %v", c, err)
	}

	edges := appendAssets(t, s, "network_assets", 4)
	if got, err := s.Counter(ctx, "network_assets", Filter{}); err != nil || got != c+4 {
		t.Errorf("after 4 appends: %d, %v; want %d", got, err, c+4)
	}
	for i, e := range edges[:2] {
		f := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+e.Node["asset_id"].(string)+`"}}`)
		if _, err := s.Delete(ctx, "network_assets", f); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Counter(ctx, "network_assets", Filter{}); err != nil || got != c+3-int64(i) {
			t.Errorf("after %d deletes: %d, %v; want %d", i+1, got, err, c+3-int64(i))
		}
	}

	id := edges[2].Node["asset_id"].(string)
	byID := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+strings.ToUpper(id)+`"}}`)
	if got, err := s.Counter(ctx, "network_assets", byID); err != nil || got != 1 {
		t.Errorf("Counter by asset_id: %d, %v", got, err)
	}
	byOther := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+uuid.NewString()+`"}}`)
	if got, err := s.Counter(ctx, "network_assets", byOther); err != nil || got != 0 {
		t.Errorf("Counter by an unknown asset_id: %d, %v", got, err)
	}
}

func TestCounterFilters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withGaap))
	for _, raw := range []string{`{"a":{"ne":1}}`, `{"d":{"eq":4}}`, `{"a":{"gt":0}}`} {
		if _, err := s.Counter(ctx, "gaap", filter(t, s, "gaap", raw)); !errors.Is(err,
			ErrInvalidFilter) {
			t.Errorf("Counter(%s): %v, want ErrInvalidFilter", raw, err)
		}
	}
}

func TestCountersExpire(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withGaap))
	if _, err := s.Counter(ctx, "gaap", Filter{}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := s.r.QueryRow("SELECT COUNT(*) FROM byoda_counters").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count() != 1 {
		t.Fatalf("%d counters, want 1", count())
	}

	if _, err := s.Expire(ctx, s.now().Add(counterIdle-counterTouch)); err != nil {
		t.Fatal(err)
	}
	if count() != 1 {
		t.Error("a counter read recently expired")
	}
	if _, err := s.Expire(ctx, s.now().Add(counterIdle+counterTouch)); err != nil {
		t.Fatal(err)
	}
	if count() != 0 {
		t.Error("a counter nobody read for three days stays")
	}
}

// TestAppendMany appends records in one go, counters included, and checks
// that one bad record keeps all of them out.
func TestAppendMany(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withGaap))
	count := func(sub string) int64 {
		t.Helper()
		n, err := s.Counter(ctx, "gaap", filter(t, s, "gaap", sub))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`{"a":{"eq":1}}`) + count(`{}`); n != 0 {
		t.Fatalf("counters of an empty class: %d", n)
	}

	n, err := s.AppendMany(ctx, "gaap", []Record{{"a": 1, "b": 2}, {"a": 1}, {"a": 3}}, owner)
	if err != nil || n != 3 {
		t.Fatalf("AppendMany: %d, %v", n, err)
	}
	if a1, all := count(`{"a":{"eq":1}}`), count(`{}`); a1 != 2 || all != 3 {
		t.Errorf("after AppendMany, a=1 counts %d and all %d; want 2 and 3", a1, all)
	}
	p, err := s.Query(ctx, "gaap", QueryOptions{})
	if err != nil || len(p.Edges) != 3 || p.Edges[2].Node["a"] != int64(3) ||
		p.Edges[0].Origin != owner {
		t.Fatalf("Query after AppendMany: %+v, %v", p, err)
	}

	n, err = s.AppendMany(ctx, "gaap", []Record{{"a": 1}, {"a": "x"}, {"a": 1}}, owner)
	if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "record 1") ||
		n != 0 {
		t.Errorf("AppendMany with a bad record: %d, %v", n, err)
	}
	if all := count(`{}`); all != 3 {
		t.Errorf("a failed AppendMany changed the count to %d", all)
	}
}

// TestCounterKeysFollowRollback checks that the counters the writer keeps
// in memory are those of the file after a write that changed them was
// rolled back: counters it dropped count again, and one it made is gone.
func TestCounterKeysFollowRollback(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withGaap))
	all := filter(t, s, "gaap", `{}`)
	if n, err := s.Counter(ctx, "gaap", all); err != nil || n != 0 {
		t.Fatalf("Counter = %d, %v", n, err)
	}

	// A write that drops every counter, reads the counters of gaap, and
	// fails, which undoes the drop.
	errUndone := errors.New("undone")
	dropAndFail := testOp(func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM byoda_counters"); err != nil {
			return err
		}
		if _, err := s.loadCounterKeys(ctx, tx, "gaap"); err != nil {
			return err
		}
		return errUndone
	})
	if err := runTogether(s, dropAndFail)[0]; !errors.Is(err, errUndone) {
		t.Fatalf("the failing write got %v", err)
	}
	if _, err := s.Append(ctx, "gaap", Record{"a": 1}, owner); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Counter(ctx, "gaap", all); err != nil || n != 1 {
		t.Errorf("after one append, Counter = %d, %v; want 1", n, err)
	}

	// A write that makes a counter and fails: appends must not count into
	// the counter that is not there, nor fail for it.
	byA := filter(t, s, "gaap", `{"a":{"eq":1}}`)
	key, err := counterKeyOf(byA)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := s.class("gaap", 0)
	if err != nil {
		t.Fatal(err)
	}
	makeAndFail := testOp(func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.counter(ctx, tx, cl, byA, key, s.now()); err != nil {
			return err
		}
		if _, err := s.loadCounterKeys(ctx, tx, "gaap"); err != nil {
			return err
		}
		return errUndone
	})
	if err := runTogether(s, makeAndFail)[0]; !errors.Is(err, errUndone) {
		t.Fatalf("the failing write got %v", err)
	}
	if _, err := s.Append(ctx, "gaap", Record{"a": 1}, owner); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Filter{all, byA} {
		if n, err := s.Counter(ctx, "gaap", f); err != nil || n != 2 {
			t.Errorf("after two appends, Counter = %d, %v; want 2", n, err)
		}
	}
}
