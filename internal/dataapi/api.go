package dataapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/store"
)

// MaxBody is the largest Data API request body.
const MaxBody = 1 << 20

// Id types of requesters as the wire writes them.
const (
	IDTypeMember    = "members-"
	IDTypeService   = "service-"
	IDTypeAnonymous = "anonymous"
)

// Requester is who sent a Data API request, as the pod authenticated it.
type Requester struct {
	// IDType is IDTypeMember, IDTypeService or IDTypeAnonymous.
	IDType string

	// ID is the member id, or the service id for the service; empty for
	// anonymous requesters.
	ID string

	// ServiceID is the service the credential belongs to.
	ServiceID uint32

	// Addr is where the request came from.
	Addr netip.Addr
}

// API serves the Data API of one membership.
type API struct {
	// ServiceID and MemberID are the membership's.
	ServiceID uint32
	MemberID  string

	// Store holds the membership's data.
	Store *store.Store

	// Changes carries appends, updates and deletes to subscribers.
	Changes *Broadcaster

	// Net reaches the other pods of the network; nil refuses network
	// queries and remote appends.
	Net *Network

	// Logger receives diagnostics [discard].
	Logger *slog.Logger

	queries *queryLog

	datalog   chan store.Record
	writers   sync.WaitGroup
	dropped   atomic.Int64
	pending   atomic.Int64
	closeOnce sync.Once
}

// Datalog writing: queued entries, the workers that write them, the most
// entries a worker appends in one write, and how long it waits for company
// for an entry. An entry costs the store less in a write of many: its
// rows share pages, of the table and of its many indexes, and the pages a
// commit writes to the log are most of what a commit costs. Nobody waits
// for an entry to be written, so waiting a little for more costs nothing.
const (
	datalogQueue   = 4096
	datalogWriters = 2
	datalogBatch   = 64
	datalogLinger  = 10 * time.Millisecond
)

// New returns the API of a membership; Close stops its background work.
func New(sid uint32, memberID string, st *store.Store, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{ServiceID: sid, MemberID: memberID, Store: st,
		Changes: NewBroadcaster(0), Logger: logger, queries: newQueryLog(),
		datalog: make(chan store.Record, datalogQueue)}
	a.writers.Add(datalogWriters)
	for range datalogWriters {
		go a.writeDatalogs()
	}
	return a
}

// request is the body of every Data API action; each uses its part.
type request struct {
	QueryID                string          `json:"query_id"`
	Filter                 json.RawMessage `json:"filter"`
	First                  *int            `json:"first"`
	After                  string          `json:"after"`
	Fields                 []string        `json:"fields"`
	Depth                  int             `json:"depth"`
	Relations              []string        `json:"relations"`
	RemoteMemberID         string          `json:"remote_member_id"`
	Timestamp              string          `json:"timestamp"`
	OriginMemberID         string          `json:"origin_member_id"`
	OriginSignature        string          `json:"origin_signature"`
	SignatureFormatVersion *int            `json:"signature_format_version"`
	OriginClassName        string          `json:"origin_class_name"`
	Data                   json.RawMessage `json:"data"`
}

// actions maps each action to the kind of class it applies to and the
// permission it needs.
var actions = map[string]struct {
	kind contract.ClassKind
	perm contract.Permission
}{
	"mutate": {contract.ObjectClass, contract.PermissionUpdate},
	"append": {contract.ArrayClass, contract.PermissionAppend},
	"update": {contract.ArrayClass, contract.PermissionUpdate},
	"delete": {contract.ArrayClass, contract.PermissionDelete},
}

// Serve answers one Data API request for class and action by who.
func (a *API) Serve(w http.ResponseWriter, r *http.Request, who Requester, class,
	action string) error {
	cl, ok := a.Store.Contract().Class(class)
	if !ok {
		return api.Errorf(http.StatusNotFound, "service %d has no data class %q", a.ServiceID,
			class)
	}
	perm := contract.PermissionRead
	if action != "query" {
		spec, ok := actions[action]
		if !ok || spec.kind != cl.Kind {
			return api.Errorf(http.StatusNotFound, "%s is not an action of %s, a %v class",
				action, class, cl.Kind)
		}
		perm = spec.perm
	}

	req, err := readRequest(w, r, action)
	if err != nil {
		return err
	}
	// A mutate never reaches other pods: its rights are checked at depth 0.
	depth := req.Depth
	if action == "mutate" {
		depth = 0
	}
	if err := a.authorize(r.Context(), who, cl, perm, depth); err != nil {
		return err
	}
	// This membership named as the remote one is a local request.
	if req.RemoteMemberID == a.MemberID {
		req.RemoteMemberID, req.Depth = "", 0
	}
	remote := req.RemoteMemberID != ""
	if err := a.checkReach(action, req, remote); err != nil {
		return err
	}
	if action == "query" && req.Depth > 0 {
		if err := a.queryOrigin(r.Context(), who, &req); err != nil {
			return err
		}
	}

	var result any
	switch action {
	case "query":
		result, err = a.query(r.Context(), cl, req, who)
	case "mutate":
		result, err = a.mutate(r.Context(), cl, req, who)
	case "append":
		if remote {
			result, err = a.remoteAppend(r.Context(), class, req)
			break
		}
		result, err = a.append(r.Context(), cl, req, who)
	case "update":
		result, err = a.update(r.Context(), cl, req, who)
	case "delete":
		result, err = a.delete(r.Context(), cl, req, who)
	}
	if err != nil {
		return storeError(err)
	}

	a.log(r.Context(), who, action, class, req)
	if resp, ok := result.(*queryResponse); ok {
		writeQueryResponse(w, cl.Record(), resp)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, result)
	return nil
}

