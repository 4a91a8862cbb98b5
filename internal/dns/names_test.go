package dns

import "testing"

func TestClassify(t *testing.T) {
	const id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	tests := []struct {
		relative string
		want     nameKind
	}{
		{"accounts", kindStructural},
		{"members-0", kindStructural},
		{"members-4294967295", kindStructural},
		{"service-12", kindStructural},
		{id + ".accounts", kindDynamic},
		{id + ".members-12", kindDynamic},
		{"service.service-12", kindDynamic},
		{"members-", kindUnknown},
		{"members-4294967296", kindUnknown},
		{"members-012", kindUnknown},
		{"members-+12", kindUnknown},
		{"members--1", kindUnknown},
		{"members-12a", kindUnknown},
		{"account", kindUnknown},
		{"accounts-ca", kindUnknown},
		{"service-ca-12", kindUnknown},
		{"dir", kindUnknown},
		{"", kindUnknown},
		{"service.accounts", kindUnknown},
		{id + ".service-12", kindUnknown},
		{"services.service-12", kindUnknown},
		{"service.members-12", kindUnknown},
		{id + ".member-data-12", kindUnknown},
		{"x." + id + ".accounts", kindUnknown},
		{id + ".accounts.extra", kindUnknown},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c330", kindUnknown},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c33011.accounts", kindUnknown},
		{"3f2504e04f8941d39a0c0305e82c3301.accounts", kindUnknown},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c330g.accounts", kindUnknown},
		{"3F2504E0-4F89-41D3-9A0C-0305E82C3301.accounts", kindUnknown},
		{"3f2504e0_4f89-41d3-9a0c-0305e82c3301.accounts", kindUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.relative, func(t *testing.T) {
			if got := classify(tt.relative); got != tt.want {
				t.Errorf("classify(%q) = %d, want %d", tt.relative, got, tt.want)
			}
		})
	}
}
