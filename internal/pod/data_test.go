package pod

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestDataAPI exercises the Data API of a membership through the pod's
// ports: the owner with a member token, another member with its
// certificate before and after a network link, and anonymous requests.
func TestDataAPI(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	peer := startPod(t, n, newPodConfig(t, n, notesSID))
	owner := tp.login(map[string]any{"username": tp.cfg.Username, "password": accountPwd,
		"service_id": notesSID})
	m, _ := tp.pod.Membership(notesSID)
	peerM, _ := peer.pod.Membership(notesSID)

	c := tp.client(nil, m.Name())
	data := func(class, action string) string {
		return tp.httpsURL(fmt.Sprintf("/api/v1/data/%d/%s/%s", notesSID, class, action))
	}
	note := map[string]any{"note_id": uuid.NewString(),
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano), "title": "first"}

	r := tp.do(c, "POST", data("notes", "append"), map[string]any{"data": note}, owner)
	want(t, r, 200, "append")
	if strings.TrimSpace(string(r.body)) != "1" {
		t.Fatalf("append answered %s", r.body)
	}

	r = tp.do(c, "POST", data("notes", "query"), map[string]any{}, owner)
	want(t, r, 200, "query")
	var page struct {
		TotalCount int `json:"total_count"`
		Edges      []struct {
			Cursor string         `json:"cursor"`
			Origin string         `json:"origin"`
			Node   map[string]any `json:"node"`
		} `json:"edges"`
	}
	r.json(t, &page)
	if page.TotalCount != 1 || page.Edges[0].Origin != m.MemberID ||
		page.Edges[0].Node["title"] != "first" || len(page.Edges[0].Cursor) != 8 {
		t.Fatalf("query answered %s", r.body)
	}

	// Anonymous and unlinked members are refused; a linked member reads.
	want(t, tp.do(c, "POST", data("notes", "query"), nil, ""), 403, "anonymous query")
	peerCert := clientCert(peerM.tls)
	pc := tp.client(peerCert, m.Name())
	want(t, tp.do(pc, "POST", tp.podURL(fmt.Sprintf("/api/v1/data/%d/notes/query",
		notesSID)), map[string]any{}, ""), 403, "unlinked member query")

	link := map[string]any{"member_id": peerM.MemberID, "relation": "friend",
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
	want(t, tp.do(c, "POST", data("network_links", "append"), map[string]any{"data": link},
		owner), 200, "append network link")
	r = tp.do(pc, "POST", tp.podURL(fmt.Sprintf("/api/v1/data/%d/notes/query", notesSID)),
		map[string]any{}, "")
	want(t, r, 200, "linked member query")
	want(t, tp.do(pc, "POST", tp.podURL(fmt.Sprintf("/api/v1/data/%d/notes/append",
		notesSID)), map[string]any{"data": note}, ""), 403, "linked member append")

	tests := []struct {
		name   string
		url    string
		body   any
		status int
		detail string
	}{
		{"unknown class", data("nothing", "query"), nil, 404, "no data class"},
		{"mutate on an array", data("notes", "mutate"), map[string]any{"data": note}, 404,
			"not an action"},
		{"delete on an object", data("member", "delete"), map[string]any{}, 404,
			"not an action"},
		{"unknown action", data("notes", "drop"), nil, 404, "not an action"},
		{"delete without filter", data("notes", "delete"), map[string]any{}, 422, "filter"},
		{"delete with empty filter", data("notes", "delete"),
			map[string]any{"filter": map[string]any{}}, 400, "at least one condition"},
		{"filter on an unknown field", data("notes", "query"),
			map[string]any{"filter": map[string]any{"nope": map[string]any{"eq": "x"}}}, 400,
			"nope"},
		{"operator of another type", data("notes", "query"),
			map[string]any{"filter": map[string]any{"note_id": map[string]any{"glob": "x"}}},
			400, "glob"},
		{"negative first", data("notes", "query"), map[string]any{"first": -1}, 422,
			"negative"},
		{"bad cursor", data("notes", "query"), map[string]any{"after": "x"}, 422, "cursor"},
		{"missing required field", data("notes", "append"),
			map[string]any{"data": map[string]any{"title": "x"}}, 422, "note_id"},
		{"malformed JSON", data("notes", "append"), "{", 400, "JSON"},
		{"depth without query id", data("notes", "query"), map[string]any{"depth": 1}, 400,
			"query_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tp.do(c, "POST", tt.url, tt.body, owner)
			want(t, r, tt.status, tt.name)
			if !strings.Contains(r.detail(), tt.detail) {
				t.Fatalf("detail %q does not mention %q", r.detail(), tt.detail)
			}
		})
	}

	// Update and delete by filter; a repeated query id is refused.
	filter := map[string]any{"note_id": map[string]any{"eq": note["note_id"]}}
	r = tp.do(c, "POST", data("notes", "update"), map[string]any{"filter": filter,
		"data": map[string]any{"note_id": note["note_id"],
			"created_timestamp": note["created_timestamp"], "title": "changed"}}, owner)
	want(t, r, 200, "update")
	qid := uuid.NewString()
	want(t, tp.do(c, "POST", data("notes", "query"), map[string]any{"query_id": qid}, owner),
		200, "query with an id")
	want(t, tp.do(c, "POST", data("notes", "query"), map[string]any{"query_id": qid}, owner),
		400, "repeated query id")
	r = tp.do(c, "POST", data("notes", "delete"), map[string]any{"filter": filter}, owner)
	want(t, r, 200, "delete")
	if strings.TrimSpace(string(r.body)) != "1" {
		t.Fatalf("delete answered %s", r.body)
	}

	// Every call left a datalog entry.
	if err := m.API.WaitDatalogs(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = tp.do(c, "POST", data("datalogs", "query"), map[string]any{"first": 100}, owner)
	want(t, r, 200, "datalogs")
	r.json(t, &page)
	if page.TotalCount < 5 {
		t.Fatalf("%d datalog entries", page.TotalCount)
	}
}
