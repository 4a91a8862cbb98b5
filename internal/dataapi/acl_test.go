package dataapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/dataapi"
	"github.com/byoda/byoda-go/internal/store"
)

// addressBookPath is the address book contract, kept beside the repository
// with the rest of the shared test data.
var addressBookPath = filepath.Join("..", "..", "..", "shared", "testdata", "contracts",
	"addressbook.json")

// readAddressBook returns the address book contract's JSON. Outside CI a
// checkout without the shared test data skips; under CI it fails.
func readAddressBook(tb testing.TB) []byte {
	tb.Helper()
	doc, err := os.ReadFile(addressBookPath)
	if err == nil {
		return doc
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("reading the address book contract: %v", err)
	}
	tb.Skipf("the address book contract is not beside the repository: %v", err)
	return nil
}

// openAPI opens a store in a fresh directory for the contract doc and
// returns the Data API of owner's membership over it, with no network.
func openAPI(tb testing.TB, doc []byte, owner string) (*dataapi.API, *store.Store) {
	tb.Helper()
	c, err := contract.Parse(doc)
	if err != nil {
		tb.Fatalf("parsing the address book contract: %v", err)
	}
	st, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "data.db"), c, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return dataapi.New(c.ServiceID, owner, st, nil), st
}

// aclRule is one permission of a class's #accesscontrol, read from the
// contract's JSON.
type aclRule struct {
	entity    string
	perm      string
	distance  int
	relations []string // lower case; empty means any relation
}

// aclEvaluator is the test's own reading of §2 of the Data API spec: it
// decides from the contract's JSON what a requester may do, and shares no
// code with the contract package's AccessControl.
type aclEvaluator struct {
	serviceID uint32
	ownerID   string
	rules     map[string][]aclRule // by class
	links     map[string][]string  // member id to the relations of its links
}

// allows reports whether who may have perm on class at the request depth.
func (e *aclEvaluator) allows(class string, who dataapi.Requester, perm string,
	depth int) bool {
	if who.IDType != dataapi.IDTypeAnonymous && who.ServiceID != e.serviceID {
		return false
	}
	for _, r := range e.rules[class] {
		if r.perm == perm && e.grants(r, who, depth) {
			return true
		}
	}
	// The default rule: the pod's own member may read.
	return perm == "read" && e.isOwner(who)
}

func (e *aclEvaluator) isOwner(who dataapi.Requester) bool {
	return who.IDType == dataapi.IDTypeMember && who.ID == e.ownerID
}

// grants reports whether the entity condition of r holds for who at depth.
func (e *aclEvaluator) grants(r aclRule, who dataapi.Requester, depth int) bool {
	member := who.IDType == dataapi.IDTypeMember && who.ID != ""
	switch r.entity {
	case "member":
		return e.isOwner(who)
	case "any_member":
		return member && who.ServiceID == e.serviceID
	case "network":
		if !member || (r.distance > 0 && depth > r.distance) {
			return false
		}
		return slices.ContainsFunc(e.links[who.ID], func(rel string) bool {
			return len(r.relations) == 0 || slices.Contains(r.relations, strings.ToLower(rel))
		})
	case "service":
		// The spec's recommendation rather than the reference's quirk: a
		// member credential for the service does not pass a service right.
		return who.IDType == dataapi.IDTypeService && who.ServiceID == e.serviceID
	case "anonymous":
		return true
	}
	return false
}

// readRules reads the #accesscontrol of every class in classes from the
// contract's JSON: a top-level class, or a $defs entry the API serves.
func readRules(doc []byte, classes []string) (map[string][]aclRule, error) {
	var root struct {
		Schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Defs       map[string]json.RawMessage `json:"$defs"`
		} `json:"jsonschema"`
	}
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("decoding the contract: %w", err)
	}

	rules := map[string][]aclRule{}
	for _, name := range classes {
		raw, ok := root.Schema.Properties[name]
		if !ok {
			raw, ok = root.Schema.Defs[name]
		}
		if !ok {
			return nil, fmt.Errorf("class %s is not in the contract's JSON", name)
		}
		var err error
		if rules[name], err = classRules(raw); err != nil {
			return nil, fmt.Errorf("reading the rights of %s: %w", name, err)
		}
	}
	return rules, nil
}

