package dataapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/store"
)

// Query ids are remembered this long, and at most this many.
const (
	queryIDLifetime = 72 * time.Hour
	maxQueryIDs     = 100_000
)

var errDuplicateQuery = errors.New("duplicate query id")

// queryLog remembers the query ids a membership has served, so that a query
// that comes back around a loop of network links is refused.
type queryLog struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	order []string
}

func newQueryLog() *queryLog { return &queryLog{seen: map[string]time.Time{}} }

// add records id, or fails when it was seen within queryIDLifetime.
func (l *queryLog) add(id string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()

	if t, ok := l.seen[id]; ok && now.Sub(t) < queryIDLifetime {
		return fmt.Errorf("%w: %s", errDuplicateQuery, id)
	}
	for len(l.order) > 0 && (len(l.order) >= maxQueryIDs ||
		now.Sub(l.seen[l.order[0]]) >= queryIDLifetime) {
		delete(l.seen, l.order[0])
		l.order = l.order[1:]
	}
	l.seen[id] = now
	l.order = append(l.order, id)
	return nil
}

// queryEdge is one edge of a query response. An edge read from the local
// store holds its node as values, in the order of its class's fields,
// which writeQueryResponse writes as the node.
type queryEdge struct {
	Cursor    string       `json:"cursor"`
	Origin    string       `json:"origin"`
	Node      store.Record `json:"node"`
	ExpiresAt *string      `json:"expires_at"`

	// json is the node of a local record as the store encoded it; Node
	// is then nil.
	json []byte
}

// queryResponse is the reference's answer to a query.
type queryResponse struct {
	TotalCount int         `json:"total_count"`
	Edges      []queryEdge `json:"edges"`
	PageInfo   struct {
		HasNextPage bool    `json:"has_next_page"`
		EndCursor   *string `json:"end_cursor"`
	} `json:"page_info"`

	// Unanswered lists the pods of a network query that did not answer in
	// time, so that a client knows the result is partial.
	Unanswered []string `json:"unanswered_peers,omitempty"`
}

func (a *API) filter(cl *contract.Class, raw json.RawMessage) (store.Filter, error) {
	return store.ParseFilter(cl, raw)
}

func (a *API) query(ctx context.Context, cl *contract.Class, req request, who Requester,
) (any, error) {
	if req.QueryID != "" {
		if err := a.queries.add(req.QueryID, time.Now()); err != nil {
			return nil, err
		}
	}
	f, err := a.filter(cl, req.Filter)
	if err != nil {
		return nil, err
	}
	first := store.DefaultPageSize
	if req.First != nil && *req.First > 0 {
		first = min(*req.First, store.MaxPageSize)
	}

	resp := &queryResponse{Edges: []queryEdge{}}
	if req.Depth > 0 {
		targets, err := a.targets(ctx, req, who.ID)
		if err != nil {
			return nil, err
		}
		resp.Edges, resp.Unanswered = a.fanOut(ctx, cl.Name, req, targets)
	}

	more := false
	if req.Depth == 0 || req.RemoteMemberID == "" {
		page, err := a.Store.Query(ctx, cl.Name, store.QueryOptions{Filter: f,
			After: req.After, Fields: req.Fields, First: first, JSON: true})
		if err != nil {
			return nil, err
		}
		resp.Edges = slices.Grow(resp.Edges, len(page.Edges))
		for _, e := range page.Edges {
			resp.Edges = append(resp.Edges, a.localEdge(e))
		}
		more = page.HasNextPage
	}

	if len(resp.Edges) > first {
		resp.Edges, more = resp.Edges[:first], true
	}
	resp.TotalCount = len(resp.Edges)
	resp.PageInfo.HasNextPage = more
	if n := len(resp.Edges); n > 0 {
		resp.PageInfo.EndCursor = &resp.Edges[n-1].Cursor
	}
	return resp, nil
}

func (a *API) localEdge(e store.Edge) queryEdge {
	qe := queryEdge{Cursor: e.Cursor, Origin: a.MemberID, json: e.JSON}
	if !e.Expires.IsZero() {
		s := e.Expires.UTC().Format(time.RFC3339Nano)
		qe.ExpiresAt = &s
	}
	return qe
}

// record decodes the data of a write.
func record(raw json.RawMessage) (store.Record, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, api.Errorf(http.StatusUnprocessableEntity, "field \"data\" is required")
	}
	var r store.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, api.Errorf(http.StatusUnprocessableEntity,
			"field \"data\" must be a JSON object")
	}
	return r, nil
}

func origin(who Requester) store.Origin {
	return store.Origin{ID: who.ID, IDType: who.IDType}
}

func (a *API) mutate(ctx context.Context, cl *contract.Class, req request, who Requester,
) (any, error) {
	r, err := record(req.Data)
	if err != nil {
		return nil, err
	}
	return a.Store.Mutate(ctx, cl.Name, r, origin(who))
}

func (a *API) append(ctx context.Context, cl *contract.Class, req request, who Requester,
) (any, error) {
	r, err := record(req.Data)
	if err != nil {
		return nil, err
	}
	o := origin(who)
	if req.OriginClassName != "" {
		if who.IDType != IDTypeMember || who.ID != a.MemberID {
			return nil, api.Errorf(http.StatusBadRequest,
				"only this pod's member may give origin_class_name")
		}
		o.ClassName = req.OriginClassName
	}

	edge, err := a.Store.Append(ctx, cl.Name, r, o)
	if err != nil {
		return nil, err
	}
	ch := Change{Class: cl.Name, Action: "append", Node: edge.Node, Cursor: edge.Cursor,
		OriginID: who.ID, OriginIDType: who.IDType}
	if o.ClassName != "" {
		ch.OriginClassName = &o.ClassName
	}
	a.Changes.Publish(ch)
	return 1, nil
}

