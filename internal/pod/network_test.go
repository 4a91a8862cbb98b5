package pod

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/store"
)

// dataClient is a pod's member acting on its own Data API with a member
// token.
type dataClient struct {
	tp    *testPod
	m     *Membership
	token string
}

func newDataClient(t *testing.T, tp *testPod) *dataClient {
	t.Helper()
	m, _ := tp.pod.Membership(notesSID)
	return &dataClient{tp: tp, m: m, token: tp.login(map[string]any{
		"username": tp.cfg.Username, "password": accountPwd, "service_id": notesSID})}
}

func (d *dataClient) call(class, action string, body map[string]any) reply {
	url := d.tp.httpsURL(fmt.Sprintf("/api/v1/data/%d/%s/%s", notesSID, class, action))
	return d.tp.do(d.tp.client(nil, d.m.Name()), "POST", url, body, d.token)
}

func (d *dataClient) link(t *testing.T, to *dataClient, relation string) {
	t.Helper()
	want(t, d.call("network_links", "append", map[string]any{"data": map[string]any{
		"member_id": to.m.MemberID, "relation": relation,
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}}), 200, "link")
}

func (d *dataClient) addNote(t *testing.T, title string) {
	t.Helper()
	want(t, d.call("notes", "append", map[string]any{"data": map[string]any{
		"note_id": uuid.NewString(), "title": title,
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}}), 200, "add note")
}

type queryReply struct {
	TotalCount int `json:"total_count"`
	Edges      []struct {
		Origin string         `json:"origin"`
		Node   map[string]any `json:"node"`
	} `json:"edges"`
	Unanswered []string `json:"unanswered_peers"`
}

func (d *dataClient) query(t *testing.T, body map[string]any) queryReply {
	t.Helper()
	r := d.call("notes", "query", body)
	want(t, r, 200, "query")
	var q queryReply
	r.json(t, &q)
	return q
}

// origins counts the edges of q by origin.
func origins(q queryReply) map[string]int {
	out := map[string]int{}
	for _, e := range q.Edges {
		out[e.Origin]++
	}
	return out
}

// TestNetworkQueries runs depth-1 queries across three pods: A and B are
// linked both ways, C links to B but B does not link back, and A also
// links to a member whose pod does not exist.
func TestNetworkQueries(t *testing.T) {
	n := startNet(t)
	a := newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID)))
	b := newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID)))
	c := newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID)))

	a.link(t, b, "friend")
	b.link(t, a, "Friend")
	c.link(t, b, "friend")
	a.addNote(t, "a's note")
	b.addNote(t, "b's first")
	b.addNote(t, "b's second")

	q := a.query(t, map[string]any{"depth": 1, "query_id": uuid.NewString()})
	got := origins(q)
	if got[b.m.MemberID] != 2 || got[a.m.MemberID] != 1 || len(q.Unanswered) != 0 {
		t.Fatalf("A's depth-1 query: %+v", q)
	}

	// C is not in B's links: B refuses, and C learns that the result is
	// partial.
	q = c.query(t, map[string]any{"depth": 1, "query_id": uuid.NewString()})
	if origins(q)[b.m.MemberID] != 0 || len(q.Unanswered) != 1 ||
		q.Unanswered[0] != b.m.MemberID {
		t.Fatalf("C's depth-1 query: %+v", q)
	}

	// Only B, through remote_member_id; only friends, through relations.
	q = a.query(t, map[string]any{"depth": 1, "query_id": uuid.NewString(),
		"remote_member_id": b.m.MemberID})
	if got := origins(q); got[b.m.MemberID] != 2 || got[a.m.MemberID] != 0 {
		t.Fatalf("remote_member_id query: %+v", q)
	}
	q = a.query(t, map[string]any{"depth": 1, "query_id": uuid.NewString(),
		"relations": []string{"family"}})
	if got := origins(q); got[b.m.MemberID] != 0 || got[a.m.MemberID] != 1 {
		t.Fatalf("relations query: %+v", q)
	}

	// A peer that does not exist does not answer; the rest still does.
	ghost := uuid.NewString()
	want(t, a.call("network_links", "append", map[string]any{"data": map[string]any{
		"member_id": ghost, "relation": "friend",
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}}), 200, "ghost link")
	q = a.query(t, map[string]any{"depth": 1, "query_id": uuid.NewString()})
	if origins(q)[b.m.MemberID] != 2 || len(q.Unanswered) != 1 || q.Unanswered[0] != ghost {
		t.Fatalf("query with a missing peer: %+v", q)
	}

	// The contract's max_query_depth is 3; a repeated query id is refused.
	r := a.call("notes", "query", map[string]any{"depth": 4, "query_id": uuid.NewString()})
	want(t, r, 400, "depth above the maximum")
	if !strings.Contains(r.detail(), "more than the service allows") {
		t.Fatalf("detail %q", r.detail())
	}
	qid := uuid.NewString()
	a.query(t, map[string]any{"depth": 1, "query_id": qid})
	want(t, a.call("notes", "query", map[string]any{"depth": 1, "query_id": qid}), 400,
		"repeated query id")

	// Only the pod's own member may start a network query.
	peerCert := clientCert(c.m.tls)
	url := a.tp.podURL(fmt.Sprintf("/api/v1/data/%d/notes/query", notesSID))
	r = a.tp.do(a.tp.client(peerCert, a.m.Name()), "POST", url, map[string]any{
		"depth": 1, "query_id": uuid.NewString()}, "")
	if r.status/100 != 4 {
		t.Fatalf("another member started a network query: %d %s", r.status, r.body)
	}
}

