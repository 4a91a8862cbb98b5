package dataapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/store"
)

const addressBookSID = 4294929430

// testAPI is the Data API of one membership of the reference's address
// book, served without TLS for the acceptance cases of the reference.
type testAPI struct {
	t     *testing.T
	api   *API
	owner Requester
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "testdata", "contracts",
		"addressbook.json")
	doc, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the address book contract is needed: %v", err)
		}
		t.Skipf("the address book contract is not here: %v", err)
	}
	c, err := contract.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "data.db"), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	owner := uuid.NewString()
	return &testAPI{t: t, api: New(addressBookSID, owner, st, nil),
		owner: Requester{IDType: IDTypeMember, ID: owner, ServiceID: addressBookSID,
			Addr: netip.MustParseAddr("127.0.0.1")}}
}

// call serves one request and returns its status and body.
func (ta *testAPI) call(who Requester, class, action string, body any) (int, []byte) {
	ta.t.Helper()
	data, _ := json.Marshal(body)
	req := httptest.NewRequest("POST", "/", bytes.NewReader(data))
	rec := httptest.NewRecorder()
	if err := ta.api.Serve(rec, req, who, class, action); err != nil {
		api.WriteError(ta.api.Logger, rec, req, err)
	}
	return rec.Code, rec.Body.Bytes()
}

func (ta *testAPI) ok(class, action string, body any) []byte {
	ta.t.Helper()
	code, out := ta.call(ta.owner, class, action, body)
	if code != 200 {
		ta.t.Fatalf("%s %s: %d %s", action, class, code, out)
	}
	return out
}

type page struct {
	TotalCount int `json:"total_count"`
	Edges      []struct {
		Cursor string         `json:"cursor"`
		Origin string         `json:"origin"`
		Node   map[string]any `json:"node"`
	} `json:"edges"`
	PageInfo struct {
		HasNextPage bool    `json:"has_next_page"`
		EndCursor   *string `json:"end_cursor"`
	} `json:"page_info"`
}

func (ta *testAPI) query(class string, body map[string]any) page {
	ta.t.Helper()
	var p page
	if err := json.Unmarshal(ta.ok(class, "query", body), &p); err != nil {
		ta.t.Fatal(err)
	}
	return p
}

func asset(n int, ts time.Time) map[string]any {
	status := "external"
	if n%2 == 0 {
		status = "published"
	}
	return map[string]any{
		"created_timestamp": ts.UTC().Format(time.RFC3339Nano), "asset_type": "post",
		"asset_id": uuid.NewString(), "creator": "tester", "title": fmt.Sprintf("test asset-%d", n),
		"subject": "s", "contents": "c", "keywords": []string{"just", "testing"},
		"ingest_status": status,
	}
}

func eq(op string, v any) map[string]any { return map[string]any{op: v} }

