package contract

import (
	"maps"
	"slices"
	"strings"
)

// Entity is a kind of requester that an access right is granted to; it is a
// key of #accesscontrol.
type Entity string

// The entities of #accesscontrol, in the order AccessControl keeps them.
const (
	// EntityMember is the pod's own member for the service: its owner.
	EntityMember Entity = "member"

	// EntityAnyMember is any member of the service, the owner included.
	EntityAnyMember Entity = "any_member"

	// EntityNetwork is a member this pod has a network link with.
	EntityNetwork Entity = "network"

	// EntityService is the service itself.
	EntityService Entity = "service"

	// EntityAnonymous is anyone, authenticated or not.
	EntityAnonymous Entity = "anonymous"
)

// entityOrder lists every entity, in the order AccessControl keeps them.
var entityOrder = []Entity{
	EntityMember, EntityAnyMember, EntityNetwork, EntityService, EntityAnonymous,
}

// Permission is an operation that an access right allows.
type Permission string

// The permissions of #accesscontrol.
const (
	PermissionRead      Permission = "read"      // query
	PermissionUpdate    Permission = "update"    // mutate objects, update arrays
	PermissionDelete    Permission = "delete"    // delete from arrays
	PermissionAppend    Permission = "append"    // append to arrays
	PermissionSubscribe Permission = "subscribe" // the counter and updates websockets
	PermissionSearch    Permission = "search"    // a service's own search features
	PermissionPersist   Permission = "persist"   // the service may keep a copy
	PermissionCreate    Permission = "create"    // accepted, checked by no action
	PermissionMutate    Permission = "mutate"    // accepted, checked by no action
)

var permissions = []Permission{
	PermissionRead, PermissionUpdate, PermissionDelete, PermissionAppend,
	PermissionSubscribe, PermissionSearch, PermissionPersist, PermissionCreate,
	PermissionMutate,
}

// Match is how a search right compares search terms.
type Match string

// The ways a search right matches.
const (
	MatchExact      Match = "exact"
	MatchSubstring  Match = "substring"
	MatchStartsWith Match = "startswith"
	MatchEndsWith   Match = "endswith"
	MatchRegex      Match = "regex"
)

var matches = []Match{MatchExact, MatchSubstring, MatchStartsWith, MatchEndsWith, MatchRegex}

// Right is one permission granted to one entity.
type Right struct {
	Entity     Entity
	Permission Permission

	// Distance, for network rights, is the largest request depth the
	// right grants at; zero means any depth.
	Distance int

	// Relations, for network rights, lists the relations (lower case) a
	// network link must have for the right to grant; empty means any.
	Relations []string

	// SourceSignatureRequired and AnonymizedResponses (spelt
	// "anonimized_responses" in contracts) are declared by contracts but
	// enforced by no one.
	SourceSignatureRequired bool
	AnonymizedResponses     bool

	// Match and CaseSensitive say how a search right compares; they are
	// MatchExact and true unless the contract says otherwise, and unset for
	// other rights.
	Match         Match
	CaseSensitive bool
}

// AccessControl is the list of rights of a class or field, ordered by entity
// (member, any_member, network, service, anonymous) and then as the contract
// lists them.
type AccessControl []Right

// Requester is what access control needs to know about who makes a request.
// The zero Requester is anonymous.
type Requester struct {
	// Member is set for a requester authenticated as a member of the
	// service, with a member certificate or a member JWT.
	Member bool

	// Owner is set when that member is this pod's own member for the
	// service. Owner implies Member.
	Owner bool

	// Service is set for a requester authenticated as the service itself,
	// with the service's certificate.
	Service bool

	// Links holds the relation of every network link this pod has with the
	// requesting member; it is empty when there is none.
	Links []string
}

// Allows reports whether a holds a right that lets r have permission p at the
// request depth depth, or else whether the default rule does: the owner may
// always read. Only class rights decide; the caller has already denied
// requesters authenticated for another service, and refused classes the Data
// API does not serve.
//
// A service right needs the service itself. The reference lets any member of
// the service pass it, which is not what the right means.
func (a AccessControl) Allows(r Requester, p Permission, depth int) bool {
	for _, right := range a {
		if right.Permission == p && right.grants(r, depth) {
			return true
		}
	}
	return p == PermissionRead && r.Owner
}

// grants reports whether the entity condition and depth of right hold for r.
func (right Right) grants(r Requester, depth int) bool {
	switch right.Entity {
	case EntityMember:
		return r.Owner
	case EntityAnyMember:
		return r.Member || r.Owner
	case EntityNetwork:
		if !r.Member && !r.Owner || len(r.Links) == 0 {
			return false
		}
		if right.Distance > 0 && depth > right.Distance {
			return false
		}
		return len(right.Relations) == 0 || slices.ContainsFunc(r.Links, func(rel string) bool {
			return slices.Contains(right.Relations, strings.ToLower(rel))
		})
	case EntityService:
		return r.Service
	case EntityAnonymous:
		return true
	}
	return false
}

// Has reports whether a has a right for permission p of entity e, whatever
// its conditions.
func (a AccessControl) Has(e Entity, p Permission) bool {
	return slices.ContainsFunc(a, func(r Right) bool {
		return r.Entity == e && r.Permission == p
	})
}

// access reads an #accesscontrol object.
func (l *loader) access(v any, at jsonPath) AccessControl {
	if _, old := v.([]any); old {
		l.fail(at, `must be an object such as {"member": {"permissions": ["read"]}}; `+
			"the list form is no longer accepted")
		return nil
	}
	obj, ok := l.object(v, at)
	if !ok {
		return nil
	}

	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(entityOrder, Entity(k)) {
			l.fail(at.key(k), "unknown entity %q; expected member, any_member, network, "+
				"service or anonymous", k)
		}
	}

	var rights AccessControl
	for _, e := range entityOrder {
		if ev, ok := obj[string(e)]; ok {
			rights = append(rights, l.entityRights(e, ev, at.key(string(e)))...)
		}
	}
	return rights
}

