package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCAAcceptance signs a CSR of every type with every CA and checks that
// exactly the pairs of the policy are signed.
func TestCAAcceptance(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	cas := map[IDType]*CA{
		RootCA: h.root, AccountsCA: h.accounts, ServicesCA: h.services,
		ServiceCA: h.serviceCA[7], MembersCA: h.membersCA[7], AppsCA: h.appsCA[7],
	}
	allowed := map[IDType][]IDType{
		RootCA:     {AccountsCA, ServicesCA, NetworkData},
		AccountsCA: {Account, AccountData},
		ServicesCA: {ServiceCA},
		ServiceCA:  {MembersCA, AppsCA, Service, ServiceData},
		MembersCA:  {Member, MemberData},
		AppsCA:     {App, AppData},
	}

	for caType, ca := range cas {
		for typ := AccountsCA; typ <= AppData; typ++ {
			name := Name{Type: typ, Network: testNet, ServiceID: 7}
			if typ.HasUUID() {
				name.ID = testUUID
			}
			if !typ.ServiceScoped() {
				name.ServiceID = 0
			}

			t.Run(caType.String()+"/"+typ.String(), func(t *testing.T) {
				csrPEM, err := NewCSR(name, testKey(t, typ))
				if err != nil {
					t.Fatal(err)
				}
				csr, err := ParseCSR(csrPEM)
				if err != nil {
					t.Fatal(err)
				}

				_, got, err := ca.Sign(csr)
				want := slices.Contains(allowed[caType], typ)
				if want && (err != nil || got != name) {
					t.Fatalf("Sign = %+v, %v; want %s signed", got, err, name)
				}
				if !want && !errors.Is(err, ErrBadCSR) {
					t.Fatalf("Sign err = %v, want ErrBadCSR", err)
				}
			})
		}
	}
}

// csrTemplate returns a CSR template for name that NewCSR would make.
func csrTemplate(name Name) *x509.CertificateRequest {
	return &x509.CertificateRequest{
		Subject:  subject(name.String()),
		DNSNames: []string{name.String()},
	}
}

func makeCSR(t *testing.T, tmpl *x509.CertificateRequest, key crypto.Signer,
) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestReviewRefuses(t *testing.T) {
	h := newHierarchy(t, testNet, 7, 8)
	member := MemberName(testNet, testUUID, 7)
	ecKey := testKey(t, Member)

	tests := []struct {
		name   string
		ca     *CA
		tmpl   func() *x509.CertificateRequest
		key    crypto.Signer
		reason string
	}{
		{"extra OU attribute", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.Subject.OrganizationalUnit = []string{"x"}
			return r
		}, ecKey, "subject attribute 2.5.4.11"},
		{"email attribute", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.Subject.ExtraNames = []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@b.c"}}
			return r
		}, ecKey, "subject attribute 1.2.840.113549.1.9.1"},
		{"no common name", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.Subject.CommonName = ""
			return r
		}, ecKey, "exactly one common name"},
		{"second SAN", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.DNSNames = append(r.DNSNames, "evil.example.com")
			return r
		}, ecKey, "exactly 1 DNS"},
		{"no SAN", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.DNSNames = nil
			return r
		}, ecKey, "exactly 1 DNS"},
		{"SAN not the CN", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.DNSNames = []string{"x.members-7.byoda.test"}
			return r
		}, ecKey, "is not the common name"},
		{"IP SAN", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			return r
		}, ecKey, "only DNS names"},
		{"CN outside the grammar", h.membersCA[7], func() *x509.CertificateRequest {
			return csrTemplate(Name{Type: Member, ID: "nope", ServiceID: 7, Network: testNet})
		}, ecKey, "must start with a UUID"},
		{"CN of another network", h.membersCA[7], func() *x509.CertificateRequest {
			return csrTemplate(MemberName("other.test", testUUID, 7))
		}, ecKey, "not in network"},
		{"CN for the wrong CA", h.membersCA[7], func() *x509.CertificateRequest {
			return csrTemplate(AccountName(testNet, testUUID))
		}, ecKey, "does not sign account"},
		{"member of another service", h.membersCA[7], func() *x509.CertificateRequest {
			return csrTemplate(MemberName(testNet, testUUID, 8))
		}, ecKey, "is for service 8"},
		{"members CA of another service", h.serviceCA[7], func() *x509.CertificateRequest {
			return csrTemplate(NewName(MembersCA, testNet, 8))
		}, ecKey, "is for service 8"},
		{"data cert with an EC key", h.membersCA[7], func() *x509.CertificateRequest {
			return csrTemplate(Name{Type: MemberData, ID: testUUID, ServiceID: 7,
				Network: testNet})
		}, ecKey, "needs an RSA key"},
		{"sha384 signature", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			r.SignatureAlgorithm = x509.ECDSAWithSHA384
			return r
		}, ecKey, "signature algorithm"},
		{"leaf asking to be a CA", h.membersCA[7], func() *x509.CertificateRequest {
			r := csrTemplate(member)
			bc, _ := asn1.Marshal(basicConstraints{IsCA: true, MaxPathLen: -1})
			r.ExtraExtensions = []pkix.Extension{{Id: oidExtBasicConstr, Critical: true,
				Value: bc}}
			return r
		}, ecKey, "cannot be a CA"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := makeCSR(t, tt.tmpl(), tt.key)
			_, err := tt.ca.Review(csr)
			if !errors.Is(err, ErrBadCSR) {
				t.Fatalf("Review err = %v, want ErrBadCSR", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Review err = %q, want it to mention %q", err, tt.reason)
			}
		})
	}
}