// TestAcceptanceAssets runs cases 1 to 5, 7, 9, 10 and 16 of the
// reference's acceptance list on network_assets.
func TestAcceptanceAssets(t *testing.T) {
	ta := newTestAPI(t)
	var assets []map[string]any
	for n := 0; n < 50; n++ {
		a := asset(n, time.Now())
		assets = append(assets, a)
		if out := ta.ok("network_assets", "append", map[string]any{"data": a}); string(
			bytes.TrimSpace(out)) != "1" {
			t.Fatalf("append answered %s", out)
		}
	}

	full := ta.query("network_assets", map[string]any{"first": 50})
	if full.TotalCount != 50 || full.PageInfo.HasNextPage ||
		*full.PageInfo.EndCursor != full.Edges[49].Cursor {
		t.Fatalf("full page: %d, next %v", full.TotalCount, full.PageInfo.HasNextPage)
	}

	p := ta.query("network_assets", map[string]any{"first": 20})
	if !p.PageInfo.HasNextPage || *p.PageInfo.EndCursor != full.Edges[19].Cursor {
		t.Fatal("first page of 20")
	}
	p = ta.query("network_assets", map[string]any{"first": 20, "after": *p.PageInfo.EndCursor})
	if p.Edges[0].Cursor != full.Edges[20].Cursor {
		t.Fatal("second page does not continue the first")
	}
	if code, _ := ta.call(ta.owner, "network_assets", "query",
		map[string]any{"after": "abc"}); code != 422 {
		t.Fatalf("after of 3 characters: %d", code)
	}
	if p := ta.query("network_assets", map[string]any{"after": "zzzzzzzz"}); p.TotalCount != 0 {
		t.Fatalf("unknown cursor gave %d", p.TotalCount)
	}
	if p := ta.query("network_assets", map[string]any{"filter": map[string]any{
		"ingest_status": eq("eq", "published")}}); len(p.Edges) != 20 {
		t.Fatalf("default page size gave %d", len(p.Edges))
	}

	x, other := assets[7], assets[8]
	for _, c := range []struct {
		filter map[string]any
		want   int
	}{
		{map[string]any{"asset_id": eq("eq", x["asset_id"])}, 1},
		{map[string]any{"asset_id": eq("eq", x["asset_id"]), "title": eq("eq", x["title"])}, 1},
		{map[string]any{"asset_id": eq("ne", x["asset_id"])}, 49},
		{map[string]any{"asset_id": eq("ne", x["asset_id"]), "title": eq("ne", x["title"])}, 49},
		{map[string]any{"asset_id": eq("ne", x["asset_id"]),
			"title": eq("ne", other["title"])}, 48},
	} {
		if p := ta.query("network_assets", map[string]any{"filter": c.filter,
			"first": 100}); p.TotalCount != c.want {
			t.Fatalf("filter %v gave %d, want %d", c.filter, p.TotalCount, c.want)
		}
	}

	p = ta.query("network_assets", map[string]any{"fields": []string{"asset_id", "publisher",
		"keywords"}, "first": 1})
	n := p.Edges[0].Node
	if n["asset_id"] == nil || len(n["keywords"].([]any)) != 2 || n["title"] != nil ||
		n["publisher"] != nil || n["created_timestamp"] == nil || n["asset_type"] == nil {
		t.Fatalf("field selection: %v", n)
	}

	qid := uuid.NewString()
	ta.ok("network_assets", "query", map[string]any{"query_id": qid})
	if code, _ := ta.call(ta.owner, "network_assets", "query",
		map[string]any{"query_id": qid}); code != 400 {
		t.Fatalf("repeated query id: %d", code)
	}
}

