package pki

import (
	"errors"
	"testing"
)

const (
	testNet  = "byoda.test"
	testUUID = "6e1fb0a6-2f45-4b7c-9a2d-0c1f3f0e5a11"
)

func TestParseNameValid(t *testing.T) {
	tests := []struct {
		cn   string
		want Name
	}{
		{"root-ca.byoda.test", Name{Type: RootCA}},
		{"accounts-ca.accounts-ca.byoda.test", Name{Type: AccountsCA}},
		{"services-ca.services-ca.byoda.test", Name{Type: ServicesCA}},
		{"network.network-data.byoda.test", Name{Type: NetworkData}},
		{"service-ca.service-ca-42.byoda.test", Name{Type: ServiceCA, ServiceID: 42}},
		{"members-ca.members-ca-0.byoda.test", Name{Type: MembersCA}},
		{"apps-ca.apps-ca-4294967295.byoda.test",
			Name{Type: AppsCA, ServiceID: 4294967295}},
		{"service.service-4294929430.byoda.test",
			Name{Type: Service, ServiceID: 4294929430}},
		{"data.service-data-16384.byoda.test", Name{Type: ServiceData, ServiceID: 16384}},
		{testUUID + ".accounts.byoda.test", Name{Type: Account, ID: testUUID}},
		{testUUID + ".account-data.byoda.test", Name{Type: AccountData, ID: testUUID}},
		{testUUID + ".members-7.byoda.test", Name{Type: Member, ID: testUUID, ServiceID: 7}},
		{testUUID + ".member-data-7.byoda.test",
			Name{Type: MemberData, ID: testUUID, ServiceID: 7}},
		{testUUID + ".apps-7.byoda.test", Name{Type: App, ID: testUUID, ServiceID: 7}},
		{testUUID + ".app-data-7.byoda.test", Name{Type: AppData, ID: testUUID, ServiceID: 7}},
		{"6E1FB0A6-2F45-4B7C-9A2D-0C1F3F0E5A11.Accounts.BYODA.test",
			Name{Type: Account, ID: testUUID}},
	}

	for _, tt := range tests {
		t.Run(tt.cn, func(t *testing.T) {
			tt.want.Network = testNet
			got, err := ParseName(tt.cn, testNet)
			if err != nil {
				t.Fatalf("ParseName: %v", err)
			}
			if got != tt.want {
				t.Fatalf("ParseName = %+v, want %+v", got, tt.want)
			}

			// The name writes back as the canonical common name.
			again, err := ParseName(got.String(), testNet)
			if err != nil || again != got {
				t.Fatalf("round trip of %s: %+v, %v", got, again, err)
			}
		})
	}
}

func TestParseNameInvalid(t *testing.T) {
	tests := []string{
		"",
		"byoda.test",
		".byoda.test",
		"root-ca.other.test",
		testUUID + ".accounts.byoda.test.evil.com",
		testUUID + ".accounts.other.test",
		"x." + testUUID + ".accounts.byoda.test",
		"accounts.byoda.test",
		testUUID + ".account.byoda.test",
		testUUID + ".accounts-1.byoda.test",
		"not-a-uuid.accounts.byoda.test",
		"6e1fb0a62f454b7c9a2d0c1f3f0e5a11.accounts.byoda.test",
		"{" + testUUID + "}.accounts.byoda.test",
		testUUID + ".members.byoda.test",
		testUUID + ".members-.byoda.test",
		testUUID + ".members-x.byoda.test",
		testUUID + ".members-07.byoda.test",
		testUUID + ".members--7.byoda.test",
		testUUID + ".members-4294967296.byoda.test",
		testUUID + ".members-+7.byoda.test",
		"members-ca.members-ca.byoda.test",
		"other.members-ca-7.byoda.test",
		"service.service-ca-7.byoda.test",
		"data.service-7.byoda.test",
		"accounts-ca.accounts.byoda.test",
		"network.network-data-7.byoda.test",
		testUUID + ".unknown-7.byoda.test",
		testUUID + ".membersx-7.byoda.test",
	}

	for _, cn := range tests {
		t.Run(cn, func(t *testing.T) {
			n, err := ParseName(cn, testNet)
			if err == nil {
				t.Fatalf("ParseName(%q) = %+v, want an error", cn, n)
			}
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v does not wrap ErrBadName", err)
			}
		})
	}
}

func TestCheckNetwork(t *testing.T) {
	for _, n := range []string{"byoda.net", "byoda.test", "a.b.c", "x-1.example"} {
		if err := CheckNetwork(n); err != nil {
			t.Errorf("CheckNetwork(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "byoda", "Byoda.net", "-a.net", "a-.net", "a..net",
		"a_b.net", "byoda.net.", "a b.net"} {
		if err := CheckNetwork(n); err == nil {
			t.Errorf("CheckNetwork(%q) = nil, want an error", n)
		}
	}
}

func TestIssuer(t *testing.T) {
	tests := map[IDType]IDType{
		AccountsCA: RootCA, ServicesCA: RootCA, NetworkData: RootCA,
		Account: AccountsCA, AccountData: AccountsCA, ServiceCA: ServicesCA,
		MembersCA: ServiceCA, AppsCA: ServiceCA, Service: ServiceCA, ServiceData: ServiceCA,
		Member: MembersCA, MemberData: MembersCA, App: AppsCA, AppData: AppsCA,
	}
	for typ, want := range tests {
		if got, ok := Issuer(typ); !ok || got != want {
			t.Errorf("Issuer(%v) = %v, %v; want %v", typ, got, ok, want)
		}
	}
	if _, ok := Issuer(RootCA); ok {
		t.Error("the root CA has an issuer")
	}
}

func FuzzParseName(f *testing.F) {
	f.Add(testUUID + ".members-7.byoda.test")
	f.Add("service-ca.service-ca-42.byoda.test")
	f.Add("root-ca.byoda.test")
	f.Fuzz(func(t *testing.T, cn string) {
		n, err := ParseName(cn, testNet)
		if err != nil {
			return
		}
		again, err := ParseName(n.String(), testNet)
		if err != nil || again != n {
			t.Fatalf("%q parsed as %+v, which does not round trip: %+v, %v", cn, n, again, err)
		}
	})
}