// TestRemoteAppend appends to another pod's class as this pod's member.
func TestRemoteAppend(t *testing.T) {
	n := startNet(t)
	a := newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID)))
	b := newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID)))

	msg := map[string]any{"message_id": uuid.NewString(), "text": "hello",
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
	r := a.call("messages", "append", map[string]any{"data": msg, "depth": 1,
		"remote_member_id": b.m.MemberID})
	want(t, r, 200, "remote append")

	r = b.call("messages", "query", map[string]any{})
	var q queryReply
	r.json(t, &q)
	if q.TotalCount != 1 || q.Edges[0].Node["text"] != "hello" {
		t.Fatalf("B's messages: %s", r.body)
	}
	// The row on B records A's member as who wrote it.
	page, err := b.m.Store.Query(context.Background(), "messages", store.QueryOptions{})
	if err != nil || len(page.Edges) != 1 || page.Edges[0].Origin.ID != a.m.MemberID ||
		page.Edges[0].Origin.IDType != "members-" {
		t.Fatalf("B's stored message: %+v, %v", page, err)
	}

	r = a.call("messages", "query", map[string]any{})
	r.json(t, &q)
	if q.TotalCount != 0 {
		t.Fatalf("the remote append also landed locally: %s", r.body)
	}

	// B's notes take appends from B's member only: the remote pod refuses.
	r = a.call("notes", "append", map[string]any{"data": map[string]any{
		"note_id": uuid.NewString(), "created_timestamp": time.Now().UTC().Format(
			time.RFC3339Nano)}, "depth": 1, "remote_member_id": b.m.MemberID})
	want(t, r, 502, "remote append the other pod's rules do not allow")
	if !strings.Contains(r.detail(), "may not append notes") {
		t.Fatalf("detail %q does not pass on the other pod's reason", r.detail())
	}

	want(t, a.call("messages", "append", map[string]any{"data": msg, "depth": 2,
		"remote_member_id": b.m.MemberID}), 400, "remote append with depth 2")
}

// TestNetworkQueryLoop sends a depth-3 query around a triangle of pods that
// all link to each other: every pod's notes come back exactly once, and the
// query ends.
func TestNetworkQueryLoop(t *testing.T) {
	n := startNet(t)
	pods := []*dataClient{
		newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID))),
		newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID))),
		newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID))),
	}
	for i, p := range pods {
		for j, q := range pods {
			if i != j {
				p.link(t, q, "friend")
			}
		}
		for k := 0; k <= i; k++ {
			p.addNote(t, fmt.Sprintf("note %d of pod %d", k, i))
		}
	}

	q := pods[0].query(t, map[string]any{"depth": 3, "query_id": uuid.NewString(),
		"first": 100})
	got := origins(q)
	for i, p := range pods {
		if got[p.m.MemberID] != i+1 {
			t.Fatalf("pod %d's notes came back %d times, want %d: %+v", i,
				got[p.m.MemberID], i+1, q)
		}
	}
}