func TestAcceptanceUpdateDelete(t *testing.T) {
	ta := newTestAPI(t)
	var ids []any
	for n := 0; n < 10; n++ {
		a := asset(n, time.Now())
		ids = append(ids, a["asset_id"])
		ta.ok("network_assets", "append", map[string]any{"data": a})
	}

	newID := uuid.NewString()
	out := ta.ok("network_assets", "update", map[string]any{
		"filter": map[string]any{"asset_id": eq("eq", ids[0])},
		"data": map[string]any{"asset_id": newID, "asset_type": "audio",
			"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}})
	if string(bytes.TrimSpace(out)) != "1" {
		t.Fatalf("update answered %s", out)
	}
	p := ta.query("network_assets", map[string]any{"filter": map[string]any{
		"asset_id": eq("eq", newID)}})
	if p.TotalCount != 1 || p.Edges[0].Node["asset_type"] != "audio" {
		t.Fatalf("updated record: %+v", p)
	}

	for _, bad := range []any{nil, map[string]any{"asset_id": nil},
		map[string]any{"asset_id": map[string]any{}},
		map[string]any{"asset_id": map[string]any{"blah": "blah"}}} {
		for _, action := range []string{"update", "delete"} {
			body := map[string]any{"data": asset(0, time.Now())}
			if bad != nil {
				body["filter"] = bad
			}
			if code, _ := ta.call(ta.owner, "network_assets", action, body); code/100 != 4 {
				t.Fatalf("%s with filter %v: %d", action, bad, code)
			}
		}
	}

	del := func(filter map[string]any) string {
		return string(bytes.TrimSpace(ta.ok("network_assets", "delete",
			map[string]any{"filter": filter})))
	}
	if got := del(map[string]any{"asset_id": eq("eq", uuid.NewString())}); got != "0" {
		t.Fatalf("delete of nothing: %s", got)
	}
	p = ta.query("network_assets", map[string]any{"first": 3})
	if got := del(map[string]any{"asset_id": eq("eq", p.Edges[1].Node["asset_id"])}); got != "1" {
		t.Fatalf("delete one: %s", got)
	}
	if got := del(map[string]any{"asset_id": eq("ne", p.Edges[2].Node["asset_id"])}); got != "8" {
		t.Fatalf("delete all but one: %s", got)
	}
	if got := del(map[string]any{"asset_type": eq("ne", "")}); got != "1" {
		t.Fatalf("delete the last: %s", got)
	}
}

// TestAcceptanceObjects runs cases 11 and 12.
func TestAcceptanceObjects(t *testing.T) {
	ta := newTestAPI(t)
	person := map[string]any{"given_name": "Ada", "family_name": "Lovelace",
		"homepage_url": "https://ada.example", "email": "ada@example.test",
		"avatar_url": "https://ada.example/a.png"}
	ta.ok("person", "mutate", map[string]any{"data": person})
	p := ta.query("person", nil)
	if p.TotalCount != 1 || p.Edges[0].Cursor != "" ||
		p.Edges[0].Node["additional_names"] != nil {
		t.Fatalf("person: %+v", p)
	}
	for k, v := range person {
		if p.Edges[0].Node[k] != v {
			t.Fatalf("person.%s = %v, want %v", k, p.Edges[0].Node[k], v)
		}
	}

	joined := time.Now().UTC().Truncate(time.Microsecond)
	u := uuid.NewString()
	ta.ok("member", "mutate", map[string]any{"data": map[string]any{
		"joined": joined.Format(time.RFC3339Nano), "member_id": u,
		"schema_versions": []string{"10", "5", "1"}}})
	m := ta.query("member", nil).Edges[0].Node
	got, _ := time.Parse(time.RFC3339Nano, m["joined"].(string))
	if m["member_id"] != u || !got.Equal(joined) || !strings.HasSuffix(m["joined"].(string),
		"Z") || len(m["schema_versions"].([]any)) != 3 {
		t.Fatalf("member: %v", m)
	}
	ta.ok("member", "mutate", map[string]any{"data": map[string]any{
		"joined": joined.Format(time.RFC3339Nano), "member_id": u,
		"schema_versions": []string{"10", "5", "1", "2"}}})
	if m := ta.query("member", nil).Edges[0].Node; len(m["schema_versions"].([]any)) != 4 {
		t.Fatalf("member after a second mutate: %v", m)
	}
}

// TestAcceptanceAccess runs cases 17 and 18.
func TestAcceptanceAccess(t *testing.T) {
	ta := newTestAPI(t)
	anon := Requester{IDType: IDTypeAnonymous}
	other := Requester{IDType: IDTypeMember, ID: uuid.NewString(), ServiceID: addressBookSID}

	for class, want := range map[string]int{"public_assets": 200, "channels": 200,
		"network_assets": 403} {
		if code, _ := ta.call(anon, class, "query", nil); code != want {
			t.Fatalf("anonymous query of %s: %d, want %d", class, code, want)
		}
	}
	if code, _ := ta.call(anon, "public_assets", "append", map[string]any{
		"data": asset(0, time.Now())}); code != 403 {
		t.Fatalf("anonymous append: %d", code)
	}

	invite := map[string]any{"member_id": other.ID, "relation": "friend",
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
	if code, out := ta.call(other, "network_invites", "append",
		map[string]any{"data": invite}); code != 200 {
		t.Fatalf("another member's invite: %d %s", code, out)
	}
	if code, _ := ta.call(other, "network_invites", "query", nil); code != 403 {
		t.Fatalf("another member read the invites: %d", code)
	}
	if p := ta.query("network_invites", nil); p.TotalCount != 1 {
		t.Fatalf("the owner sees %d invites", p.TotalCount)
	}

	ta.ok("incoming_assets", "append", map[string]any{"data": asset(0, time.Now()),
		"origin_class_name": "network_assets"})
	if code, _ := ta.call(ta.owner, "network_invites", "append", map[string]any{
		"data": invite, "origin_class_name": "network_assets"}); code != 400 {
		t.Fatalf("origin_class_name on a class that is not cache-only: %d", code)
	}
	if code, _ := ta.call(other, "incoming_assets", "query", nil); code != 403 {
		t.Fatalf("another member read incoming_assets: %d", code)
	}
}

// TestAcceptanceUpdatesMessages runs case 15 on the broadcaster the
// websocket reads.
func TestAcceptanceUpdatesMessages(t *testing.T) {
	ta := newTestAPI(t)
	sub := ta.api.Changes.Subscribe("network_assets")
	defer sub.Close()

	a := asset(0, time.Now())
	ta.ok("network_assets", "append", map[string]any{"data": a})
	ch := <-sub.C
	if ch.Node["asset_id"] != a["asset_id"] || ch.OriginID != ta.owner.ID ||
		ch.OriginIDType != "members-" || ch.OriginClassName != nil || ch.Filter != nil {
		t.Fatalf("append message %+v", ch)
	}

	filter := map[string]any{"asset_id": eq("eq", a["asset_id"])}
	ta.ok("network_assets", "update", map[string]any{"filter": filter, "data": a})
	if ch := <-sub.C; ch.Filter == nil || ch.Action != "mutate" {
		t.Fatalf("update message %+v", ch)
	}
	ta.ok("network_assets", "delete", map[string]any{"filter": filter})
	if ch := <-sub.C; ch.Filter == nil || ch.Node != nil {
		t.Fatalf("delete message %+v", ch)
	}
}

// TestBadBodies sends bodies of the wrong shape to every action: each gets
// a 4xx with a detail, never a 500.
func TestBadBodies(t *testing.T) {
	ta := newTestAPI(t)
	bodies := []string{`{"filter": 5}`, `{"filter": []}`, `{"filter": {"asset_id": 5}}`,
		`{"fields": "x"}`, `{"fields": [5]}`, `{"first": "a"}`, `{"data": [1]}`,
		`{"data": "x"}`, `{"relations": 5}`, `{"depth": -1}`, `{"depth": 1.5}`,
		`{"query_id": "nope"}`, `{"after": 5}`, `[]`, `"x"`, `{"data": {"asset_id": 5}}`,
		`{"filter": {"created_timestamp": {"at": "not a time"}}}`, `{"signature_format_version": 2}`,
		`{"remote_member_id": "x", "depth": 1, "data": {}}`}
	for _, action := range []string{"query", "append", "update", "delete"} {
		for _, b := range bodies {
			req := httptest.NewRequest("POST", "/", strings.NewReader(b))
			rec := httptest.NewRecorder()
			if err := ta.api.Serve(rec, req, ta.owner, "network_assets", action); err != nil {
				api.WriteError(ta.api.Logger, rec, req, err)
			}
			want := 4
			switch {
			case action == "query" && strings.HasPrefix(b, `{"data"`):
				want = 2 // a query has no data; it is ignored
			case strings.HasPrefix(b, `{"remote_member_id"`) && action == "append":
				want = 5 // 501: this API has no network to reach the other pod
			}
			if rec.Code/100 != want || want == 4 && !strings.Contains(rec.Body.String(),
				`"detail"`) {
				t.Errorf("%s with %s: %d %s", action, b, rec.Code, rec.Body)
			}
		}
	}
}
