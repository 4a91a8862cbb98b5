package contract

import "testing"

func TestAllows(t *testing.T) {
	book, err := Parse(readShared(t, "contracts", "addressbook.json"))
	if err != nil {
		t.Fatal(err)
	}
	notes := parseGoodNotes(t, nil)

	var (
		anonymous = Requester{}
		owner     = Requester{Member: true, Owner: true}
		member    = Requester{Member: true}
		friend    = Requester{Member: true, Links: []string{"Friend"}}
		colleague = Requester{Member: true, Links: []string{"colleague"}}
		both      = Requester{Member: true, Links: []string{"colleague", "family"}}
		service   = Requester{Service: true}
		// A link to something that is not a member cannot make a network
		// right grant.
		linkedNobody = Requester{Links: []string{"friend"}}
	)
	tests := []struct {
		name  string
		c     *Contract
		class string
		who   Requester
		p     Permission
		depth int
		want  bool
	}{
		// The access cases of the Data API's acceptance suite.
		{"anonymous reads public_assets", book, "public_assets", anonymous, PermissionRead, 0, true},
		{"anonymous reads channels", book, "channels", anonymous, PermissionRead, 0, true},
		{"anonymous reads network_assets", book, "network_assets", anonymous, PermissionRead, 0,
			false},
		{"anonymous appends public_assets", book, "public_assets", anonymous, PermissionAppend, 0,
			false},
		{"member appends network_invites", book, "network_invites", member, PermissionAppend, 0,
			true},
		{"member reads network_invites", book, "network_invites", member, PermissionRead, 0, false},
		{"owner reads network_invites", book, "network_invites", owner, PermissionRead, 0, true},

		// member and the default rule.
		{"owner updates person", book, "person", owner, PermissionUpdate, 0, true},
		{"owner appends datalogs", book, "datalogs", owner, PermissionAppend, 0, true},
		{"owner updates datalogs", book, "datalogs", owner, PermissionUpdate, 0, false},
		{"owner reads by default", notes, "settings", owner, PermissionRead, 0, true},
		{"owner may not subscribe by default", book, "datalogs", owner, PermissionSubscribe, 0,
			false},

		// network: links, relations and distance.
		{"friend reads person", book, "person", friend, PermissionRead, 1, true},
		{"friend reads person at depth 0", book, "person", friend, PermissionRead, 0, true},
		{"friend reads person too deep", book, "person", friend, PermissionRead, 2, false},
		{"colleague reads person", book, "person", colleague, PermissionRead, 1, false},
		{"one of two links", book, "person", both, PermissionRead, 1, true},
		{"member without link reads person", book, "person", member, PermissionRead, 1, false},
		{"link to a non-member", book, "person", linkedNobody, PermissionRead, 1, false},
		{"friend reads network_assets at 3", book, "network_assets", friend, PermissionRead, 3,
			true},
		{"friend reads network_assets at 4", book, "network_assets", friend, PermissionRead, 4,
			false},
		{"any link reads asset_links", book, "asset_links", colleague, PermissionRead, 9, true},
		{"friend subscribes notes", notes, "notes", friend, PermissionSubscribe, 5, true},
		{"family subscribes notes", notes, "notes", both, PermissionSubscribe, 0, false},
		{"friend may not update person", book, "person", friend, PermissionUpdate, 0, false},

		// service needs the service itself.
		{"service reads person", book, "person", service, PermissionRead, 0, true},
		{"member passes no service right", book, "person", member, PermissionRead, 0, false},
		{"service reads network_links", book, "network_links", service, PermissionRead, 0, false},

		// any_member includes the owner.
		{"owner as any member", book, "asset_reactions_received", owner, PermissionAppend, 0,
			true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, ok := tt.c.Class(tt.class)
			if !ok {
				t.Fatalf("no class %q", tt.class)
			}
			if got := cl.Access.Allows(tt.who, tt.p, tt.depth); got != tt.want {
				t.Errorf("Allows(%+v, %s, %d) = %v, want %v", tt.who, tt.p, tt.depth, got, tt.want)
			}
		})
	}
}

func TestAllowsWithoutAccessControl(t *testing.T) {
	var none AccessControl
	for _, p := range permissions {
		want := p == PermissionRead
		if got := none.Allows(Requester{Member: true, Owner: true}, p, 0); got != want {
			t.Errorf("owner %s without rights: %v, want %v", p, got, want)
		}
		if none.Allows(Requester{Member: true, Service: true, Links: []string{"friend"}}, p, 0) {
			t.Errorf("non-owner %s without rights is allowed", p)
		}
	}
}