// entityRights reads {"permissions": [...]}, the rights of entity e.
func (l *loader) entityRights(e Entity, v any, at jsonPath) []Right {
	if _, old := v.([]any); old {
		l.fail(at, `must be an object such as {"permissions": ["read"]}`)
		return nil
	}
	obj, ok := l.object(v, at)
	if !ok {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if k != "permissions" {
			l.fail(at.key(k), `unknown key; an entity has only "permissions", and a `+
				`permission with conditions is written {"permission": "read", "%s": ...}`, k)
		}
	}
	pv, ok := obj["permissions"]
	if !ok {
		l.fail(at.key("permissions"), "required key is missing")
		return nil
	}
	list, ok := l.list(pv, at.key("permissions"))
	if !ok {
		return nil
	}

	rights := make([]Right, 0, len(list))
	for i, elem := range list {
		if r, ok := l.right(e, elem, at.key("permissions").index(i)); ok {
			rights = append(rights, r)
		}
	}
	return rights
}

var rightKeys = []string{
	"permission", "distance", "relation", "source_signature_required",
	"anonimized_responses", "match", "casesensitive",
}

// right reads one permission: a name, or an object with conditions.
func (l *loader) right(e Entity, v any, at jsonPath) (Right, bool) {
	r := Right{Entity: e}
	if s, ok := v.(string); ok {
		r.Permission, ok = l.permission(s, at)
		r.setSearchDefaults()
		return r, ok
	}
	obj, ok := v.(map[string]any)
	if !ok {
		l.fail(at, `must be a permission name or an object such as {"permission": "read"}, `+
			"not %s", describe(v))
		return r, false
	}

	before := len(l.problems)
	l.rejectUnknownKeys(obj, at, rightKeys)
	if pv, ok := obj["permission"]; !ok {
		l.fail(at.key("permission"), "required key is missing")
	} else if s, ok := l.str(pv, at.key("permission")); ok {
		r.Permission, _ = l.permission(s, at.key("permission"))
	}
	r.setSearchDefaults()
	l.rightConditions(&r, obj, at)
	return r, len(l.problems) == before
}

// setSearchDefaults gives a search right the default way to match.
func (r *Right) setSearchDefaults() {
	if r.Permission == PermissionSearch {
		r.Match, r.CaseSensitive = MatchExact, true
	}
}

func (l *loader) permission(s string, at jsonPath) (Permission, bool) {
	p := Permission(s)
	if !slices.Contains(permissions, p) {
		l.fail(at, "unknown permission %q; expected one of %s", s, joinPermissions())
		return "", false
	}
	return p, true
}

func joinPermissions() string {
	names := make([]string, len(permissions))
	for i, p := range permissions {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// rightConditions reads the conditions of a permission object into r, whose
// entity and permission are set, and checks that they fit both.
func (l *loader) rightConditions(r *Right, obj map[string]any, at jsonPath) {
	search := r.Permission == PermissionSearch
	for _, k := range []string{"distance", "relation", "source_signature_required",
		"anonimized_responses"} {
		if isKey(obj, k) && search {
			l.fail(at.key(k), "a search right takes no %s", k)
		}
	}
	for _, k := range []string{"distance", "relation"} {
		if isKey(obj, k) && !search && r.Entity != EntityNetwork {
			l.fail(at.key(k), "%s applies to network rights only", k)
		}
	}
	for _, k := range []string{"match", "casesensitive"} {
		if isKey(obj, k) && !search && r.Permission != "" {
			l.fail(at.key(k), "%s applies to search rights only", k)
		}
	}

	if v, ok := obj["distance"]; ok {
		d, _ := l.integer(v, at.key("distance"), 0, DepthLimit)
		r.Distance = int(d)
	}
	if v, ok := obj["relation"]; ok {
		r.Relations = l.relations(v, at.key("relation"))
	}
	if v, ok := obj["source_signature_required"]; ok {
		r.SourceSignatureRequired = l.boolean(v, at.key("source_signature_required"))
	}
	if v, ok := obj["anonimized_responses"]; ok {
		r.AnonymizedResponses = l.boolean(v, at.key("anonimized_responses"))
	}
	if v, ok := obj["match"]; ok {
		r.Match = l.match(v, at.key("match"))
	}
	if v, ok := obj["casesensitive"]; ok {
		r.CaseSensitive = l.boolean(v, at.key("casesensitive"))
	}
}

// relations reads the relation of a network right: a list of names, or one
// name. The reference turns a single string into the set of its letters;
// here it is the one relation it names.
func (l *loader) relations(v any, at jsonPath) []string {
	if s, ok := v.(string); ok {
		if s == "" {
			l.fail(at, "must not be empty")
			return nil
		}
		return []string{strings.ToLower(s)}
	}
	list, _ := l.stringList(v, at)
	return lowerAll(list)
}

func (l *loader) match(v any, at jsonPath) Match {
	s, ok := l.str(v, at)
	if !ok {
		return MatchExact
	}
	if !slices.Contains(matches, Match(s)) {
		l.fail(at, "unknown match %q; expected exact, substring, startswith, endswith or regex", s)
		return MatchExact
	}
	return Match(s)
}

// lowerAll lower-cases every string of list, in place.
func lowerAll(list []string) []string {
	for i, s := range list {
		list[i] = strings.ToLower(s)
	}
	return list
}
