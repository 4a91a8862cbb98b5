package dataapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/store"
)

// stdResponse is what api.WriteJSON, and so encoding/json, writes for resp.
func stdResponse(t *testing.T, resp *queryResponse) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	api.WriteJSON(rec, 200, resp)
	return rec.Body.Bytes()
}

// checkEncoding checks that the query response of class and body comes out
// of Serve as encoding/json writes it.
func checkEncoding(t *testing.T, ta *testAPI, class string, body map[string]any) {
	t.Helper()
	code, got := ta.call(ta.owner, class, "query", body)
	if code != 200 {
		t.Fatalf("query %s %v: %d %s", class, body, code, got)
	}

	cl, _ := ta.api.Store.Contract().Class(class)
	var req request
	data, _ := json.Marshal(body)
	if err := json.Unmarshal(data, &req); err != nil {
		t.Fatal(err)
	}
	req.QueryID = "" // the first call used it up
	resp, err := ta.api.query(t.Context(), cl, req, ta.owner)
	if err != nil {
		t.Fatal(err)
	}
	std := resp.(*queryResponse)
	withNodes(std)
	if want := stdResponse(t, std); !bytes.Equal(got, want) {
		t.Fatalf("query %s %v:\n got %s\nwant %s", class, body, got, want)
	}
}

// TestQueryEncoding compares the hand-written encoding of query responses
// with encoding/json's, over records with every kind of value.
func TestQueryEncoding(t *testing.T) {
	ta := newTestAPI(t)
	odd := []string{"plain", `quote " and \ backslash`, "<b>html & co</b>", "fish & chips",
		"ünïcödé ✓", "tab\tnew\nline\r\x01\x1f", "line\u2028para\u2029", "bad \xff utf-8", ""}
	for n, s := range odd {
		a := asset(n, time.Now().Add(time.Duration(n)*time.Microsecond))
		a["title"] = s
		a["keywords"] = append([]string{s}, odd...)
		a["duration"] = []float64{0, 1e-7, 1e21, 123.456, -2.5e-12, 1e20, math.MaxFloat64,
			5e-324, 0.000001}[n]
		a["screen_orientation_horizontal"] = n%2 == 0
		a["copyright_years"] = []any{2020, 2021 + n}
		a["video_thumbnails"] = []any{map[string]any{"thumbnail_id": uuid.NewString(),
			"url": "https://example.com/" + s, "width": 640, "height": 480 + n}}
		a["video_chapters"] = []any{map[string]any{"chapter_id": uuid.NewString(),
			"start": 0.5, "end": 10, "title": s}}
		ta.ok("network_assets", "append", map[string]any{"data": a})
	}
	ta.ok("person", "mutate", map[string]any{"data": map[string]any{"given_name": "A<>&",
		"family_name": "B", "email": "a@example.com"}})

	checkEncoding(t, ta, "network_assets", map[string]any{"first": 100})
	checkEncoding(t, ta, "network_assets", map[string]any{"first": 3})
	checkEncoding(t, ta, "network_assets", map[string]any{"fields": []string{"title",
		"video_chapters"}})
	checkEncoding(t, ta, "network_assets", map[string]any{"filter": map[string]any{
		"title": map[string]any{"eq": "nothing"}}})
	checkEncoding(t, ta, "person", nil)
	checkEncoding(t, ta, "member", nil)
}

// TestEncodeForeignRecords covers what only network queries bring: nodes
// as another pod wrote them, with keys that are not fields, numbers as
// float64, and pods that did not answer.
func TestEncodeForeignRecords(t *testing.T) {
	ta := newTestAPI(t)
	cl, _ := ta.api.Store.Contract().Class("network_assets")
	var node store.Record
	err := json.Unmarshal([]byte(`{"title": "x<y", "extra": {"b": 1, "a": [1.5, null, true]},
		"video_thumbnails": [{"url": "u", "width": 3, "unknown": "z"}], "duration": 1e-9}`),
		&node)
	if err != nil {
		t.Fatal(err)
	}
	// As many keys as the class has fields, but not the same.
	lookalike := store.Record{"not a field": 1}
	for _, f := range cl.Record().Fields[1:] {
		lookalike[f.Name] = f.Name
	}

	expires := "2030-01-01T00:00:00Z"
	for _, resp := range []*queryResponse{
		{Edges: []queryEdge{{Cursor: "abc", Origin: "o", Node: node, ExpiresAt: &expires},
			{Cursor: "def", Origin: "p"}}, Unanswered: []string{"m1", "m<2>"}},
		{Edges: []queryEdge{{Cursor: "ghi", Node: lookalike}}},
		{},
		{Edges: []queryEdge{}},
	} {
		got, err := appendQueryResponse(nil, cl.Record(), resp)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdResponse(t, resp); !bytes.Equal(got, want) {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}

	// encoding/json cannot write a NaN; neither can the encoder, which
	// leaves the answer to it.
	bad := &queryResponse{Edges: []queryEdge{{Node: store.Record{"duration": math.NaN()}}}}
	if _, err := appendQueryResponse(nil, cl.Record(), bad); err == nil {
		t.Error("a NaN encoded")
	}
}
