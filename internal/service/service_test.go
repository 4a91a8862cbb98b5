package service

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

const (
	testNet  = "byoda.test"
	testSID  = 4294967001
	password = "service test password"
)

// network is a directory running for one test, with its network's files.
type network struct {
	paths   pki.Paths
	root    *x509.Certificate
	dirURL  string
	dataPEM []byte
}

func startNetwork(t *testing.T) *network {
	t.Helper()
	paths := pki.Paths{Root: t.TempDir(), Network: testNet}
	netSecrets, err := pki.CreateNetwork(paths, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.LoadCerts(paths.DirectoryCert())
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.LoadKey(paths.DirectoryKey(), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	store, err := dirstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- directory.Run(ctx, directory.RunConfig{
			Config:      directory.Config{Network: netSecrets, Store: store},
			Listen:      "127.0.0.1:0",
			Certificate: pki.TLSCertificate(certs, key),
			Ready:       func(a net.Addr, _ netip.AddrPort) { ready <- a.String() },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("directory did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		store.Close()
	})

	return &network{paths: paths, root: netSecrets.Root, dirURL: "https://" + addr}
}

func (n *network) clientConfig() directory.ClientConfig {
	pool := x509.NewCertPool()
	pool.AddCert(n.root)
	return directory.ClientConfig{URL: n.dirURL, Network: testNet, RootCAs: pool}
}

// serviceDir returns a new service root directory holding the network's root.
func (n *network) serviceDir(t *testing.T) pki.Paths {
	t.Helper()
	paths := pki.Paths{Root: t.TempDir(), Network: testNet}
	if err := pki.WriteFile(paths.RootCACert(), pki.EncodeCert(n.root), 0o644); err != nil {
		t.Fatal(err)
	}
	return paths
}

func readContract(t *testing.T, sid uint32, version int, description string) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("testdata", "notes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["service_id"], m["version"] = sid, version
	if description != "" {
		m["description"] = description
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (n *network) initService(t *testing.T, paths pki.Paths, doc []byte) (*Secrets, error) {
	t.Helper()
	return Init(context.Background(), InitConfig{
		Contract:  doc,
		Paths:     paths,
		Password:  []byte(password),
		Directory: n.clientConfig(),
	})
}

func TestInit(t *testing.T) {
	n := startNetwork(t)
	paths := n.serviceDir(t)
	doc := readContract(t, testSID, 1, "")

	secrets, err := n.initService(t, paths, doc)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}

	// Every file of the reference layout is there.
	for _, p := range []string{
		paths.ServiceCACert(testSID), paths.ServiceCAKey(testSID), paths.ServiceCAChain(testSID),
		paths.MembersCACert(testSID), paths.MembersCAKey(testSID), paths.AppsCACert(testSID),
		paths.AppsCAKey(testSID), paths.ServiceCert(testSID), paths.ServiceKey(testSID),
		paths.ServiceDataCert(testSID), paths.ServiceDataKey(testSID),
		paths.ServiceContract(testSID), paths.NetworkDataCert(),
	} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s", p)
		}
	}

	signed, err := os.ReadFile(paths.ServiceContract(testSID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.VerifyContract(signed); err != nil {
		t.Fatalf("the kept contract does not verify: %v", err)
	}

	// Changing any one byte of the signed content breaks a signature.
	i := bytes.Index(signed, []byte("note-taking"))
	tampered := bytes.Clone(signed)
	tampered[i] = 'N'
	if _, err := secrets.VerifyContract(tampered); !errors.Is(err, contract.ErrSignature) {
		t.Fatalf("a changed contract verified: %v", err)
	}

	// A second run finds everything in place and changes nothing.
	before, _ := os.ReadFile(paths.ServiceCACert(testSID))
	if _, err := n.initService(t, paths, doc); err != nil {
		t.Fatalf("second Init: %v", err)
	}
	after, _ := os.ReadFile(paths.ServiceCACert(testSID))
	if !bytes.Equal(before, after) {
		t.Fatal("a second Init replaced the service CA")
	}

	// The network refuses the same version with other content...
	same := readContract(t, testSID, 1, "changed description")
	os.Remove(paths.ServiceContract(testSID))
	_, err = n.initService(t, paths, same)
	var se *directory.StatusError
	if !errors.As(err, &se) || se.Status != 409 || !strings.Contains(se.Detail, "not higher") {
		t.Fatalf("Init of the same version: %v, want a 409 not-higher refusal", err)
	}

	// ...and accepts a higher one.
	if _, err := n.initService(t, paths, readContract(t, testSID, 2, "v2")); err != nil {
		t.Fatalf("Init of version 2: %v", err)
	}
}

func TestInitRefusesTakenServiceID(t *testing.T) {
	n := startNetwork(t)
	if _, err := n.initService(t, n.serviceDir(t), readContract(t, testSID, 1, "")); err != nil {
		t.Fatal(err)
	}

	other := n.serviceDir(t)
	_, err := n.initService(t, other, readContract(t, testSID, 1, ""))
	var se *directory.StatusError
	if !errors.As(err, &se) || se.Status != 409 {
		t.Fatalf("Init of a taken service id: %v, want 409", err)
	}
	if _, err := os.Stat(other.ServiceCACert(testSID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused Init kept a service CA certificate")
	}
}

func TestInitRefusesBadContract(t *testing.T) {
	n := startNetwork(t)
	paths := n.serviceDir(t)
	_, err := n.initService(t, paths, []byte(`{"service_id": 1}`))
	if err == nil {
		t.Fatal("Init accepted a contract without its keys")
	}
	if _, err := os.Stat(paths.PrivateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused contract left keys behind")
	}
}

// running is a service server started for a test.
type running struct {
	*network
	secrets *Secrets
	url     string
}

func startService(t *testing.T, n *network, sid uint32) *running {
	t.Helper()
	paths := n.serviceDir(t)
	secrets, err := n.initService(t, paths, readContract(t, sid, 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	members, err := OpenMembers(context.Background(),
		filepath.Join(paths.ServiceDir(sid), "members.db"))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{
			Config:    Config{Secrets: secrets, Members: members},
			Listen:    "127.0.0.1:0",
			Directory: n.clientConfig(),
			Ready:     func(a net.Addr) { ready <- a.String() },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("service did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service stopped with %v", err)
		}
		members.Close()
	})
	return &running{network: n, secrets: secrets, url: "https://" + addr}
}

func (s *running) client(id *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(s.root)
	cfg := &tls.Config{RootCAs: pool,
		ServerName: fmt.Sprintf("service.service-%d.%s", s.secrets.ServiceID, testNet)}
	if id != nil {
		cfg.Certificates = []tls.Certificate{*id}
	}
	return &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}
}

type reply struct {
	status int
	body   []byte
}

func (r reply) detail() string {
	var d struct {
		Detail string `json:"detail"`
	}
	json.Unmarshal(r.body, &d)
	return d.Detail
}

func (s *running) do(t *testing.T, c *http.Client, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, data}
}

func want(t *testing.T, r reply, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	if status >= 400 && r.detail() == "" {
		t.Fatalf("%s: no detail in %s", what, r.body)
	}
}

func newID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var rsaOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func keyFor(t *testing.T, typ pki.IDType) crypto.Signer {
	t.Helper()
	if typ.IsData() {
		k, err := rsaOnce()
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

// memberCSR posts a CSR for name and returns the certificate chain and key.
func (s *running) memberCSR(t *testing.T, c *http.Client, name pki.Name) (reply,
	*tls.Certificate) {
	t.Helper()
	key := keyFor(t, name.Type)
	csr, err := pki.NewCSR(name, key)
	if err != nil {
		t.Fatal(err)
	}
	r := s.do(t, c, "POST", "/api/v1/service/member", map[string]string{"csr": string(csr)})
	if r.status != 201 {
		return r, nil
	}

	var resp struct {
		SignedCert, CertChain string
	}
	var raw map[string]string
	json.Unmarshal(r.body, &raw)
	resp.SignedCert, resp.CertChain = raw["signed_cert"], raw["cert_chain"]
	chain, err := pki.ParseCerts([]byte(resp.SignedCert + resp.CertChain))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ParseCerts([]byte(raw["service_data_cert_chain"])); err != nil {
		t.Fatalf("service_data_cert_chain: %v", err)
	}
	tc := pki.TLSCertificate(chain, key)
	return r, &tc
}

func TestServeDownloads(t *testing.T) {
	n := startNetwork(t)
	s := startService(t, n, testSID)
	c := s.client(nil)

	r := s.do(t, c, "GET", "/service-contract.json", nil)
	want(t, r, 200, "contract")
	if _, err := s.secrets.VerifyContract(r.body); err != nil {
		t.Fatalf("served contract: %v", err)
	}
	want(t, s.do(t, c, "GET", fmt.Sprintf("/api/v1/service/service/%d", testSID), nil), 200,
		"contract by id")
	want(t, s.do(t, c, "GET", "/api/v1/service/service/7", nil), 404, "other service id")

	r = s.do(t, c, "GET", fmt.Sprintf("/network-%s-service-%d-ca-certchain.pem", testNet,
		testSID), nil)
	want(t, r, 200, "ca chain")
	if certs, err := pki.ParseCerts(r.body); err != nil || len(certs) != 3 ||
		!pki.SameCert(certs[2], s.root) {
		t.Fatalf("ca chain: %d certs, %v", len(certs), err)
	}
	r = s.do(t, c, "GET", fmt.Sprintf("/network-%s-service-%d-data-cert.pem", testNet,
		testSID), nil)
	want(t, r, 200, "data cert")
	want(t, s.do(t, c, "GET", "/api/v1/status", nil), 200, "status")
	want(t, s.do(t, c, "GET", "/member-certs/member-"+newID(t)+"-cert.pem", nil), 404,
		"unknown member cert")
	want(t, s.do(t, c, "GET", "/member-certs/../x", nil), 404, "bad member cert path")
}

func TestMemberLifecycle(t *testing.T) {
	n := startNetwork(t)
	s := startService(t, n, testSID)
	anon := s.client(nil)
	id := newID(t)
	name := pki.MemberName(testNet, id, testSID)
	dataName := pki.Name{Type: pki.MemberData, ID: id, ServiceID: testSID, Network: testNet}

	r, _ := s.memberCSR(t, anon, dataName)
	want(t, r, 401, "data csr before the member csr")

	r, member := s.memberCSR(t, anon, name)
	want(t, r, 201, "member csr")
	v := s.secrets.Verifier()
	chain := certsOf(t, member)
	if _, err := v.Verify(chain, pki.Want{Types: []pki.IDType{pki.Member}, ServiceID: testSID,
		ServiceCA: s.secrets.ServiceCA, Usage: x509.ExtKeyUsageClientAuth}); err != nil {
		t.Fatalf("member chain: %v", err)
	}

	r, _ = s.memberCSR(t, anon, name)
	want(t, r, 401, "renewal without the member cert")
	r, _ = s.memberCSR(t, anon, dataName)
	want(t, r, 401, "data csr without the member cert")

	withCert := s.client(member)
	r, data := s.memberCSR(t, withCert, dataName)
	want(t, r, 201, "data csr with the member cert")

	other := pki.MemberName(testNet, newID(t), testSID)
	r, _ = s.memberCSR(t, withCert, other)
	want(t, r, 403, "csr for another member id")

	r, _ = s.memberCSR(t, anon, pki.MemberName(testNet, newID(t), 7))
	want(t, r, 400, "csr for another service")
	if !strings.Contains(r.detail(), "is for service 7") {
		t.Fatalf("detail %q", r.detail())
	}

	body := map[string]string{"certchain": string(pki.EncodeCertChain(certsOf(t, data)...))}
	path := "/api/v1/service/member/version/1"
	want(t, s.do(t, anon, "PUT", path, body), 401, "register without a cert")
	want(t, s.do(t, withCert, "PUT", "/api/v1/service/member/version/2", body), 400,
		"register for a version the service does not have")
	want(t, s.do(t, withCert, "PUT", path, map[string]string{
		"certchain": string(pki.EncodeCertChain(chain...))}), 400,
		"register with the TLS cert as the data cert")
	want(t, s.do(t, withCert, "PUT", path, []string{"x"}), 400, "register with a bad body")

	r = s.do(t, withCert, "PUT", path, body)
	want(t, r, 200, "register")
	if !strings.Contains(string(r.body), `"ipv4_address":"127.0.0.1"`) {
		t.Fatalf("register reply %s", r.body)
	}

	r = s.do(t, anon, "GET", "/member-certs/member-data-"+id+"-cert.pem", nil)
	want(t, r, 200, "member data cert download")
	if got, _ := pki.ParseCerts(r.body); len(got) == 0 || !pki.SameCert(got[0],
		certsOf(t, data)[0]) {
		t.Fatal("downloaded member data cert is not the registered one")
	}
}

func certsOf(t *testing.T, tc *tls.Certificate) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range tc.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestOpenSSLMemberCSR has a running service sign a member CSR made by
// `openssl req` and checks the result with openssl against the service's CA
// chain, and that it does not verify against another service's CA.
func TestOpenSSLMemberCSR(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required: %v", err)
		}
		t.Skipf("openssl not installed: %v", err)
	}
	// OpenSSL holds common names to the 64 characters of RFC 5280, which a
	// member name of a ten-digit service id exceeds.
	const sid = 42
	n := startNetwork(t)
	s := startService(t, n, sid)
	other := startService(t, n, sid+1)

	dir := t.TempDir()
	cn := pki.MemberName(testNet, newID(t), sid).String()
	out, err := exec.Command(openssl, "req", "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "member.key"), "-out", filepath.Join(dir, "member.csr"),
		"-subj", "/C=SW/ST=SW/L=local/O=memyselfandi/CN="+cn,
		"-addext", "subjectAltName=DNS:"+cn).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	csr, _ := os.ReadFile(filepath.Join(dir, "member.csr"))

	r := s.do(t, s.client(nil), "POST", "/api/v1/service/member",
		map[string]string{"csr": string(csr)})
	want(t, r, 201, "openssl member csr")
	var raw map[string]string
	json.Unmarshal(r.body, &raw)
	certPath := filepath.Join(dir, "member.pem")
	membersCA := filepath.Join(dir, "members-ca.pem")
	writeFile(t, certPath, []byte(raw["signed_cert"]))
	chain, _ := pki.ParseCerts([]byte(raw["cert_chain"]))
	writeFile(t, membersCA, pki.EncodeCertChain(chain[0]))

	verify := func(anchor *x509.Certificate) ([]byte, error) {
		anchorPath := filepath.Join(dir, "anchor.pem")
		writeFile(t, anchorPath, pki.EncodeCert(anchor))
		return exec.Command(openssl, "verify", "-partial_chain", "-purpose", "sslclient",
			"-CAfile", anchorPath, "-untrusted", membersCA, certPath).CombinedOutput()
	}
	if out, err := verify(s.secrets.ServiceCA); err != nil {
		t.Fatalf("openssl verify against the service CA: %v\n%s", err, out)
	}
	if out, err := verify(other.secrets.ServiceCA); err == nil {
		t.Fatalf("the member cert verified against another service's CA:\n%s", out)
	}

	// The whole chain file of the service verifies it to the root.
	out, err = exec.Command(openssl, "verify", "-purpose", "sslclient", "-CAfile",
		s.secrets.Paths.ServiceCAChain(sid), "-untrusted", membersCA,
		certPath).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl verify against the ca-certchain file: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
