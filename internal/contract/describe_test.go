package contract

import (
	"reflect"
	"testing"
)

func TestAccessSummary(t *testing.T) {
	tests := []struct {
		name   string
		access AccessControl
		want   string
	}{
		{"none", nil, "owner: read (default); anonymous: none"},
		{"owner without read", AccessControl{
			{Entity: EntityMember, Permission: PermissionUpdate},
		}, "owner: read (default), update; anonymous: none"},
		{"public", AccessControl{
			{Entity: EntityMember, Permission: PermissionRead},
			{Entity: EntityAnonymous, Permission: PermissionRead},
		}, "owner: read; anonymous: read"},
		{"network", AccessControl{
			{Entity: EntityMember, Permission: PermissionRead},
			{Entity: EntityNetwork, Permission: PermissionRead, Distance: 1,
				Relations: []string{"friend", "family"}},
			{Entity: EntityNetwork, Permission: PermissionAppend},
		}, "owner: read; network (distance 1, relations friend|family): read; " +
			"network: append; anonymous: none"},
		{"search", AccessControl{
			{Entity: EntityService, Permission: PermissionSearch, Match: MatchExact},
			{Entity: EntityService, Permission: PermissionPersist},
		}, "owner: read (default); service (match exact, case-insensitive): search; " +
			"service: persist; anonymous: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.access.Summary(); got != tt.want {
				t.Errorf("Summary = %q,\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAccessDescribe(t *testing.T) {
	a := AccessControl{
		{Entity: EntityMember, Permission: PermissionRead},
		{Entity: EntityMember, Permission: PermissionUpdate},
		{Entity: EntityAnyMember, Permission: PermissionAppend},
		{Entity: EntityNetwork, Permission: PermissionRead, Distance: 2,
			Relations: []string{"friend"}},
		{Entity: EntityNetwork, Permission: PermissionSubscribe, Distance: 2,
			Relations: []string{"friend"}},
	}
	want := []Grant{
		{Entity: EntityMember, Who: "owner", What: []string{"read", "update"}},
		{Entity: EntityAnyMember, Who: "any member", What: []string{"append"}},
		{Entity: EntityNetwork, Who: "network (distance 2, relations friend)",
			What: []string{"read", "subscribe"}, Distance: 2, Relations: []string{"friend"}},
		{Entity: EntityAnonymous, Who: "anonymous", What: []string{"none"}},
	}
	if got := a.Describe(); !reflect.DeepEqual(got, want) {
		t.Errorf("Describe = %+v,\nwant %+v", got, want)
	}
}