func classRules(raw json.RawMessage) ([]aclRule, error) {
	var cl struct {
		Access map[string]struct {
			Permissions []json.RawMessage `json:"permissions"`
		} `json:"#accesscontrol"`
	}
	if err := json.Unmarshal(raw, &cl); err != nil {
		return nil, err
	}

	var rules []aclRule
	for entity, e := range cl.Access {
		for _, p := range e.Permissions {
			r, err := readRule(entity, p)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
		}
	}
	return rules, nil
}

// readRule reads a permission: a name, or an object with conditions whose
// relation is a list or, as the spec recommends, one relation.
func readRule(entity string, raw json.RawMessage) (aclRule, error) {
	r := aclRule{entity: entity}
	if json.Unmarshal(raw, &r.perm) == nil {
		return r, nil
	}
	var obj struct {
		Permission string          `json:"permission"`
		Distance   int             `json:"distance"`
		Relation   json.RawMessage `json:"relation"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return r, err
	}
	r.perm, r.distance = obj.Permission, obj.Distance

	var one string
	if len(obj.Relation) > 0 && json.Unmarshal(obj.Relation, &one) == nil {
		r.relations = []string{one}
	} else if len(obj.Relation) > 0 {
		if err := json.Unmarshal(obj.Relation, &r.relations); err != nil {
			return r, err
		}
	}
	for i, rel := range r.relations {
		r.relations[i] = strings.ToLower(rel)
	}
	return r, nil
}

// maxDistance returns the largest distance of the class's network rights.
func maxDistance(rules []aclRule) int {
	d := 0
	for _, r := range rules {
		if r.entity == "network" {
			d = max(d, r.distance)
		}
	}
	return d
}

// aclAction is a Data API action with the permission it needs; depth says
// whether the request's depth goes to the check.
type aclAction struct {
	name  string
	perm  string
	depth bool
}

var (
	objectActions = []aclAction{{"query", "read", true}, {"mutate", "update", false}}
	arrayActions  = []aclAction{{"query", "read", true}, {"append", "append", true},
		{"update", "update", true}, {"delete", "delete", true}}
)

// aclIdentity is a requester of the matrix, with the depth its requests
// carry: a function of the class, for the network rights' distances.
type aclIdentity struct {
	name  string
	who   dataapi.Requester
	depth func(rules []aclRule) int
}

func atDepth(d int) func([]aclRule) int { return func([]aclRule) int { return d } }

// pastDistance is one level deeper than the class's network rights reach;
// for rights without a distance, which reach any depth, it is 1.
func pastDistance(rules []aclRule) int { return maxDistance(rules) + 1 }

// atDistance is the deepest level the class's network rights reach, and at
// least 1.
func atDistance(rules []aclRule) int { return max(maxDistance(rules), 1) }

// aclMatrix runs requests against a membership's Data API.
type aclMatrix struct {
	api     *dataapi.API
	store   *store.Store
	handler http.Handler
}

func newACLMatrix(a *dataapi.API, st *store.Store) *aclMatrix {
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/data/{service_id}/{class}/{action}",
		api.Handle(slog.New(slog.DiscardHandler), func(w http.ResponseWriter,
			r *http.Request) error {
			who, _ := r.Context().Value(requesterKey{}).(dataapi.Requester)
			return a.Serve(w, r, who, r.PathValue("class"), r.PathValue("action"))
		}))
	return &aclMatrix{api: a, store: st, handler: mux}
}

// requesterKey carries the requester to the handler, as the pod's
// authentication does.
type requesterKey struct{}

// call sends body to action on class as who and returns the status and the
// body of the answer.
func (m *aclMatrix) call(t *testing.T, who dataapi.Requester, class, action string,
	body map[string]any) (int, []byte) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("/api/v1/data/%d/%s/%s", m.api.ServiceID, class, action)
	req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req = req.WithContext(context.WithValue(req.Context(), requesterKey{}, who))

	rec := httptest.NewRecorder()
	m.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// datalogs returns the number of datalog entries.
func (m *aclMatrix) datalogs(t *testing.T) int64 {
	t.Helper()
	if err := m.api.WaitDatalogs(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := m.store.Counter(context.Background(), "datalogs", store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAccessControlMatrix sends every action of every class of the address
// book as every kind of requester, and checks that the data firewall
// decides as §2 of the spec, read straight from the contract, says: 403 for
// a denial, and for an allowed request the answer of the action, which
// with no network is 501 for a query with depth and 400 for a write with
// depth. Only the requests that succeed leave a datalog entry.
func TestAccessControlMatrix(t *testing.T) {
	doc := readAddressBook(t)
	owner := uuid.NewString()
	a, st := openAPI(t, doc, owner)
	m := newACLMatrix(a, st)
	c := st.Contract()
	sid := c.ServiceID

	rules, err := readRules(doc, c.ClassNames())
	if err != nil {
		t.Fatal(err)
	}
	friend, family, colleague := uuid.NewString(), uuid.NewString(), uuid.NewString()
	ev := &aclEvaluator{serviceID: sid, ownerID: owner, rules: rules, links: map[string][]string{
		friend: {"friend"}, family: {"Family"}, colleague: {"colleague"},
	}}
	addLinks(t, m, owner, ev.links)

	addr := netip.MustParseAddr("127.0.0.1")
	member := func(id string, sid uint32) dataapi.Requester {
		return dataapi.Requester{IDType: dataapi.IDTypeMember, ID: id, ServiceID: sid, Addr: addr}
	}
	service := func(sid uint32) dataapi.Requester {
		return dataapi.Requester{IDType: dataapi.IDTypeService,
			ID: strconv.FormatUint(uint64(sid), 10), ServiceID: sid, Addr: addr}
	}
	identities := []aclIdentity{
		{"owner", member(owner, sid), atDepth(0)},
		{"owner of another service", member(owner, sid+1), atDepth(0)},
		{"unlinked member", member(uuid.NewString(), sid), atDepth(0)},
		{"friend", member(friend, sid), atDepth(0)},
		{"friend at the distance", member(friend, sid), atDistance},
		{"family past the distance", member(family, sid), pastDistance},
		{"colleague", member(colleague, sid), atDepth(0)},
		{"service", service(sid), atDepth(0)},
		{"another service", service(sid + 1), atDepth(0)},
		{"anonymous", dataapi.Requester{IDType: dataapi.IDTypeAnonymous, Addr: addr},
			atDepth(0)},
	}

	for _, name := range c.ClassNames() {
		cl, _ := c.Class(name)
		cs := newClassState(t, cl)
		acts := arrayActions
		if cl.Kind == contract.ObjectClass {
			acts = objectActions
		}
		for _, act := range acts {
			for _, id := range identities {
				t.Run(name+"/"+act.name+"/"+id.name, func(t *testing.T) {
					depth := 0
					if act.depth {
						depth = id.depth(rules[name])
					}
					allowed := ev.allows(name, id.who, act.perm, depth)
					m.check(t, cs, act.name, id.who, depth, allowed)
				})
			}
		}
	}
}

// addLinks appends the network links as the owner, through the API.
func addLinks(t *testing.T, m *aclMatrix, owner string, links map[string][]string) {
	t.Helper()
	who := dataapi.Requester{IDType: dataapi.IDTypeMember, ID: owner,
		ServiceID: m.api.ServiceID, Addr: netip.MustParseAddr("127.0.0.1")}
	for id, rels := range links {
		for _, rel := range rels {
			code, body := m.call(t, who, "network_links", "append", map[string]any{
				"data": map[string]any{"created_timestamp": time.Now().UTC(),
					"member_id": id, "relation": rel}})
			if code != http.StatusOK {
				t.Fatalf("adding a network link: %d %s", code, body)
			}
		}
	}
}

// classState is what the matrix keeps for one class: the record its writes
// send, the filter that selects it, and how many copies are stored.
type classState struct {
	class  *contract.Class
	record map[string]any
	filter map[string]any
	rows   int
}

func newClassState(t *testing.T, cl *contract.Class) *classState {
	t.Helper()
	rec := minimalRecord(cl.Record(), "acl-"+cl.Name, 0)
	f, ok := recordFilter(cl.Record(), rec)
	if !ok && cl.Kind == contract.ArrayClass {
		t.Fatalf("no field of %s to filter on", cl.Name)
	}
	return &classState{class: cl, record: rec, filter: f}
}

// check sends action as who at depth and compares the answer and the
// datalog with what allowed predicts.
func (m *aclMatrix) check(t *testing.T, cs *classState, action string,
	who dataapi.Requester, depth int, allowed bool) {
	t.Helper()
	body := map[string]any{}
	if depth > 0 {
		body["depth"] = depth
		body["query_id"] = uuid.NewString()
	}
	switch action {
	case "mutate", "append":
		body["data"] = cs.record
	case "update":
		body["data"], body["filter"] = cs.record, cs.filter
	case "delete":
		body["filter"] = cs.filter
	}

	logs := m.datalogs(t)
	code, resp := m.call(t, who, cs.class.Name, action, body)
	want := expectedStatus(action, depth, allowed)
	if code != want {
		t.Fatalf("%s of %s at depth %d: status %d (%s), want %d (allowed: %v)", action,
			cs.class.Name, depth, code, bytes.TrimSpace(resp), want, allowed)
	}

	grown := int64(0)
	if code == http.StatusOK {
		grown = 1 + m.checkResult(t, cs, action, resp)
	}
	if got := m.datalogs(t) - logs; got != grown {
		t.Errorf("the datalog grew by %d, want %d", got, grown)
	}
}

// expectedStatus is the answer of an action that the firewall allows or
// denies. With no network, a query with depth cannot fan out, and writes
// never go deeper than this pod.
func expectedStatus(action string, depth int, allowed bool) int {
	switch {
	case !allowed:
		return http.StatusForbidden
	case depth > 0 && action == "query":
		return http.StatusNotImplemented
	case depth > 0:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// checkResult checks the answer of a successful action against the copies
// of the record stored, and returns how many datalog entries it added or
// removed itself, for writes to the datalogs class.
func (m *aclMatrix) checkResult(t *testing.T, cs *classState, action string,
	resp []byte) int64 {
	t.Helper()
	if action == "query" {
		var q struct {
			Edges []json.RawMessage `json:"edges"`
		}
		if err := json.Unmarshal(resp, &q); err != nil || q.Edges == nil {
			t.Fatalf("query answered %s", resp)
		}
		return 0
	}

	var n int
	if err := json.Unmarshal(resp, &n); err != nil {
		t.Fatalf("%s answered %s, not a count", action, resp)
	}
	want, change := 1, 0
	switch action {
	case "append":
		change = 1
	case "update":
		want = cs.rows
	case "delete":
		want, change = cs.rows, -cs.rows
	}
	if n != want {
		t.Errorf("%s answered %d, want %d", action, n, want)
	}
	cs.rows += change
	if cs.class.Name == "datalogs" {
		return int64(change)
	}
	return 0
}

// minimalRecord returns a record of cl with a value of the right type for
// every required field, or for the first scalar field when none is
// required. Embedded records are built the same way, three levels deep.
func minimalRecord(cl *contract.Class, tag string, level int) map[string]any {
	rec := map[string]any{}
	for _, name := range cl.Required {
		f, _ := cl.Field(name)
		rec[name] = sampleValue(f, tag, level)
	}
	if len(rec) > 0 {
		return rec
	}
	for _, f := range cl.Fields {
		if f.Scalar() {
			rec[f.Name] = sampleValue(f, tag, level)
			break
		}
	}
	return rec
}

func sampleValue(f *contract.Field, tag string, level int) any {
	if f.Type != contract.TypeArray {
		return sampleScalar(f.Type, tag)
	}
	if f.ItemClass == nil {
		return []any{sampleScalar(f.ItemType, tag)}
	}
	if level >= 3 {
		return []any{}
	}
	return []any{minimalRecord(f.ItemClass, tag, level+1)}
}

func sampleScalar(t contract.FieldType, tag string) any {
	switch t {
	case contract.TypeUUID:
		return uuid.NewString()
	case contract.TypeDateTime:
		return time.Now().UTC().Format(time.RFC3339Nano)
	case contract.TypeInteger:
		return 7
	case contract.TypeNumber:
		return 1.5
	case contract.TypeBoolean:
		return true
	}
	return tag
}

// recordFilter returns a filter on one field of rec that selects the
// records equal to it there: a uuid field if rec has one, else a string,
// an integer or a date-time.
func recordFilter(cl *contract.Class, rec map[string]any) (map[string]any, bool) {
	for _, t := range []contract.FieldType{contract.TypeUUID, contract.TypeString,
		contract.TypeInteger, contract.TypeDateTime} {
		for _, f := range cl.Fields {
			v, ok := rec[f.Name]
			if !ok || f.Type != t {
				continue
			}
			op := "eq"
			if t == contract.TypeDateTime {
				op = "at"
			}
			return map[string]any{f.Name: map[string]any{op: v}}, true
		}
	}
	return nil, false
}