func (a *API) update(ctx context.Context, cl *contract.Class, req request, who Requester,
) (any, error) {
	f, err := a.requiredFilter(cl, req)
	if err != nil {
		return nil, err
	}
	r, err := record(req.Data)
	if err != nil {
		return nil, err
	}

	n, set, err := a.Store.Update(ctx, cl.Name, f, r, origin(who))
	if err != nil {
		return nil, err
	}
	if n > 0 {
		text := f.String()
		a.Changes.Publish(Change{Class: cl.Name, Action: "mutate", Node: set,
			Filter: &text, OriginID: who.ID, OriginIDType: who.IDType})
	}
	return n, nil
}

func (a *API) delete(ctx context.Context, cl *contract.Class, req request, who Requester,
) (any, error) {
	f, err := a.requiredFilter(cl, req)
	if err != nil {
		return nil, err
	}

	n, err := a.Store.Delete(ctx, cl.Name, f)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		text := f.String()
		a.Changes.Publish(Change{Class: cl.Name, Action: "delete", Filter: &text,
			OriginID: who.ID, OriginIDType: who.IDType})
	}
	return n, nil
}

// requiredFilter parses the filter update and delete must have.
func (a *API) requiredFilter(cl *contract.Class, req request) (store.Filter, error) {
	if len(req.Filter) == 0 {
		return store.Filter{}, api.Errorf(http.StatusUnprocessableEntity,
			"field \"filter\" is required")
	}
	f, err := a.filter(cl, req.Filter)
	if err != nil {
		return store.Filter{}, err
	}
	if f.Empty() {
		return store.Filter{}, store.ErrEmptyFilter
	}
	return f, nil
}

// log queues the datalog entry of a call. Entries are written by
// background workers, so that a query does not wait for a durable write of
// its log line; when the queue is full, entries are dropped and counted.
func (a *API) log(ctx context.Context, who Requester, action, class string, req request) {
	if _, ok := a.Store.Contract().Class("datalogs"); !ok {
		return
	}

	entry := store.Record{
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"remote_addr":       who.Addr.String(),
		"operation":         action,
		"object":            class,
		"remote_id_type":    strings.TrimRight(who.IDType, "s-"),
		"source":            "REST Data",
	}
	if who.ID != "" {
		entry["remote_id"] = who.ID
	}
	if req.QueryID != "" {
		entry["query_id"] = req.QueryID
	}
	if len(req.Filter) > 0 {
		entry["query_filters"] = string(req.Filter)
	}
	if req.Depth > 0 {
		entry["query_depth"] = req.Depth
	}
	if len(req.Relations) > 0 {
		entry["query_relations"] = strings.Join(req.Relations, ", ")
	}
	if action == "query" {
		entry["source"] = "REST DATA API"
	}

	a.pending.Add(1)
	select {
	case a.datalog <- entry:
	default:
		a.pending.Add(-1)
		a.dropped.Add(1)
	}
}

// writeDatalogs writes queued datalog entries until the queue is closed:
// the entry it waited for and those that come within datalogLinger after
// it, up to datalogBatch, in one write.
func (a *API) writeDatalogs() {
	defer a.writers.Done()
	batch := make([]store.Record, 0, datalogBatch)
	linger := time.NewTimer(0)
	for entry := range a.datalog {
		batch = append(batch[:0], entry)
		linger.Reset(datalogLinger)
	collect:
		for len(batch) < datalogBatch {
			select {
			case next, ok := <-a.datalog:
				if !ok {
					break collect
				}
				batch = append(batch, next)
			case <-linger.C:
				break collect
			}
		}
		linger.Stop()
		a.appendDatalogs(batch)
		a.pending.Add(-int64(len(batch)))
	}
}

// appendDatalogs appends entries to the datalogs. Should they fail
// together, each is tried alone, so that one bad entry loses no other.
func (a *API) appendDatalogs(entries []store.Record) {
	ctx := context.Background()
	o := store.Origin{ID: a.MemberID, IDType: IDTypeMember}
	if len(entries) > 1 {
		if _, err := a.Store.AppendMany(ctx, "datalogs", entries, o); err == nil {
			return
		}
	}
	for _, entry := range entries {
		if _, err := a.Store.Append(ctx, "datalogs", entry, o); err != nil {
			a.Logger.Warn("writing a datalog entry failed", "service_id", a.ServiceID,
				"err", err)
		}
	}
}

// WaitDatalogs waits, at most until ctx ends, until every queued datalog
// entry is written.
func (a *API) WaitDatalogs(ctx context.Context) error {
	for a.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// Close writes the datalog entries still queued and stops the workers;
// the API must not serve afterwards.
func (a *API) Close() {
	a.closeOnce.Do(func() {
		close(a.datalog)
		a.writers.Wait()
		if n := a.dropped.Load(); n > 0 {
			a.Logger.Warn("datalog entries dropped under load", "service_id", a.ServiceID,
				"entries", n)
		}
	})
}

// DroppedDatalogs returns how many datalog entries were dropped because
// the queue was full.
func (a *API) DroppedDatalogs() int64 { return a.dropped.Load() }
