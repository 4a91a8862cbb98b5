package directory

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/pki"
)

// testService is a service registered with a running directory: its service
// CA came from the directory, the rest it made itself.
type testService struct {
	sid       uint32
	ca        *pki.CA
	membersCA *pki.CA
	tls       *identity
	data      *identity
}

func (e *env) newService(t *testing.T, sid uint32) *testService {
	t.Helper()
	key := ecKey(t)
	r := e.do(e.client(nil, netip.Addr{}), "POST", "/api/v1/network/service",
		csrBody(t, pki.NewName(pki.ServiceCA, testNet, sid), key))
	e.want(r, 201, "service ca csr")
	caID := signed(t, r, key)

	ca, err := pki.NewCA(testNet, caID.chain[0], caID.chain[1:], key)
	if err != nil {
		t.Fatal(err)
	}
	s := &testService{sid: sid, ca: ca}
	s.tls = issue(t, ca, pki.NewName(pki.Service, testNet, sid), ecKey(t))
	s.data = issue(t, ca, pki.NewName(pki.ServiceData, testNet, sid), rsaKey(t))

	membersCA := issue(t, ca, pki.NewName(pki.MembersCA, testNet, sid), ecKey(t))
	s.membersCA, err = pki.NewCA(testNet, membersCA.chain[0], membersCA.chain[1:],
		membersCA.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// issue has ca sign a CSR for name with key.
func issue(t *testing.T, ca *pki.CA, name pki.Name, key crypto.Signer) *identity {
	t.Helper()
	csrPEM, err := pki.NewCSR(name, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.Sign(csr)
	if err != nil {
		t.Fatalf("signing %s: %v", name, err)
	}
	return &identity{chain: append([]*x509.Certificate{cert}, ca.IssuerChain()...), key: key}
}

func (s *testService) register(t *testing.T, e *env) reply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{
		"certchain": string(pki.EncodeCertChain(s.data.chain...))})
	return e.do(e.client(s.tls, netip.Addr{}), "PUT",
		fmt.Sprintf("/api/v1/network/service/service_id/%d", s.sid), body)
}

// contractDoc returns a contract of the service at version, signed by it.
func (s *testService) contractDoc(t *testing.T, version int) []byte {
	t.Helper()
	doc := fmt.Sprintf(`{
  "service_id": %d, "version": %d, "name": "test-service",
  "description": "a service for directory tests", "owner": "Byoda tests",
  "website": "https://example.test/", "supportemail": "support@example.test",
  "cors_origins": [], "signatures": {}, "listen_relations": [], "max_query_depth": 1,
  "jsonschema": {"$id": "https://example.test/schema.json", "type": "object",
    "properties": {"note": {"type": "string"}}}
}`, s.sid, version)
	signedDoc, err := contract.Sign([]byte(doc), contract.SignerService, s.data.key,
		s.data.chain[0].Subject.CommonName, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return signedDoc
}

func (s *testService) patch(e *env, doc []byte) reply {
	return e.do(e.client(s.tls, netip.Addr{}), "PATCH",
		fmt.Sprintf("/api/v1/network/service/service_id/%d", s.sid), doc)
}

func TestServiceRegistration(t *testing.T) {
	e := startDirectory(t)
	const sid = 4294929430
	svc := e.newService(t, sid)

	// A second service CA for the same id is refused.
	e.want(e.do(e.client(nil, netip.Addr{}), "POST", "/api/v1/network/service",
		csrBody(t, pki.NewName(pki.ServiceCA, testNet, sid), ecKey(t))), 409,
		"second service ca")

	e.want(svc.register(t, e), 200, "put service")
	addr, _ := e.resolve(fmt.Sprintf("service.service-%d.%s", sid, testNet))
	if addr.String() != "127.0.0.1" {
		t.Fatalf("service resolves to %v", addr)
	}

	stored, err := e.store.Service(context.Background(), sid)
	if err != nil || stored.DataCertChain == nil {
		t.Fatalf("data cert not stored: %v", err)
	}
}

func TestServiceAuthentication(t *testing.T) {
	e := startDirectory(t)
	a := e.newService(t, 100)
	b := e.newService(t, 200)
	path := "/api/v1/network/service/service_id/100"
	body, _ := json.Marshal(map[string]string{
		"certchain": string(pki.EncodeCertChain(a.data.chain...))})

	e.want(e.do(e.client(nil, netip.Addr{}), "PUT", path, body), 401, "no client cert")
	e.want(e.do(e.client(b.tls, netip.Addr{}), "PUT", path, body), 403,
		"another service's cert")
	e.want(e.do(e.client(a.data, netip.Addr{}), "PUT", path, body), 403,
		"the data cert as a client cert")
	e.want(e.do(e.client(a.tls, netip.Addr{}), "PUT",
		"/api/v1/network/service/service_id/300", body), 404, "unknown service")
	e.want(e.do(e.client(a.tls, netip.Addr{}), "PUT",
		"/api/v1/network/service/service_id/x", body), 400, "bad service id")

	// The certchain must be the data cert of this service.
	other, _ := json.Marshal(map[string]string{
		"certchain": string(pki.EncodeCertChain(b.data.chain...))})
	e.want(e.do(e.client(a.tls, netip.Addr{}), "PUT", path, other), 400,
		"another service's data cert")
	tlsChain, _ := json.Marshal(map[string]string{
		"certchain": string(pki.EncodeCertChain(a.tls.chain...))})
	e.want(e.do(e.client(a.tls, netip.Addr{}), "PUT", path, tlsChain), 400,
		"a TLS cert as the data cert")
	e.want(e.do(e.client(a.tls, netip.Addr{}), "PUT", path, []byte(`{"certchain": "x"}`)), 400,
		"garbage certchain")

	stored, err := e.store.Service(context.Background(), 100)
	if err != nil || stored.DataCertChain != nil {
		t.Fatalf("a refused PUT stored a data cert: %v", err)
	}
}

func TestContractSigning(t *testing.T) {
	e := startDirectory(t)
	svc := e.newService(t, 42)
	anon := e.client(nil, netip.Addr{})

	// Without a registered data certificate, there is nothing to verify with.
	r := svc.patch(e, svc.contractDoc(t, 1))
	e.want(r, 409, "patch before put")
	e.want(svc.register(t, e), 200, "put service")

	e.want(e.do(anon, "GET", "/api/v1/network/service/service_id/42", nil), 404,
		"no contract yet")

	r = svc.patch(e, svc.contractDoc(t, 1))
	e.want(r, 200, "patch")
	var review reviewResponse
	if err := json.Unmarshal(r.body, &review); err != nil || review.Status != "ACCEPTED" {
		t.Fatalf("patch reply %s", r.body)
	}

	r = e.do(anon, "GET", "/api/v1/network/service/service_id/42", nil)
	e.want(r, 200, "get contract")
	if err := contract.Verify(r.body, contract.SignerService, svc.data.chain[0]); err != nil {
		t.Fatalf("service signature of the stored contract: %v", err)
	}
	if err := contract.Verify(r.body, contract.SignerNetwork, e.net.DataCert); err != nil {
		t.Fatalf("network signature of the stored contract: %v", err)
	}

	// One changed byte breaks the network signature.
	tampered := bytes.Replace(r.body, []byte("directory tests"), []byte("directory Tests"), 1)
	if err := contract.Verify(tampered, contract.SignerNetwork, e.net.DataCert); err == nil {
		t.Fatal("a tampered contract verified")
	}

	r = e.do(anon, "GET", "/api/v1/network/services", nil)
	e.want(r, 200, "list services")
	var list struct {
		Summaries []serviceSummary `json:"service_summaries"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Summaries) != 1 ||
		list.Summaries[0].ServiceID != 42 || list.Summaries[0].Version != 1 ||
		list.Summaries[0].Name != "test-service" ||
		list.Summaries[0].SupportEmail != "support@example.test" {
		t.Fatalf("service listing %s", r.body)
	}
	e.want(e.do(anon, "GET", "/api/v1/network/services?skip=-1", nil), 400, "negative skip")
	e.want(e.do(anon, "GET", "/api/v1/network/services?count=x", nil), 400, "bad count")

	r = svc.patch(e, svc.contractDoc(t, 1))
	e.want(r, 409, "same version again")
	if !strings.Contains(string(r.body), `"status":"REJECTED"`) {
		t.Fatalf("refusal without REJECTED status: %s", r.body)
	}
	e.want(svc.patch(e, svc.contractDoc(t, 2)), 200, "higher version")
}

func TestContractRefusals(t *testing.T) {
	e := startDirectory(t)
	svc := e.newService(t, 43)
	e.want(svc.register(t, e), 200, "put service")
	other := e.newService(t, 44)
	e.want(other.register(t, e), 200, "put other service")

	good := svc.contractDoc(t, 1)
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		c := map[string]any{}
		json.Unmarshal(good, &c)
		f(c)
		b, _ := json.Marshal(c)
		return b
	}

	tests := []struct {
		name   string
		doc    []byte
		status int
		detail string
	}{
		{"not JSON", []byte("{"), 400, "not a JSON object"},
		{"unsigned", edit(func(c map[string]any) { c["signatures"] = map[string]any{} }),
			400, "service signature is missing"},
		{"tampered", edit(func(c map[string]any) { c["description"] = "changed" }),
			400, "signature"},
		{"extra key", edit(func(c map[string]any) { c["extra"] = 1 }), 400, "unknown [extra]"},
		{"missing key", edit(func(c map[string]any) { delete(c, "website") }), 400,
			"missing [website]"},
		{"other service id", edit(func(c map[string]any) { c["service_id"] = 44 }), 400,
			"does not match"},
		{"network signature present", edit(func(c map[string]any) {
			sigs := c["signatures"].(map[string]any)
			sigs["network"] = sigs["service"]
		}), 400, "already has a network signature"},
		{"signed by another service", other.contractDocFor(t, 43), 400, "signature"},
		{"zero version", edit(func(c map[string]any) { c["version"] = 0 }), 400, "version"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := svc.patch(e, tt.doc)
			e.want(r, tt.status, tt.name)
			if !strings.Contains(r.detail(), tt.detail) {
				t.Fatalf("detail %q does not mention %q", r.detail(), tt.detail)
			}
		})
	}

	stored, err := e.store.Service(context.Background(), 43)
	if err != nil || stored.Contract != nil {
		t.Fatalf("a refused contract was stored: %v", err)
	}

	// Another service's certificate cannot submit for this one.
	e.want(e.do(e.client(other.tls, netip.Addr{}), "PATCH",
		"/api/v1/network/service/service_id/43", good), 403, "other service's cert")
}

// contractDocFor returns a contract claiming service sid, signed by s.
func (s *testService) contractDocFor(t *testing.T, sid uint32) []byte {
	t.Helper()
	orig := s.sid
	s.sid = sid
	defer func() { s.sid = orig }()
	return s.contractDoc(t, 1)
}

func TestMemberRegistration(t *testing.T) {
	e := startDirectory(t)
	svc := e.newService(t, 7)
	attacker := e.newService(t, 8)
	memberID := newAccountID(t)
	name := pki.MemberName(testNet, memberID, 7)
	member := issue(t, svc.membersCA, name, ecKey(t))

	e.want(e.do(e.client(nil, netip.Addr{}), "PUT", "/api/v1/network/member", nil), 401,
		"no client cert")

	source := netip.MustParseAddr("127.0.0.3")
	r := e.do(e.client(member, source), "PUT", "/api/v1/network/member", nil)
	e.want(r, 200, "put member")
	if addr, _ := e.resolve(name.String()); addr != source {
		t.Fatalf("member resolves to %v, want %v", addr, source)
	}

	// A members CA for service 7 minted under service 8's CA is refused.
	forgedKey := ecKey(t)
	forgedCert := forgeMembersCA(t, attacker.ca, 7, forgedKey)
	forgedCA := &pki.CA{Name: pki.NewName(pki.MembersCA, testNet, 7), Cert: forgedCert,
		Chain: attacker.ca.IssuerChain(), Key: forgedKey}
	victim := pki.MemberName(testNet, newAccountID(t), 7)
	forged := issue(t, forgedCA, victim, ecKey(t))
	e.want(e.do(e.client(forged, netip.Addr{}), "PUT", "/api/v1/network/member", nil), 403,
		"member under a forged members CA")
	if _, rcode := e.resolve(victim.String()); rcode != mdns.RcodeNameError {
		t.Fatalf("forged member registered: rcode %d", rcode)
	}

	e.want(e.do(e.client(e.accountIdentity(t), netip.Addr{}), "PUT", "/api/v1/network/member",
		nil), 403, "account cert as a member")
}

// accountIdentity registers a new account and returns its certificate.
func (e *env) accountIdentity(t *testing.T) *identity {
	t.Helper()
	key := ecKey(t)
	return signed(t, e.do(e.client(nil, netip.Addr{}), "POST", "/api/v1/network/account",
		csrBody(t, pki.AccountName(testNet, newAccountID(t)), key)), key)
}

// forgeMembersCA signs, with the service CA parent, a members CA certificate
// named for service sid, as someone holding parent's key could.
func forgeMembersCA(t *testing.T, parent *pki.CA, sid uint32, key crypto.Signer,
) *x509.Certificate {
	t.Helper()
	name := pki.NewName(pki.MembersCA, testNet, sid)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name.String()},
		DNSNames:              []string{name.String()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, key.Public(),
		parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
