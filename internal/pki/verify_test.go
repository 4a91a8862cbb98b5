package pki

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// forgeCA signs a CA certificate for name with parent, bypassing the review a
// real CA does: what an attacker holding parent's key could make.
func forgeCA(t *testing.T, parent *CA, name Name) *CA {
	t.Helper()
	key := testKey(t, name.Type)
	tmpl, err := template(name, key.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, key.Public(), parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Name: name, Cert: cert, Chain: parent.IssuerChain(), Key: key}
}

func TestVerifyChains(t *testing.T) {
	h := newHierarchy(t, testNet, 7, 8)
	other := newHierarchy(t, "other.test", 7)
	v := h.verifier()

	member7, _ := sign(t, h.membersCA[7], MemberName(testNet, testUUID, 7))
	member8, _ := sign(t, h.membersCA[8], MemberName(testNet, testUUID, 8))
	account, _ := sign(t, h.accounts, AccountName(testNet, testUUID))
	service7, _ := sign(t, h.serviceCA[7], NewName(Service, testNet, 7))
	foreign, _ := sign(t, other.membersCA[7], MemberName("other.test", testUUID, 7))

	// An attacker who holds service 8's CA mints a members CA named for
	// service 7, and a member certificate of service 7 under it.
	forgedMembersCA := forgeCA(t, h.serviceCA[8], NewName(MembersCA, testNet, 7))
	forged, _ := sign(t, forgedMembersCA, MemberName(testNet, testUUID, 7))

	// The same attacker mints a second service CA for service 7 under the
	// real services CA, as a directory that did not enforce first come,
	// first served would have.
	rogueServiceCA := forgeCA(t, h.services, NewName(ServiceCA, testNet, 7))
	rogueMembersCA := forgeCA(t, rogueServiceCA, NewName(MembersCA, testNet, 7))
	rogue, _ := sign(t, rogueMembersCA, MemberName(testNet, testUUID, 7))

	member := []IDType{Member}
	tests := []struct {
		name  string
		chain []*x509.Certificate
		want  Want
		ok    bool
	}{
		{"member", chainOf(member7, h.membersCA[7]), Want{Types: member, ServiceID: 7}, true},
		{"member anchored on its service CA", chainOf(member7, h.membersCA[7]),
			Want{Types: member, ServiceID: 7, ServiceCA: h.serviceCA[7].Cert}, true},
		{"member as client", chainOf(member7, h.membersCA[7]),
			Want{Types: member, ServiceID: 7, Usage: x509.ExtKeyUsageClientAuth}, true},
		{"member of another service", chainOf(member8, h.membersCA[8]),
			Want{Types: member, ServiceID: 7}, false},
		{"member, any service", chainOf(member8, h.membersCA[8]),
			Want{Types: member, AnyService: true}, true},
		{"member anchored on another service's CA", chainOf(member7, h.membersCA[7]),
			Want{Types: member, ServiceID: 7, ServiceCA: h.serviceCA[8].Cert}, false},
		{"forged members CA under another service", chainOf(forged, forgedMembersCA),
			Want{Types: member, ServiceID: 7}, false},
		{"forged members CA, any service", chainOf(forged, forgedMembersCA),
			Want{Types: member, AnyService: true}, false},
		{"rogue service CA, anchored", chainOf(rogue, rogueMembersCA),
			Want{Types: member, ServiceID: 7, ServiceCA: h.serviceCA[7].Cert}, false},
		{"member of another network", chainOf(foreign, other.membersCA[7]),
			Want{Types: member, ServiceID: 7}, false},
		{"member without its chain", []*x509.Certificate{member7},
			Want{Types: member, ServiceID: 7}, false},
		{"member, chain in reverse order", []*x509.Certificate{member7,
			h.services.Cert, h.serviceCA[7].Cert, h.membersCA[7].Cert},
			Want{Types: member, ServiceID: 7}, true},
		{"account", chainOf(account, h.accounts), Want{Types: []IDType{Account}}, true},
		{"account where a member is wanted", chainOf(account, h.accounts),
			Want{Types: member, ServiceID: 7}, false},
		{"service", chainOf(service7, h.serviceCA[7]),
			Want{Types: []IDType{Service}, ServiceID: 7}, true},
		{"service of another id", chainOf(service7, h.serviceCA[7]),
			Want{Types: []IDType{Service}, ServiceID: 8}, false},
		{"members CA as a member", []*x509.Certificate{h.membersCA[7].Cert,
			h.serviceCA[7].Cert, h.services.Cert}, Want{Types: member, ServiceID: 7}, false},
		{"empty", nil, Want{Types: member}, false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.chain, tt.want)
			if tt.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrUntrusted) {
				t.Fatalf("Verify err = %v, want ErrUntrusted", err)
			}
		})
	}
}

func TestVerifyExpired(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	member, _ := sign(t, h.membersCA[7], MemberName(testNet, testUUID, 7))
	v := h.verifier()
	v.Now = func() time.Time { return time.Now().Add(400 * day) }

	if _, err := v.Verify(chainOf(member, h.membersCA[7]),
		Want{Types: []IDType{Member}, ServiceID: 7}); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("Verify of an expired certificate: %v, want ErrUntrusted", err)
	}
}

// TestByodaNetRoot reads the RSA root and network data certificate of the
// public byoda.net network.
func TestByodaNetRoot(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "byoda.net")
	roots, err := LoadCerts(filepath.Join(dir, "network-byoda.net-root-ca-cert.pem"))
	if err != nil {
		skipOutsideCI(t, "byoda.net test data not found: %v", err)
	}
	data, err := LoadCerts(filepath.Join(dir, "network-byoda.net-data-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}

	if name, err := ParseName(roots[0].Subject.CommonName, "byoda.net"); err != nil ||
		name.Type != RootCA {
		t.Fatalf("root name %+v, %v", name, err)
	}

	v := &Verifier{Network: "byoda.net", Root: roots[0],
		Now: func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }}
	name, err := v.Verify(data, Want{Types: []IDType{NetworkData}})
	if err != nil {
		t.Fatalf("Verify network data cert: %v", err)
	}
	if name.String() != "network.network-data.byoda.net" {
		t.Fatalf("name = %s", name)
	}

	v.Now = nil
	if _, err := v.Verify(data, Want{Types: []IDType{NetworkData}}); err == nil {
		t.Fatal("the 2025-expired network data cert verified today")
	}
}

// skipOutsideCI skips a test that lacks something from outside the project,
// but fails it under CI, where everything must be there.
func skipOutsideCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
