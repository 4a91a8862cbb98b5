package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
)

// hierarchy is a whole network PKI made for a test, with two services.
type hierarchy struct {
	root, accounts, services *CA
	serviceCA, membersCA     map[uint32]*CA
	appsCA                   map[uint32]*CA
}

// testKey makes a key for a certificate of type t; data keys are RSA-2048
// rather than 4096 to keep tests fast.
func testKey(t testing.TB, typ IDType) crypto.Signer {
	t.Helper()
	if typ.IsData() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a key and a CSR for name and has ca sign it.
func sign(t testing.TB, ca *CA, name Name) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := testKey(t, name.Type)
	csrPEM, err := NewCSR(name, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}

	cert, got, err := ca.Sign(csr)
	if err != nil {
		t.Fatalf("signing %s: %v", name, err)
	}
	if got != name {
		t.Fatalf("signed name %+v, want %+v", got, name)
	}
	return cert, key
}

// subCA signs a CA certificate for name and returns the CA.
func subCA(t testing.TB, parent *CA, name Name) *CA {
	t.Helper()
	cert, key := sign(t, parent, name)
	return &CA{Name: name, Cert: cert, Chain: parent.IssuerChain(), Key: key}
}

func newHierarchy(t testing.TB, network string, sids ...uint32) *hierarchy {
	t.Helper()
	root, err := NewRootCA(network, testKey(t, RootCA))
	if err != nil {
		t.Fatal(err)
	}

	h := &hierarchy{
		root:      root,
		accounts:  subCA(t, root, NewName(AccountsCA, network, 0)),
		services:  subCA(t, root, NewName(ServicesCA, network, 0)),
		serviceCA: map[uint32]*CA{},
		membersCA: map[uint32]*CA{},
		appsCA:    map[uint32]*CA{},
	}
	for _, sid := range sids {
		svc := subCA(t, h.services, NewName(ServiceCA, network, sid))
		h.serviceCA[sid] = svc
		h.membersCA[sid] = subCA(t, svc, NewName(MembersCA, network, sid))
		h.appsCA[sid] = subCA(t, svc, NewName(AppsCA, network, sid))
	}
	return h
}

func (h *hierarchy) verifier() *Verifier {
	return &Verifier{Network: h.root.Name.Network, Root: h.root.Cert}
}

// chainOf returns a leaf signed by ca followed by ca's issuer chain.
func chainOf(leaf *x509.Certificate, ca *CA) []*x509.Certificate {
	return append([]*x509.Certificate{leaf}, ca.IssuerChain()...)
}
