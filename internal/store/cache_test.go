package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// queryBoth queries class of s for the page of q with nodes, which never
// read kept edges, and with JSON, and checks that both give the same
// records.
func queryBoth(t *testing.T, s *Store, class string, q QueryOptions) Page {
	t.Helper()
	q.JSON = false
	nodes, err := s.Query(t.Context(), class, q)
	if err != nil {
		t.Fatal(err)
	}
	q.JSON = true
	page, err := s.Query(t.Context(), class, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Edges) == 0 {
		if len(page.Edges) != 0 {
			t.Fatalf("%s: %d edges with JSON, none with nodes", class, len(page.Edges))
		}
		return page
	}
	checkJSONPage(t, s.Contract().Classes[class], page, nodes)
	return page
}

// keptEdges returns how many edges s keeps, and their bytes.
func keptEdges(s *Store) (n, size int) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	for _, kept := range s.cache.classes {
		n += len(kept)
	}
	return n, s.cache.size
}

// TestKeptEdgesFollowWrites checks that queries read what updates, deletes
// and expiry leave, after earlier queries had the rows kept, also when a
// new row takes the rowid of a deleted one.
func TestKeptEdgesFollowWrites(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	edges := appendAssets(t, s, "network_assets", 30)
	all := QueryOptions{First: 100}
	queryBoth(t, s, "network_assets", all)
	if n, _ := keptEdges(s); n != 30 {
		t.Fatalf("%d edges kept after a query of 30 rows", n)
	}

	// An update changes kept rows.
	id := edges[29].Node["asset_id"].(string)
	f := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+id+`"}}`)
	_, _, err := s.Update(ctx, "network_assets", f, Record{"asset_id": id,
		"asset_type": "video", "created_timestamp": time.Now(), "title": "changed"}, owner)
	if err != nil {
		t.Fatal(err)
	}
	page := queryBoth(t, s, "network_assets", all)
	if !jsonHas(t, page.Edges[29].JSON, "title", "changed") {
		t.Fatalf("the update is not read: %s", page.Edges[29].JSON)
	}

	// Deleting the last rows frees their rowids, which SQLite gives to the
	// rows appended next.
	f = filter(t, s, "network_assets", `{"title":{"eq":"changed"}}`)
	if n, err := s.Delete(ctx, "network_assets", f); err != nil || n != 1 {
		t.Fatalf("Delete: %d, %v", n, err)
	}
	queryBoth(t, s, "network_assets", all)
	if _, err := s.Append(ctx, "network_assets", asset(99, time.Now()), owner); err != nil {
		t.Fatal(err)
	}
	page = queryBoth(t, s, "network_assets", all)
	if len(page.Edges) != 30 || !jsonHas(t, page.Edges[29].JSON, "title", "test asset-99") {
		t.Fatalf("the appended row is not read: %s", page.Edges[29].JSON)
	}

	// Expiry deletes rows of cache-only classes.
	appendAssets(t, s, "incoming_assets", 3)
	queryBoth(t, s, "incoming_assets", all)
	if _, err := s.Expire(ctx, time.Now().Add(365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if page := queryBoth(t, s, "incoming_assets", all); len(page.Edges) != 0 {
		t.Fatalf("%d expired rows read", len(page.Edges))
	}
	if _, err := s.Append(ctx, "incoming_assets", asset(7, time.Now()), owner); err != nil {
		t.Fatal(err)
	}
	if page := queryBoth(t, s, "incoming_assets", all); len(page.Edges) != 1 {
		t.Fatalf("%d rows read after one append", len(page.Edges))
	}
}

// jsonHas reports whether the JSON of a record has value for key.
func jsonHas(t *testing.T, data []byte, key, value string) bool {
	t.Helper()
	var r map[string]any
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return r[key] == value
}

// TestKeptEdgesUnderUpdates queries rows by publisher while updates move
// them from one publisher to another, setting the title to the publisher
// too: every row a query returns must match its filter and have the title
// of its publisher, which a kept edge from before an update would not.
func TestKeptEdgesUnderUpdates(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	const rows, moves, readers = 20, 200, 4
	ids := make([]string, rows)
	for i, e := range appendAssets(t, s, "network_assets", rows) {
		ids[i] = e.Node["asset_id"].(string)
	}
	move := func(i int, publisher string) error {
		f, err := ParseFilter(s.Contract().Classes["network_assets"],
			json.RawMessage(`{"asset_id":{"eq":"`+ids[i]+`"}}`))
		if err != nil {
			return err
		}
		_, _, err = s.Update(ctx, "network_assets", f, Record{"asset_id": ids[i],
			"asset_type": "post", "created_timestamp": time.Now(), "publisher": publisher,
			"title": publisher}, owner)
		return err
	}
	for i := range rows {
		if err := move(i, "a"); err != nil {
			t.Fatal(err)
		}
	}

	done := make(chan struct{})
	errs := make(chan error, readers+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for n := range moves {
			if err := move(n%rows, []string{"a", "b"}[n/rows%2]); err != nil {
				errs <- err
				return
			}
		}
	})
	for range readers {
		wg.Go(func() {
			for _, publisher := range []string{"a", "b", "a", "b"} {
				if err := checkPublisher(ctx, s, publisher, done); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkPublisher queries the rows of publisher until done is closed, and
// at least once, and checks that each has the title of its publisher.
func checkPublisher(ctx context.Context, s *Store, publisher string,
	done <-chan struct{}) error {
	f, err := ParseFilter(s.Contract().Classes["network_assets"],
		json.RawMessage(`{"publisher":{"eq":"`+publisher+`"}}`))
	if err != nil {
		return err
	}
	for range 1000 {
		page, err := s.Query(ctx, "network_assets", QueryOptions{Filter: f, First: 100,
			JSON: true})
		if err != nil {
			return err
		}
		for _, e := range page.Edges {
			var r map[string]any
			if err := json.Unmarshal(e.JSON, &r); err != nil {
				return err
			}
			if r["publisher"] != publisher || r["title"] != publisher {
				return fmt.Errorf("a query of publisher %s read publisher %v, title %v",
					publisher, r["publisher"], r["title"])
			}
		}
		select {
		case <-done:
			return nil
		default:
		}
	}
	return nil
}

// TestKeptEdgesBound checks that the edges kept stay within the bytes
// allowed, and that none are kept when none are allowed.
func TestKeptEdgesBound(t *testing.T) {
	s := openStore(t, addressBook(t))
	appendAssets(t, s, "network_assets", 200)
	const limit = 40_000
	s.SetCacheBytes(limit)
	after := ""
	for range 20 {
		page := queryBoth(t, s, "network_assets", QueryOptions{First: 10, After: after})
		after = page.EndCursor
		n, size := keptEdges(s)
		if size > limit || n == 0 {
			t.Fatalf("%d edges kept in %d bytes, with %d allowed", n, size, limit)
		}
	}

	s.SetCacheBytes(0)
	if n, size := keptEdges(s); n != 0 || size != 0 {
		t.Fatalf("%d edges kept in %d bytes, with none allowed", n, size)
	}
	queryBoth(t, s, "network_assets", QueryOptions{First: 10})
	if n, _ := keptEdges(s); n != 0 {
		t.Fatalf("%d edges kept, with none allowed", n)
	}
}
