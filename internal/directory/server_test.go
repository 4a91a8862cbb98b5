package directory

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

const testNet = "byoda.test"

var (
	netDir     string
	netOnce    sync.Once
	netShared  *pki.Network
	netDirCert tls.Certificate
	netErr     error
)

// testNetwork creates one network for the whole test binary: making its
// RSA-4096 data key takes a while.
func testNetwork(t testing.TB) (*pki.Network, tls.Certificate) {
	t.Helper()
	netOnce.Do(func() {
		dir, err := os.MkdirTemp("", "byoda-directory-test-")
		if err != nil {
			netErr = err
			return
		}
		netDir = dir
		paths := pki.Paths{Root: dir, Network: testNet}
		password := []byte("test password")
		if _, netErr = pki.CreateNetwork(paths, password); netErr != nil {
			return
		}
		if netShared, netErr = pki.LoadNetwork(paths, password); netErr != nil {
			return
		}

		certs, err := pki.LoadCerts(paths.DirectoryCert())
		if err != nil {
			netErr = err
			return
		}
		key, err := pki.LoadKey(paths.DirectoryKey(), password)
		if err != nil {
			netErr = err
			return
		}
		netDirCert = tls.Certificate{Certificate: [][]byte{certs[0].Raw}, PrivateKey: key}
	})
	if netErr != nil {
		t.Fatalf("creating test network: %v", netErr)
	}
	return netShared, netDirCert
}

func TestMain(m *testing.M) {
	code := m.Run()
	if netDir != "" {
		os.RemoveAll(netDir)
	}
	os.Exit(code)
}

// env is a running directory with its own store.
type env struct {
	t       testing.TB
	net     *pki.Network
	store   dirstore.Store
	baseURL string
	dnsAddr netip.AddrPort
}

func startDirectory(t testing.TB) *env {
	t.Helper()
	network, cert := testNetwork(t)

	store, err := dirstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "dir.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	return startWithStore(t, network, cert, store)
}

func startWithStore(t testing.TB, network *pki.Network, cert tls.Certificate,
	store dirstore.Store) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	e := &env{t: t, net: network, store: store}

	go func() {
		done <- Run(ctx, RunConfig{
			Config:      Config{Network: network, Store: store},
			Listen:      "127.0.0.1:0",
			DNSListen:   "127.0.0.1:0",
			Certificate: cert,
			Ready: func(https net.Addr, dns netip.AddrPort) {
				e.baseURL = "https://" + https.String()
				e.dnsAddr = dns
				close(ready)
			},
		})
	}()

	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("directory did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("directory did not start within 30s")
	}

	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("directory stopped with %v", err)
		}
	})
	return e
}

// identity is a client certificate chain and its key.
type identity struct {
	chain []*x509.Certificate
	key   crypto.Signer
}

// client returns an HTTPS client that trusts the network root, presents id
// when set and dials from source when valid.
func (e *env) client(id *identity, source netip.Addr) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(e.net.Root)
	cfg := &tls.Config{RootCAs: roots, ServerName: "dir." + testNet}
	if id != nil {
		tc := tls.Certificate{PrivateKey: id.key}
		for _, c := range id.chain {
			tc.Certificate = append(tc.Certificate, c.Raw)
		}
		cfg.Certificates = []tls.Certificate{tc}
	}

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if source.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: source.AsSlice()}
	}
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, DialContext: dialer.DialContext},
	}
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

func (e *env) do(c *http.Client, method, path string, body []byte) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.baseURL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, data}
}

// want checks the status of r, and that an error reply has a detail.
func (e *env) want(r reply, status int, what string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	if status >= 400 && r.detail() == "" {
		e.t.Fatalf("%s: error reply without a detail: %s", what, r.body)
	}
}

func csrBody(t testing.TB, name pki.Name, key crypto.Signer) []byte {
	t.Helper()
	csr, err := pki.NewCSR(name, key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"csr": string(csr)})
	return body
}

func ecKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var rsaKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// rsaKey returns an RSA key for data certificates; one is shared by the
// tests to keep them fast, which no check here depends on.
func rsaKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := rsaKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signed reads a certificate reply into an identity with key.
func signed(t testing.TB, r reply, key crypto.Signer) *identity {
	t.Helper()
	var resp certResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("decoding certificate reply: %v", err)
	}
	leaf, err := pki.ParseCerts([]byte(resp.SignedCert))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := pki.ParseCerts([]byte(resp.CertChain))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ParseCerts([]byte(resp.NetworkDataCertChain)); err != nil {
		t.Fatalf("network_data_cert_chain: %v", err)
	}
	return &identity{chain: append(leaf, chain...), key: key}
}

