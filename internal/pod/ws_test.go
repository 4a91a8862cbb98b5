package pod

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// subscribe opens a websocket of the notes class on the pod and sends the
// subscription.
func (d *dataClient) subscribe(t *testing.T, action, token string, sub any,
) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(d.tp.httpsURL(fmt.Sprintf("/ws-api/v1/data/%d/notes/%s",
		notesSID, action)), "https://", "wss://", 1)
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}

	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: d.tp.client(nil, d.m.Name()), HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	data, _ := json.Marshal(sub)
	if err := conn.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatal(err)
	}
	return conn, resp, nil
}

func readJSON(t *testing.T, conn *websocket.Conn, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("reading from the websocket: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func TestWebsockets(t *testing.T) {
	n := startNet(t)
	a := newDataClient(t, startPod(t, n, newPodConfig(t, n, notesSID)))
	a.addNote(t, "before")

	updates, _, err := a.subscribe(t, "updates", a.token, map[string]any{
		"filter": map[string]any{"title": map[string]any{"glob": "wanted*"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer updates.CloseNow()
	counter, _, err := a.subscribe(t, "counter", a.token, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	defer counter.CloseNow()

	var count struct {
		Counter int64  `json:"counter"`
		QueryID string `json:"query_id"`
	}
	readJSON(t, counter, &count)
	if count.Counter != 1 || count.QueryID == "" {
		t.Fatalf("first counter message %+v", count)
	}

	// Subscriptions are in place once the counter answered; a change that
	// the filter drops and one it keeps.
	a.addNote(t, "unwanted")
	a.addNote(t, "wanted one")

	var upd struct {
		Node         map[string]any `json:"node"`
		Cursor       string         `json:"cursor"`
		OriginID     string         `json:"origin_id"`
		OriginIDType string         `json:"origin_id_type"`
	}
	readJSON(t, updates, &upd)
	if upd.Node["title"] != "wanted one" || upd.OriginID != a.m.MemberID ||
		upd.OriginIDType != "members-" || len(upd.Cursor) != 8 {
		t.Fatalf("update %+v", upd)
	}
	readJSON(t, counter, &count)
	if count.Counter != 2 {
		t.Fatalf("counter after an append: %d", count.Counter)
	}
	readJSON(t, counter, &count)
	if count.Counter != 3 {
		t.Fatalf("counter after a second append: %d", count.Counter)
	}

	// Anonymous subscribers and depth are refused.
	if _, resp, err := a.subscribe(t, "updates", "", map[string]any{}); err == nil ||
		resp == nil || resp.StatusCode != 403 {
		t.Fatalf("anonymous subscription: %v", err)
	}
	deep, _, err := a.subscribe(t, "updates", a.token, map[string]any{"depth": 1,
		"query_id": uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := deep.Read(ctx); websocket.CloseStatus(err) !=
		websocket.StatusPolicyViolation {
		t.Fatalf("a subscription with depth was not closed as a policy violation: %v", err)
	}
}
