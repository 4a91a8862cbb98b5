package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contract"
)

// TestPagination follows §5.2 to §5.4 of the Data API.
func TestPagination(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appended := appendAssets(t, s, "network_assets", 50)

	full, err := s.Query(ctx, "network_assets", QueryOptions{First: 50})
	if err != nil {
		t.Fatal(err)
	}
	if full.TotalCount != 50 || full.HasNextPage || full.EndCursor != full.Edges[49].Cursor {
		t.Fatalf("first=50: total %d, next %v, end %q", full.TotalCount, full.HasNextPage,
			full.EndCursor)
	}
	var cursors []string
	for i, e := range full.Edges {
		if e.Cursor != appended[i].Cursor {
			t.Fatalf("edge %d is not the %d-th appended", i, i)
		}
		cursors = append(cursors, e.Cursor)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(cursors)))) != 50 {
		t.Error("cursors are not unique")
	}

	// Walk the listing in pages of 20.
	var walked []string
	after := ""
	for range 10 {
		p, err := s.Query(ctx, "network_assets", QueryOptions{First: 20, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Edges {
			walked = append(walked, e.Cursor)
		}
		if !p.HasNextPage {
			break
		}
		if p.TotalCount != 20 || p.EndCursor != p.Edges[19].Cursor {
			t.Fatalf("a full page: total %d, end %q", p.TotalCount, p.EndCursor)
		}
		after = p.EndCursor
	}
	if !slices.Equal(walked, cursors) {
		t.Errorf("pages of 20 give %d edges, not the full listing in order", len(walked))
	}

	published := filter(t, s, "network_assets", `{"ingest_status":{"eq":"published"}}`)
	p, err := s.Query(ctx, "network_assets", QueryOptions{Filter: published})
	if err != nil || p.TotalCount != DefaultPageSize || !p.HasNextPage {
		t.Errorf("default page size: %d edges, next %v, %v; want %d and more",
			p.TotalCount, p.HasNextPage, err, DefaultPageSize)
	}
	p, err = s.Query(ctx, "network_assets", QueryOptions{Filter: published, First: 20,
		After: p.EndCursor})
	if err != nil || p.TotalCount != 5 || p.HasNextPage {
		t.Errorf("second page of published: %d edges, next %v, %v; want 5, last",
			p.TotalCount, p.HasNextPage, err)
	}

	big, err := s.Query(ctx, "network_assets", QueryOptions{First: 1 << 30})
	if err != nil || big.TotalCount != 50 {
		t.Errorf("first=2^30: %d edges, %v", big.TotalCount, err)
	}
}

func TestPagingErrors(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appended := appendAssets(t, s, "network_assets", 3)

	unknown := "00000000"
	for slices.ContainsFunc(appended, func(e Edge) bool { return e.Cursor == unknown }) {
		unknown = newCursor(0)
	}
	p, err := s.Query(ctx, "network_assets", QueryOptions{After: unknown})
	if err != nil || p.TotalCount != 0 || p.EndCursor != "" || p.Edges == nil {
		t.Errorf("after a cursor of no row: %+v, %v; want an empty page", p, err)
	}

	// The row an after names may be gone; the listing then ends.
	f := filter(t, s, "network_assets", `{"asset_id":{"eq":"`+
		appended[0].Node["asset_id"].(string)+`"}}`)
	if _, err := s.Delete(ctx, "network_assets", f); err != nil {
		t.Fatal(err)
	}
	p, err = s.Query(ctx, "network_assets", QueryOptions{After: appended[0].Cursor})
	if err != nil || p.TotalCount != 0 {
		t.Errorf("after a deleted row: %d edges, %v", p.TotalCount, err)
	}

	tests := []struct {
		name string
		q    QueryOptions
		want error
	}{
		{"negative first", QueryOptions{First: -1}, ErrInvalidPageSize},
		{"short cursor", QueryOptions{After: "abc"}, ErrBadCursor},
		{"long cursor", QueryOptions{After: "0123456789"}, ErrBadCursor},
		{"unknown field", QueryOptions{Fields: []string{"nope"}}, ErrInvalidFields},
		{"too many fields", QueryOptions{Fields: make([]string, MaxFields+1)}, ErrInvalidFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Query(ctx, "network_assets", tt.q); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNestedRoundTrip follows §5.6 and §5.7 of the Data API.
func TestNestedRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	in := asset(0, time.Now())
	e, err := s.Append(ctx, "network_assets", in, owner)
	if err != nil {
		t.Fatal(err)
	}

	got := queryAll(t, s, "network_assets", Filter{})[0]
	if got.Origin != owner || got.Cursor != e.Cursor || !got.Expires.IsZero() {
		t.Errorf("edge: cursor %q, origin %+v, expires %v", got.Cursor, got.Origin, got.Expires)
	}
	n := got.Node
	if len(n["video_thumbnails"].([]any)) != 2 || len(n["video_chapters"].([]any)) != 3 ||
		len(n["keywords"].([]any)) != 2 {
		t.Fatalf("nested arrays did not round-trip: %v", n)
	}
	thumb := n["video_thumbnails"].([]any)[0].(Record)
	want := in["video_thumbnails"].([]any)[0].(Record)
	if thumb["thumbnail_id"] != want["thumbnail_id"] || thumb["width"] != 640.0 {
		t.Errorf("thumbnail = %v", thumb)
	}
	if v, ok := thumb["display_hint"]; !ok || v != nil {
		t.Errorf("an unset field of an embedded record is %v, %v; want present and nil", v, ok)
	}
	c := n["claims"].([]any)[0].(Record)
	if ts, _ := c["cert_expiration"].(string); ts != "2030-01-01T00:00:00Z" {
		t.Errorf("date-time in an embedded record = %v", c["cert_expiration"])
	}
	if n["contents"] != in["contents"] {
		t.Errorf("contents = %q", n["contents"])
	}
	if !equalNodes(n, e.Node) {
		t.Errorf("the node Append returned differs from the one Query returns:\n%v\n%v",
			e.Node, n)
	}

	sel, err := s.Query(ctx, "network_assets", QueryOptions{
		Fields: []string{"asset_id", "publisher", "keywords", "video_chapters"}})
	if err != nil {
		t.Fatal(err)
	}
	n = sel.Edges[0].Node
	switch {
	case n["asset_id"] != in["asset_id"]:
		t.Errorf("asset_id = %v", n["asset_id"])
	case len(n["keywords"].([]any)) != 2 || len(n["video_chapters"].([]any)) != 3:
		t.Errorf("selected arrays = %v, %v", n["keywords"], n["video_chapters"])
	case n["video_thumbnails"] != nil || n["publisher"] != nil || n["title"] != nil:
		t.Errorf("fields not selected are set: %v", n)
	case n["created_timestamp"] == nil || n["asset_type"] != "post":
		t.Errorf("required fields are missing: %v", n)
	case sel.Edges[0].Cursor != e.Cursor:
		t.Errorf("with fields, cursor %q, want %q", sel.Edges[0].Cursor, e.Cursor)
	}
}

// equalNodes compares two nodes by their JSON.
func equalNodes(a, b Record) bool {
	ja, err1 := marshalArray([]any{a})
	jb, err2 := marshalArray([]any{b})
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// TestObjectClass follows §5.11 and §5.12 of the Data API.
func TestObjectClass(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))

	p, err := s.Query(ctx, "person", QueryOptions{})
	if err != nil || p.TotalCount != 0 || p.EndCursor != "" {
		t.Fatalf("person before mutate: %+v, %v", p, err)
	}

	person := Record{"given_name": "Steven", "family_name": "Hessing",
		"homepage_url": "https://byoda.org/", "email": "steven@byoda.org",
		"avatar_url": "https://byoda.org/a.png", "unknown": "dropped"}
	if n, err := s.Mutate(ctx, "person", person, owner); err != nil || n != 1 {
		t.Fatalf("Mutate person: %d, %v", n, err)
	}
	if _, err := s.Query(ctx, "person", QueryOptions{After: "bad"}); !errors.Is(err,
		ErrBadCursor) {
		t.Errorf("a malformed after on an object class: %v", err)
	}
	p, err = s.Query(ctx, "person", QueryOptions{})
	if err != nil || p.TotalCount != 1 || p.Edges[0].Cursor != "" || p.EndCursor != "" {
		t.Fatalf("person: %+v, %v", p, err)
	}
	want := Record{"given_name": "Steven", "family_name": "Hessing",
		"homepage_url": "https://byoda.org/", "email": "steven@byoda.org",
		"avatar_url": "https://byoda.org/a.png", "additional_names": nil}
	if !equalNodes(p.Edges[0].Node, want) {
		t.Errorf("person = %v\nwant     %v", p.Edges[0].Node, want)
	}

	p, err = s.Query(ctx, "person", QueryOptions{
		Fields: []string{"given_name", "family_name", "homepage_url"}})
	if err != nil || p.Edges[0].Node["email"] == nil || p.Edges[0].Node["avatar_url"] != nil {
		t.Errorf("person with fields: %v, %v", p.Edges[0].Node, err)
	}

	memberID := uuid.NewString()
	joined := "2024-05-01T12:34:56.123456+00:00"
	member := Record{"joined": joined, "member_id": memberID,
		"schema_versions": []any{"10", "5", "1"}}
	if n, err := s.Mutate(ctx, "member", member, owner); err != nil || n != 1 {
		t.Fatalf("Mutate member: %d, %v", n, err)
	}
	member["schema_versions"] = []string{"10", "5", "1", "2"}
	if _, err := s.Mutate(ctx, "member", member, owner); err != nil {
		t.Fatal(err)
	}
	p, err = s.Query(ctx, "member", QueryOptions{})
	if err != nil || p.TotalCount != 1 {
		t.Fatalf("member: %+v, %v", p, err)
	}
	n := p.Edges[0].Node
	if n["member_id"] != memberID || n["joined"] != "2024-05-01T12:34:56.123456Z" ||
		len(n["schema_versions"].([]any)) != 4 {
		t.Errorf("member = %v", n)
	}
}

// TestQueryJSON checks that the JSON of a query that asks for it is what
// AppendJSON writes of its nodes, also for a selection of fields, for a
// cache-only class and for edges the store kept, read again, or with
// nothing kept.
func TestQueryJSON(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	appendAssets(t, s, "network_assets", 70)
	appendAssets(t, s, "incoming_assets", 3)

	for _, limit := range []int{DefaultCacheBytes, 0} {
		s.SetCacheBytes(limit)
		for _, q := range []struct {
			class string
			opts  QueryOptions
		}{
			{"network_assets", QueryOptions{First: 70}},
			{"network_assets", QueryOptions{First: 70}}, // kept
			{"network_assets", QueryOptions{First: 5, Fields: []string{"title", "keywords"}}},
			{"incoming_assets", QueryOptions{}},
			{"incoming_assets", QueryOptions{}},
		} {
			nodes, err := s.Query(ctx, q.class, q.opts)
			if err != nil {
				t.Fatal(err)
			}
			q.opts.JSON = true
			page, err := s.Query(ctx, q.class, q.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkJSONPage(t, s.Contract().Classes[q.class], page, nodes)
		}
	}
}

// checkJSONPage checks that the edges of page hold the JSON of the edges
// of nodes, which hold nodes.
func checkJSONPage(t *testing.T, cl *contract.Class, page, nodes Page) {
	t.Helper()
	if len(page.Edges) != len(nodes.Edges) || len(nodes.Edges) == 0 ||
		page.HasNextPage != nodes.HasNextPage || page.EndCursor != nodes.EndCursor {
		t.Fatalf("%s: %d edges with JSON, %d with nodes", cl.Name, len(page.Edges),
			len(nodes.Edges))
	}
	for i, e := range page.Edges {
		want := nodes.Edges[i]
		if e.Node != nil || e.Cursor != want.Cursor || e.Origin != want.Origin ||
			!e.Expires.Equal(want.Expires) {
			t.Fatalf("%s edge %d: %+v, want %+v", cl.Name, i, e, want)
		}
		wantJSON, err := AppendJSON(nil, cl.Record(), want.Node)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.JSON, wantJSON) {
			t.Fatalf("%s edge %d:\n got %s\nwant %s", cl.Name, i, e.JSON, wantJSON)
		}
	}
}