// resolve asks the directory's DNS server for the A record of name.
func (e *env) resolve(name string) (netip.Addr, int) {
	e.t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	c := &mdns.Client{Timeout: 5 * time.Second}

	in, _, err := c.Exchange(m, e.dnsAddr.String())
	if err != nil {
		e.t.Fatalf("dns query for %s: %v", name, err)
	}
	for _, rr := range in.Answer {
		if a, ok := rr.(*mdns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A.To4())
			return addr, in.Rcode
		}
	}
	return netip.Addr{}, in.Rcode
}

func newAccountID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func TestDownloadsAndStatus(t *testing.T) {
	e := startDirectory(t)
	c := e.client(nil, netip.Addr{})

	r := e.do(c, "GET", "/api/v1/status", nil)
	e.want(r, 200, "status")
	if string(bytes.TrimSpace(r.body)) != `{"status":"healthy"}` {
		t.Fatalf("status body %s", r.body)
	}

	r = e.do(c, "GET", "/root-ca.pem", nil)
	e.want(r, 200, "root-ca.pem")
	if !bytes.Equal(r.body, pki.EncodeCert(e.net.Root)) {
		t.Fatal("root-ca.pem is not the root certificate")
	}

	r = e.do(c, "GET", "/root-data.pem", nil)
	e.want(r, 200, "root-data.pem")
	certs, err := pki.ParseCerts(r.body)
	if err != nil || !pki.SameCert(certs[0], e.net.DataCert) {
		t.Fatalf("root-data.pem is not the network data certificate: %v", err)
	}

	e.want(e.do(c, "GET", "/api/v1/nothing", nil), 404, "unknown path")
}

func TestAccountRegistration(t *testing.T) {
	e := startDirectory(t)
	anon := e.client(nil, netip.Addr{})
	id := newAccountID(t)
	name := pki.AccountName(testNet, id)

	if _, rcode := e.resolve(name.String()); rcode != mdns.RcodeNameError {
		t.Fatalf("unregistered account resolves: rcode %d", rcode)
	}

	// A data CSR before the account CSR is refused.
	dataName := pki.Name{Type: pki.AccountData, ID: id, Network: testNet}
	e.want(e.do(anon, "POST", "/api/v1/network/account", csrBody(t, dataName, rsaKey(t))),
		401, "data csr of an unknown account")

	key := ecKey(t)
	r := e.do(anon, "POST", "/api/v1/network/account", csrBody(t, name, key))
	e.want(r, 201, "account csr")
	account := signed(t, r, key)

	v := e.net.Verifier()
	if _, err := v.Verify(account.chain, pki.Want{Types: []pki.IDType{pki.Account},
		Usage: x509.ExtKeyUsageClientAuth}); err != nil {
		t.Fatalf("signed account chain does not verify: %v", err)
	}
	if addr, _ := e.resolve(name.String()); addr.String() != "127.0.0.1" {
		t.Fatalf("account resolves to %v, want 127.0.0.1", addr)
	}

	// Once the account exists, its CSRs need its certificate.
	e.want(e.do(anon, "POST", "/api/v1/network/account", csrBody(t, name, ecKey(t))),
		401, "renewal without a client cert")
	e.want(e.do(anon, "POST", "/api/v1/network/account", csrBody(t, dataName, rsaKey(t))),
		401, "data csr without a client cert")

	withCert := e.client(account, netip.Addr{})
	r = e.do(withCert, "POST", "/api/v1/network/account", csrBody(t, dataName, rsaKey(t)))
	e.want(r, 201, "data csr with the account cert")
	data := signed(t, r, rsaKey(t))
	if _, err := v.Verify(data.chain, pki.Want{Types: []pki.IDType{pki.AccountData}}); err != nil {
		t.Fatalf("account data chain does not verify: %v", err)
	}

	e.want(e.do(withCert, "POST", "/api/v1/network/account", csrBody(t, name, ecKey(t))),
		201, "renewal with the account cert")

	// Another account's certificate does not renew this one.
	otherName := pki.AccountName(testNet, newAccountID(t))
	otherKey := ecKey(t)
	other := signed(t, e.do(anon, "POST", "/api/v1/network/account",
		csrBody(t, otherName, otherKey)), otherKey)
	e.want(e.do(e.client(other, netip.Addr{}), "POST", "/api/v1/network/account",
		csrBody(t, name, ecKey(t))), 403, "renewal with another account's cert")
}

