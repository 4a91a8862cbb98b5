package dataapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/store"
)

// Websocket limits.
const (
	firstMessageTimeout = 10 * time.Second
	maxFirstMessage     = 64 << 10
	writeTimeout        = 10 * time.Second
)

// subscribeRequest is the first message of a websocket subscription.
type subscribeRequest struct {
	Filter    json.RawMessage `json:"filter"`
	QueryID   string          `json:"query_id"`
	Depth     int             `json:"depth"`
	Relations []string        `json:"relations"`
}

// counterMessage is what the counter websocket sends.
type counterMessage struct {
	Cursor  string `json:"cursor"`
	Origin  string `json:"origin"`
	QueryID string `json:"query_id"`
	Counter int64  `json:"counter"`
}

// ServeWebsocket answers the updates and counter websockets of an array
// class: after one JSON message with the subscription, it streams the
// class's changes, or its counter, until the client leaves.
func (a *API) ServeWebsocket(w http.ResponseWriter, r *http.Request, who Requester, class,
	action string) error {
	cl, ok := a.Store.Contract().Class(class)
	if !ok {
		return api.Errorf(http.StatusNotFound, "service %d has no data class %q", a.ServiceID,
			class)
	}
	if (action != "updates" && action != "counter") || cl.Kind != contract.ArrayClass {
		return api.Errorf(http.StatusNotFound, "%s is not an action of %s, a %v class", action,
			class, cl.Kind)
	}
	// Only subscribers the class allows get as far as the upgrade.
	if err := a.authorize(r.Context(), who, cl, contract.PermissionSubscribe, 0); err != nil {
		return err
	}

	// Subscribing before the upgrade means that every change made after the
	// client's handshake returned reaches it.
	changes := a.Changes.Subscribe(class)
	defer changes.Close()

	// A subscription outlives the server's request deadlines.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Pods are reached by name from any origin; credentials decide.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil // Accept has answered the client.
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxFirstMessage)

	sub, f, err := a.readSubscription(r.Context(), conn, cl)
	if err != nil {
		conn.Close(websocket.StatusPolicyViolation, err.Error())
		return nil
	}
	a.log(r.Context(), who, action, class, request{QueryID: sub.QueryID, Filter: sub.Filter})

	// The client sends nothing more; reading notices when it leaves.
	ctx := conn.CloseRead(r.Context())

	if action == "updates" {
		a.streamUpdates(ctx, conn, changes, f, sub.QueryID)
	} else {
		a.streamCounter(ctx, conn, changes, cl, f, sub.QueryID)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return nil
}

func (a *API) readSubscription(ctx context.Context, conn *websocket.Conn, cl *contract.Class,
) (subscribeRequest, store.Filter, error) {
	var sub subscribeRequest
	ctx, cancel := context.WithTimeout(ctx, firstMessageTimeout)
	defer cancel()

	_, data, err := conn.Read(ctx)
	if err != nil {
		return sub, store.Filter{}, fmt.Errorf("no subscription message")
	}
	if err := json.Unmarshal(data, &sub); err != nil {
		return sub, store.Filter{}, fmt.Errorf("the subscription is not a JSON object")
	}
	if sub.Depth != 0 || len(sub.Relations) > 0 {
		return sub, store.Filter{}, fmt.Errorf("subscriptions to other pods are not offered")
	}
	if sub.QueryID == "" {
		sub.QueryID = uuid.NewString()
	}
	if string(sub.Filter) == "null" {
		sub.Filter = nil
	}
	f, err := store.ParseFilter(cl, sub.Filter)
	if err != nil {
		return sub, store.Filter{}, err
	}
	return sub, f, nil
}

// streamUpdates sends every change that matches f until ctx ends or the
// subscriber falls too far behind.
func (a *API) streamUpdates(ctx context.Context, conn *websocket.Conn, sub *Subscription,
	f store.Filter, queryID string) {
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-sub.C:
			if !ok {
				conn.Close(websocket.StatusTryAgainLater, "too slow to keep up")
				return
			}
			if ch.Node != nil && !f.Empty() && !f.Match(store.Record(ch.Node)) {
				continue
			}
			ch.QueryID = queryID
			if err := a.send(ctx, conn, ch); err != nil {
				return
			}
		}
	}
}

// streamCounter sends the counter of f at once and again whenever an
// append or delete changes it.
func (a *API) streamCounter(ctx context.Context, conn *websocket.Conn, sub *Subscription,
	cl *contract.Class, f store.Filter, queryID string) {
	last := int64(-1)
	send := func() bool {
		n, err := a.Store.Counter(ctx, cl.Name, f)
		if err != nil {
			conn.Close(websocket.StatusPolicyViolation, err.Error())
			return false
		}
		if n == last {
			return true
		}
		last = n
		return a.send(ctx, conn, counterMessage{Origin: a.MemberID, QueryID: queryID,
			Counter: n}) == nil
	}

	if !send() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-sub.C:
			if !ok {
				conn.Close(websocket.StatusTryAgainLater, "too slow to keep up")
				return
			}
			if ch.Action == "mutate" {
				continue
			}
			if !send() {
				return
			}
		}
	}
}

func (a *API) send(ctx context.Context, conn *websocket.Conn, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, data)
}
