package domaincert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/domaincert/pebbletest"
	"github.com/byoda/byoda-go/internal/testnet"
)

const keySecret = "domaincert-test-secret"

// acmeSetup is Pebble with a DNS server that sends its validations of
// testDomain to a loopback address where the test answers challenges.
type acmeSetup struct {
	pebble *pebbletest.Pebble
	addr   netip.Addr
	port   int
	dir    string
	client *http.Client
}

func startACME(t *testing.T, validity time.Duration) *acmeSetup {
	t.Helper()
	addr := netip.MustParseAddr("127.0.9.1")
	l, err := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	dns := pebbletest.ServeDNS(t, "example.test", map[string]netip.Addr{testDomain: addr})
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: port, DNSServer: dns,
		Validity: validity})
	return &acmeSetup{pebble: p, addr: addr, port: port, dir: t.TempDir(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: p.CAs}}}}
}

// serveChallenges answers src's challenges on the port Pebble validates,
// until the test ends.
func (a *acmeSetup) serveChallenges(t *testing.T, src *Source) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(a.addr.String(), strconv.Itoa(a.port)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: src.HTTPHandler(http.NotFoundHandler())}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// run runs src until the returned function is called.
func run(src *Source) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// waitChange waits for the next change of the certificate.
func waitChange(t *testing.T, ch <-chan struct{}, logs *testnet.Buffer, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(90 * time.Second):
		t.Fatalf("%s: no certificate within 90 seconds; logs:\n%s", what, logs)
	}
}

// verify checks that src's certificate chains to Pebble's root for
// testDomain and returns its serial.
func (a *acmeSetup) verify(t *testing.T, src *Source) string {
	t.Helper()
	c := src.Current()
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: a.pebble.Roots(t),
		Intermediates: inter, DNSName: testDomain}); err != nil {
		t.Fatalf("issued certificate does not verify: %v", err)
	}
	return fmt.Sprintf("%x", c.Leaf.SerialNumber)
}

// TestManagedObtainsStoresAndRenews has Pebble validate the source by
// HTTP-01, checks what the source keeps on disk, sees it renew before
// expiry, and restarts it from disk without a new order.
func TestManagedObtainsStoresAndRenews(t *testing.T) {
	a := startACME(t, 15*time.Second)
	logger, logs := testLogger()
	cfg := ManagedConfig{Domain: testDomain, Dir: a.dir, KeySecret: []byte(keySecret),
		DirectoryURL: a.pebble.DirectoryURL, HTTPClient: a.client,
		Email: "postmaster@example.test", Logger: logger}

	m, err := newManaged(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := m.src
	if src.Current() != nil || !src.Managed() {
		t.Fatal("a new source has a certificate or is not managed")
	}
	a.serveChallenges(t, src)
	changed := src.Subscribe()
	stop := run(src)
	defer stop()

	waitChange(t, changed, logs, "first certificate")
	first := a.verify(t, src)
	want := fmt.Sprintf("Attempting to validate w/ HTTP: http://%s:%d%s", testDomain, a.port,
		challengePrefix)
	if !strings.Contains(a.pebble.Output(), want) || a.pebble.Count("set VALID") != 1 {
		t.Fatalf("pebble did not validate by http-01:\n%s", a.pebble.Output())
	}
	if !strings.Contains(logs.String(), "answered acme http-01 challenge") {
		t.Fatalf("challenge not answered:\n%s", logs)
	}

	for _, name := range []string{AccountKeyFile, KeyFile} {
		data, err := os.ReadFile(filepath.Join(a.dir, name))
		if err != nil || !bytes.HasPrefix(data, []byte("-----BEGIN ENCRYPTED PRIVATE KEY")) {
			t.Fatalf("%s is not an encrypted key file: %v %.40q", name, err, data)
		}
	}

	// Pebble's certificates last 15 seconds: the source renews after 10.
	waitChange(t, changed, logs, "renewed certificate")
	second := a.verify(t, src)
	if second == first {
		t.Fatal("renewal served the same certificate")
	}
	if n := a.pebble.Count("Added order"); n != 2 {
		t.Fatalf("%d orders for two certificates", n)
	}
	if made, valid := a.pebble.Authorizations(); made < 1 || made != valid {
		t.Fatalf("%d of %d authorizations validated by http-01", valid, made)
	}
	stop()

	orders := a.pebble.Count("Added order")
	logger2, logs2 := testLogger()
	cfg.Logger = logger2
	m2, err := newManaged(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, m2.src); got != second {
		t.Fatalf("restart serves %q, want the stored %q", got, second)
	}
	if m2.untilDue() <= 0 {
		t.Fatal("the stored certificate is due at once")
	}
	stop2 := run(m2.src)
	time.Sleep(300 * time.Millisecond)
	stop2()
	if n := a.pebble.Count("Added order"); n != orders {
		t.Fatalf("restart ordered again (%d orders, was %d):\n%s", n, orders, logs2)
	}

	for _, text := range []string{logs.String(), logs2.String()} {
		if strings.Contains(text, keySecret) || strings.Contains(text, "PRIVATE KEY") {
			t.Fatal("a secret was logged")
		}
	}
}

// TestManagedReplacesCertificateOfAnotherCA moves a stored certificate to
// another ACME directory: it is served until the new CA issues one.
func TestManagedReplacesCertificateOfAnotherCA(t *testing.T) {
	a := startACME(t, 0)
	logger, logs := testLogger()
	cfg := ManagedConfig{Domain: testDomain, Dir: a.dir, KeySecret: []byte(keySecret),
		DirectoryURL: a.pebble.DirectoryURL, HTTPClient: a.client, Logger: logger}

	ca := newTestCA(t)
	chainPEM, keyPEM, old := ca.issue(t, testDomain, time.Now().Add(-time.Hour),
		90*24*time.Hour)
	m0, err := newManaged(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parsePair(chainPEM, keyPEM, nil, testDomain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m0.cfg.DirectoryURL = "https://staging.example.test/dir"
	if _, err := m0.keep(key.Certificate, key.PrivateKey.(crypto.Signer)); err != nil {
		t.Fatal(err)
	}

	m, err := newManaged(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, m.src); got != old || !m.stale {
		t.Fatalf("serves %q (stale %v), want the stored %q until replaced", got, m.stale, old)
	}
	a.serveChallenges(t, m.src)
	changed := m.src.Subscribe()
	defer run(m.src)()
	waitChange(t, changed, logs, "replacement")
	if got := a.verify(t, m.src); got == old {
		t.Fatal("still serving the other CA's certificate")
	}
}

// TestManagedRetriesAfterFailure points the source at an ACME server that
// does not answer and checks that it logs the attempt and stops with its
// context.
func TestManagedRetriesAfterFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + l.Addr().String() + "/dir"
	l.Close()

	logger, logs := testLogger()
	src, err := NewManaged(ManagedConfig{Domain: testDomain, Dir: t.TempDir(),
		KeySecret: []byte(keySecret), DirectoryURL: url, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(src)
	for i := 0; i < 200 && !strings.Contains(logs.String(), "retry_in"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if !strings.Contains(logs.String(), "obtaining certificate for the custom domain failed") ||
		!strings.Contains(logs.String(), "attempt=1") {
		t.Fatalf("failure not logged:\n%s", logs)
	}
	if src.Current() != nil {
		t.Fatal("a certificate without a CA")
	}
}