func TestPutAccountReplacesAddress(t *testing.T) {
	e := startDirectory(t)
	id := newAccountID(t)
	name := pki.AccountName(testNet, id)
	key := ecKey(t)
	account := signed(t, e.do(e.client(nil, netip.Addr{}), "POST", "/api/v1/network/account",
		csrBody(t, name, key)), key)

	e.want(e.do(e.client(nil, netip.Addr{}), "PUT", "/api/v1/network/account", nil),
		401, "put without a client cert")

	source := netip.MustParseAddr("127.0.0.2")
	r := e.do(e.client(account, source), "PUT", "/api/v1/network/account", nil)
	e.want(r, 200, "put account")
	if string(bytes.TrimSpace(r.body)) !=
		`{"ipv4_address":"127.0.0.2","ipv6_address":null}` {
		t.Fatalf("put account body %s", r.body)
	}
	if addr, _ := e.resolve(name.String()); addr != source {
		t.Fatalf("account resolves to %v after moving, want %v", addr, source)
	}
}

func TestAccountBadInput(t *testing.T) {
	e := startDirectory(t)
	anon := e.client(nil, netip.Addr{})
	id := newAccountID(t)
	name := pki.AccountName(testNet, id)
	post := func(body []byte) reply {
		return e.do(anon, "POST", "/api/v1/network/account", body)
	}

	csrFor := func(tmpl *x509.CertificateRequest) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, ecKey(t))
		if err != nil {
			t.Fatal(err)
		}
		pemCSR := "-----BEGIN CERTIFICATE REQUEST-----\n" + base64Lines(der) +
			"-----END CERTIFICATE REQUEST-----\n"
		body, _ := json.Marshal(map[string]string{"csr": pemCSR})
		return body
	}
	tmpl := func() *x509.CertificateRequest {
		r := &x509.CertificateRequest{DNSNames: []string{name.String()}}
		r.Subject.CommonName = name.String()
		return r
	}

	tests := []struct {
		name   string
		body   []byte
		status int
		detail string
	}{
		{"malformed JSON", []byte(`{"csr": `), 400, "malformed JSON"},
		{"JSON array", []byte(`[]`), 400, "malformed JSON"},
		{"no csr", []byte(`{}`), 400, `"csr" is required`},
		{"csr not a string", []byte(`{"csr": 5}`), 400, `field "csr"`},
		{"garbage csr", []byte(`{"csr": "hello"}`), 400, "certificate signing request"},
		{"CN outside the grammar", csrFor(func() *x509.CertificateRequest {
			r := tmpl()
			r.Subject.CommonName = "nope.accounts." + testNet
			r.DNSNames = []string{r.Subject.CommonName}
			return r
		}()), 400, "must start with a UUID"},
		{"CN for the wrong CA", csrBody(t, pki.MemberName(testNet, id, 7), ecKey(t)), 400,
			"does not sign member"},
		{"extra subject attribute", csrFor(func() *x509.CertificateRequest {
			r := tmpl()
			r.Subject.OrganizationalUnit = []string{"x"}
			return r
		}()), 400, "subject attribute"},
		{"second SAN", csrFor(func() *x509.CertificateRequest {
			r := tmpl()
			r.DNSNames = append(r.DNSNames, "evil.example.com")
			return r
		}()), 400, "alternative name"},
		{"oversized body", append(append([]byte(`{"csr": "`),
			bytes.Repeat([]byte("A"), 100<<10)...), `"}`...), 413, "larger than"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(tt.body)
			e.want(r, tt.status, tt.name)
			if !strings.Contains(r.detail(), tt.detail) {
				t.Fatalf("detail %q does not mention %q", r.detail(), tt.detail)
			}
		})
	}

	// Nothing was registered by any of them.
	if _, err := e.store.Address(context.Background(), name.String()); !errors.Is(err,
		dirstore.ErrNotFound) {
		t.Fatalf("a refused request registered the account: %v", err)
	}

	req, _ := http.NewRequest("POST", e.baseURL+"/api/v1/network/account",
		strings.NewReader("csr=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Fatalf("form body: status %d, want 415", resp.StatusCode)
	}
}

func base64Lines(der []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	n := 0
	for i := 0; i < len(der); i += 3 {
		var chunk [3]byte
		m := copy(chunk[:], der[i:])
		v := uint(chunk[0])<<16 | uint(chunk[1])<<8 | uint(chunk[2])
		out := []byte{enc[v>>18&63], enc[v>>12&63], enc[v>>6&63], enc[v&63]}
		if m < 3 {
			out[3] = '='
		}
		if m < 2 {
			out[2] = '='
		}
		b.Write(out)
		if n += 4; n == 64 {
			b.WriteByte('\n')
			n = 0
		}
	}
	if n > 0 {
		b.WriteByte('\n')
	}
	return b.String()
}

// BenchmarkPostAccount measures account CSR signing through the whole stack:
// TLS on loopback, JSON, review, signing and the SQLite store.
func BenchmarkPostAccount(b *testing.B) {
	e := startDirectory(b)
	c := e.client(nil, netip.Addr{})
	key := ecKey(b)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = csrBody(b, pki.AccountName(testNet, newAccountID(b)), key)
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", e.baseURL+"/api/v1/network/account",
			bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