func TestReviewSmallRSAKey(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	key, err := GenerateRSAKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	name := Name{Type: MemberData, ID: testUUID, ServiceID: 7, Network: testNet}
	csr := makeCSR(t, csrTemplate(name), key)

	if _, err := h.membersCA[7].Review(csr); err == nil ||
		!strings.Contains(err.Error(), "too small") {
		t.Fatalf("Review err = %v, want a too-small key error", err)
	}
}

func TestParseCSRRefusesGarbage(t *testing.T) {
	tests := map[string][]byte{
		"empty":      nil,
		"not PEM":    []byte("hello"),
		"cert block": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
		"bad DER": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST",
			Bytes: []byte{0x30, 0x03, 1, 2, 3}}),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseCSR(data); !errors.Is(err, ErrBadCSR) {
				t.Fatalf("ParseCSR err = %v, want ErrBadCSR", err)
			}
		})
	}

	// A request whose signature does not match its content.
	h := newHierarchy(t, testNet)
	csrPEM, err := NewCSR(AccountName(testNet, testUUID), testKey(t, Account))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	block.Bytes[len(block.Bytes)-5] ^= 0xff
	if _, err := ParseCSR(pem.EncodeToMemory(block)); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("ParseCSR of a tampered request: %v, want ErrBadCSR", err)
	}
	_ = h
}

// TestSigningProfiles checks what each kind of certificate carries.
func TestSigningProfiles(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	member, _ := sign(t, h.membersCA[7], MemberName(testNet, testUUID, 7))
	memberData, _ := sign(t, h.membersCA[7],
		Name{Type: MemberData, ID: testUUID, ServiceID: 7, Network: testNet})

	tests := []struct {
		name       string
		cert       *x509.Certificate
		isCA       bool
		maxPathLen int
		keyUsage   x509.KeyUsage
		extUsage   []x509.ExtKeyUsage
		validity   time.Duration
	}{
		{"root", h.root.Cert, true, -1, caUsage, nil, 36500 * day},
		{"accounts CA", h.accounts.Cert, true, 0, caUsage, nil, 3650 * day},
		{"services CA", h.services.Cert, true, 2, caUsage, nil, 5840 * day},
		{"service CA", h.serviceCA[7].Cert, true, 1, caUsage, nil, 5475 * day},
		{"members CA", h.membersCA[7].Cert, true, 0, caUsage, nil, 1825 * day},
		{"member", member, false, -1, tlsUsage, tlsExtUsage, 365 * day},
		{"member data", memberData, false, -1, dataUsage, nil, 1095 * day},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cert
			if c.IsCA != tt.isCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA = %v, want %v", c.IsCA, tt.isCA)
			}
			if tt.isCA && (c.MaxPathLen != tt.maxPathLen ||
				(tt.maxPathLen == 0) != c.MaxPathLenZero) {
				t.Errorf("MaxPathLen = %d (zero %v), want %d", c.MaxPathLen, c.MaxPathLenZero,
					tt.maxPathLen)
			}
			if c.KeyUsage != tt.keyUsage {
				t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, tt.keyUsage)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.extUsage) {
				t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, tt.extUsage)
			}
			if got := c.NotAfter.Sub(c.NotBefore) - clockSkew; got != tt.validity {
				t.Errorf("validity = %v, want %v", got, tt.validity)
			}
			if !slices.Equal(c.DNSNames, []string{c.Subject.CommonName}) {
				t.Errorf("DNSNames = %v, want only the CN", c.DNSNames)
			}
			if len(c.SubjectKeyId) == 0 {
				t.Error("no subject key id")
			}
			want := "C=SW, ST=SW, L=local, O=memyselfandi, CN=" + c.Subject.CommonName
			if got := opensslStyle(c.Subject); got != want {
				t.Errorf("subject = %q, want %q", got, want)
			}
		})
	}
}

func opensslStyle(n pkix.Name) string {
	return "C=" + n.Country[0] + ", ST=" + n.Province[0] + ", L=" + n.Locality[0] +
		", O=" + n.Organization[0] + ", CN=" + n.CommonName
}

// TestValidityClampedToIssuer checks that no certificate outlives its CA.
func TestValidityClampedToIssuer(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	late := time.Now().Add(1820 * day)
	h.membersCA[7].Now = func() time.Time { return late }

	member, _ := sign(t, h.membersCA[7], MemberName(testNet, testUUID, 7))
	if !member.NotAfter.Equal(h.membersCA[7].Cert.NotAfter) {
		t.Fatalf("member NotAfter %v, want the CA's %v", member.NotAfter,
			h.membersCA[7].Cert.NotAfter)
	}
}

func TestNewCARefusesMismatch(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	if _, err := NewCA(testNet, h.accounts.Cert, nil, h.services.Key); err == nil {
		t.Fatal("NewCA accepted a key of another CA")
	}
	member, key := sign(t, h.membersCA[7], MemberName(testNet, testUUID, 7))
	if _, err := NewCA(testNet, member, nil, key); err == nil {
		t.Fatal("NewCA accepted a member certificate")
	}
	if _, err := NewCA(testNet, h.accounts.Cert, nil, h.accounts.Key); err != nil {
		t.Fatalf("NewCA: %v", err)
	}
}