// checkReach checks depth and remote_member_id against the action: only
// queries and appends reach other pods, and only with a network to do it.
func (a *API) checkReach(action string, req request, remote bool) error {
	switch {
	case action == "query" && req.Depth == 0:
		return nil
	case action == "query" || (action == "append" && remote):
		if a.Net == nil {
			return api.Errorf(http.StatusNotImplemented,
				"this pod does not reach other pods for this service")
		}
		return nil
	case req.Depth != 0:
		return api.Errorf(http.StatusBadRequest, "depth must be 0 for a local %s", action)
	case remote:
		return api.Errorf(http.StatusBadRequest, "%s does not reach other pods", action)
	}
	return nil
}

// readRequest reads and checks a request body; query allows an empty one.
func readRequest(w http.ResponseWriter, r *http.Request, action string) (request, error) {
	var req request
	body, err := api.ReadBody(w, r, MaxBody)
	if err != nil {
		return req, err
	}
	if len(bytes.TrimSpace(body)) == 0 && action == "query" {
		return req, nil
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, api.Errorf(http.StatusBadRequest, "malformed JSON body: %v",
			jsonError(err))
	}

	switch {
	case req.First != nil && *req.First < 0:
		return req, api.Errorf(http.StatusUnprocessableEntity, "first must not be negative")
	case req.Depth < 0:
		return req, api.Errorf(http.StatusUnprocessableEntity, "depth must not be negative")
	case req.After != "" && len(req.After) != store.CursorLength:
		return req, api.Errorf(http.StatusUnprocessableEntity,
			"after must be a cursor of %d characters", store.CursorLength)
	case req.SignatureFormatVersion != nil && *req.SignatureFormatVersion != 1:
		return req, api.Errorf(http.StatusUnprocessableEntity,
			"signature_format_version must be 1")
	case req.QueryID != "" && uuid.Validate(req.QueryID) != nil:
		return req, api.Errorf(http.StatusUnprocessableEntity, "query_id must be a UUID")
	case action == "query" && req.Depth > 0 && req.QueryID == "":
		return req, api.Errorf(http.StatusBadRequest, "a query with depth needs a query_id")
	}
	if string(req.Filter) == "null" {
		req.Filter = nil
	}
	return req, nil
}

// jsonError describes a decoding error without echoing the body.
func jsonError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	}
	return "not a JSON object"
}

// authorize is the data firewall: it checks who against the class's access
// rules for perm at depth.
func (a *API) authorize(ctx context.Context, who Requester, cl *contract.Class,
	perm contract.Permission, depth int) error {
	if who.IDType != IDTypeAnonymous && who.ServiceID != a.ServiceID {
		return api.Errorf(http.StatusForbidden,
			"the credential is for service %d, not %d", who.ServiceID, a.ServiceID)
	}

	req := contract.Requester{
		Member:  who.IDType == IDTypeMember,
		Owner:   who.IDType == IDTypeMember && who.ID == a.MemberID,
		Service: who.IDType == IDTypeService,
	}
	if req.Member && !req.Owner {
		links, err := a.linkRelations(ctx, who.ID)
		if err != nil {
			return err
		}
		req.Links = links
	}

	if !cl.Access.Allows(req, perm, depth) {
		return api.Errorf(http.StatusForbidden, "%s may not %s %s", describe(who), perm,
			cl.Name)
	}
	return nil
}

func describe(who Requester) string {
	switch who.IDType {
	case IDTypeMember:
		return "member " + who.ID
	case IDTypeService:
		return "the service"
	}
	return "an anonymous requester"
}

// linkRelations returns the relations of this membership's network links
// with member id.
func (a *API) linkRelations(ctx context.Context, id string) ([]string, error) {
	links, err := a.links(ctx, id)
	if err != nil {
		return nil, err
	}
	rels := make([]string, len(links))
	for i, l := range links {
		rels[i] = l.relation
	}
	return rels, nil
}

// storeError maps store errors to statuses; others stay internal.
func storeError(err error) error {
	for _, m := range []struct {
		err    error
		status int
	}{
		{store.ErrUnknownClass, http.StatusNotFound},
		{store.ErrWrongKind, http.StatusNotFound},
		{store.ErrInvalidRecord, http.StatusUnprocessableEntity},
		{store.ErrInvalidFilter, http.StatusBadRequest},
		{store.ErrBadCursor, http.StatusUnprocessableEntity},
		{store.ErrInvalidPageSize, http.StatusUnprocessableEntity},
		{store.ErrInvalidFields, http.StatusBadRequest},
		{store.ErrNotCacheOnly, http.StatusBadRequest},
		{errDuplicateQuery, http.StatusBadRequest},
		{store.ErrClosed, http.StatusServiceUnavailable},
	} {
		if errors.Is(err, m.err) {
			return api.Wrap(m.status, err, err.Error())
		}
	}
	var e *api.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("data api: %w", err)
}
