package contract

import (
	"fmt"
	"slices"
	"strings"
)

// Grant is one line of an access summary: who, with the conditions of their
// rights, and what they may do.
type Grant struct {
	// Entity is who the rights are for.
	Entity Entity

	// Who names the entity for people, with the conditions of its rights,
	// as in "network (distance 1, relations friend|family)".
	Who string

	// What lists the permissions, as in "read", "read (default)" or "none".
	What []string

	// Distance and Relations are the conditions of network rights, as in
	// Right; every right of a Grant has the same.
	Distance  int
	Relations []string
}

// entityLabels are the names people read for the entities.
var entityLabels = map[Entity]string{
	EntityMember:    "owner",
	EntityAnyMember: "any member",
	EntityNetwork:   "network",
	EntityService:   "service",
	EntityAnonymous: "anonymous",
}

// Describe puts the rights of a in words, one Grant per entity and set of
// conditions, in the order of a. The owner's default right to read comes
// first when a does not grant it, and anonymous requesters, when a gives
// them nothing, get a last Grant of "none".
func (a AccessControl) Describe() []Grant {
	var grants []Grant
	add := func(r Right, permission string) {
		who := r.describeEntity()
		i := slices.IndexFunc(grants, func(g Grant) bool { return g.Who == who })
		if i < 0 {
			grants = append(grants, Grant{Entity: r.Entity, Who: who, Distance: r.Distance,
				Relations: r.Relations})
			i = len(grants) - 1
		}
		grants[i].What = append(grants[i].What, permission)
	}

	if !a.Has(EntityMember, PermissionRead) {
		add(Right{Entity: EntityMember}, "read (default)")
	}
	for _, r := range a {
		add(r, string(r.Permission))
	}
	if !slices.ContainsFunc(a, func(r Right) bool { return r.Entity == EntityAnonymous }) {
		add(Right{Entity: EntityAnonymous}, "none")
	}
	return grants
}

// Summary returns Describe on one line, as in "owner: read, update; network
// (distance 1, relations friend|family): read; anonymous: none".
func (a AccessControl) Summary() string {
	grants := a.Describe()
	parts := make([]string, len(grants))
	for i, g := range grants {
		parts[i] = g.Who + ": " + strings.Join(g.What, ", ")
	}
	return strings.Join(parts, "; ")
}

// describeEntity names who the right is for, with its conditions.
func (r Right) describeEntity() string {
	var conditions []string
	if r.Distance > 0 {
		conditions = append(conditions, fmt.Sprintf("distance %d", r.Distance))
	}
	if len(r.Relations) > 0 {
		conditions = append(conditions, "relations "+strings.Join(r.Relations, "|"))
	}
	if r.Permission == PermissionSearch {
		conditions = append(conditions, "match "+string(r.Match))
		if !r.CaseSensitive {
			conditions = append(conditions, "case-insensitive")
		}
	}

	label := entityLabels[r.Entity]
	if len(conditions) == 0 {
		return label
	}
	return label + " (" + strings.Join(conditions, ", ") + ")"
}
