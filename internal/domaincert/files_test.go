package domaincert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/testnet"
)

const testDomain = "pod.example.test"

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	next int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:   pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, next: 100}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue returns a leaf for name valid from notBefore for lifetime, as a
// PEM chain with the CA, and its key as unencrypted PEM.
func (ca *testCA) issue(t *testing.T, name string, notBefore time.Time,
	lifetime time.Duration) (chainPEM, keyPEM []byte, serial string) {
	t.Helper()
	key := newKey(t)
	ca.next++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.next),
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: notBefore, NotAfter: notBefore.Add(lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return chainPEM, keyPEM, fmt.Sprintf("%x", ca.next)
}

// certbotDir lays out a Let's Encrypt directory as certbot does: the files
// in live/ are symbolic links to numbered files in archive/.
type certbotDir struct {
	t       *testing.T
	root    string
	version int
}

func newCertbotDir(t *testing.T) *certbotDir {
	d := &certbotDir{t: t, root: t.TempDir()}
	for _, sub := range []string{"live", "archive"} {
		if err := os.MkdirAll(filepath.Join(d.root, sub, testDomain), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func (d *certbotDir) live(name string) string {
	return filepath.Join(d.root, "live", testDomain, name)
}

// install writes a new version of the files into archive/ and points the
// links in live/ at it, the chain first, as certbot does.
func (d *certbotDir) install(chainPEM, keyPEM []byte) {
	d.t.Helper()
	d.version++
	for _, f := range []struct {
		name string
		data []byte
	}{{"fullchain", chainPEM}, {"privkey", keyPEM}} {
		target := fmt.Sprintf("%s%d.pem", f.name, d.version)
		path := filepath.Join(d.root, "archive", testDomain, target)
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			d.t.Fatal(err)
		}
		link := d.live(f.name + ".pem")
		tmp := link + ".new"
		if err := os.Symlink(filepath.Join("..", "..", "archive", testDomain, target),
			tmp); err != nil {
			d.t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			d.t.Fatal(err)
		}
	}
}

func testLogger() (*slog.Logger, *testnet.Buffer) {
	b := &testnet.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// served returns the hex serial of what s serves, or "" with none.
func served(t *testing.T, s *Source) string {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: testDomain})
	if errors.Is(err, ErrNoCertificate) {
		return ""
	}
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return fmt.Sprintf("%x", c.Leaf.SerialNumber)
}

func TestFilesServesAndPicksUpRenewal(t *testing.T) {
	ca, dir := newTestCA(t), newCertbotDir(t)
	now := time.Now().Add(-time.Minute)
	chain1, key1, serial1 := ca.issue(t, testDomain, now, 90*24*time.Hour)
	dir.install(chain1, key1)

	logger, logs := testLogger()
	src, err := NewFiles(FilesConfig{Domain: "POD.example.test.", Dir: dir.root,
		Poll: 10 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, src); got != serial1 {
		t.Fatalf("serves serial %q, want %q", got, serial1)
	}
	if src.Managed() || src.Domain() != testDomain {
		t.Fatalf("Managed %v, Domain %q", src.Managed(), src.Domain())
	}

	changed := src.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx)
	}()
	defer func() { cancel(); <-done }()

	chain2, key2, serial2 := ca.issue(t, testDomain, now, 90*24*time.Hour)
	dir.install(chain2, key2)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatalf("renewed files not picked up; logs:\n%s", logs)
	}
	if got := served(t, src); got != serial2 {
		t.Fatalf("after renewal serves %q, want %q", got, serial2)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatal("a key was logged")
	}
}

func TestFilesRefusesBadFiles(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now().Add(-time.Minute)
	good, goodKey, _ := ca.issue(t, testDomain, now, 90*24*time.Hour)
	other, otherKey, _ := ca.issue(t, "other.example.test", now, 90*24*time.Hour)
	expired, expiredKey, _ := ca.issue(t, testDomain, now.Add(-48*time.Hour), time.Hour)

	tests := []struct {
		name       string
		chain, key []byte
		want       string
	}{
		{"key of another certificate", good, otherKey, "does not belong"},
		{"another domain", other, otherKey, "does not cover"},
		{"expired", expired, expiredKey, "expired"},
		{"half-written chain", good[:len(good)/2], goodKey, "incomplete PEM"},
		{"half-written key", good, goodKey[:len(goodKey)/2], "private key"},
		{"empty chain", nil, goodKey, "certificate chain"},
		{"not PEM", []byte("hello"), []byte("world"), "certificate chain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newCertbotDir(t)
			dir.install(tc.chain, tc.key)
			logger, logs := testLogger()
			src, err := NewFiles(FilesConfig{Domain: testDomain, Dir: dir.root,
				Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			if got := served(t, src); got != "" {
				t.Fatalf("serves %q from bad files", got)
			}
			if !strings.Contains(logs.String(), tc.want) ||
				!strings.Contains(logs.String(), "level=WARN") {
				t.Fatalf("log does not say %q:\n%s", tc.want, logs)
			}
			if strings.Contains(logs.String(), "PRIVATE KEY") {
				t.Fatal("a key was logged")
			}
		})
	}
}

func TestFilesMissing(t *testing.T) {
	logger, logs := testLogger()
	src, err := NewFiles(FilesConfig{Domain: testDomain, Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.GetCertificate(&tls.ClientHelloInfo{}); !errors.Is(err,
		ErrNoCertificate) {
		t.Fatalf("GetCertificate without files: %v", err)
	}
	if src.Current() != nil || !strings.Contains(logs.String(), "no such file") {
		t.Fatalf("missing files not reported:\n%s", logs)
	}
}

// TestFilesKeepsOldCertificate replaces good files with bad ones, the way
// a renewal caught half-way looks, and checks that the old certificate
// stays, that the refusal is logged once, and that the good files are
// taken once complete.
func TestFilesKeepsOldCertificate(t *testing.T) {
	ca, dir := newTestCA(t), newCertbotDir(t)
	now := time.Now().Add(-time.Minute)
	chain1, key1, serial1 := ca.issue(t, testDomain, now, 90*24*time.Hour)
	dir.install(chain1, key1)

	logger, logs := testLogger()
	f, err := newFiles(FilesConfig{Domain: testDomain, Dir: dir.root, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	src := f.src

	chain2, key2, serial2 := ca.issue(t, testDomain, now, 90*24*time.Hour)
	steps := []struct {
		name       string
		chain, key []byte
		want       string
	}{
		{"new chain, old key", chain2, key1, serial1},
		{"new chain cut short", chain2[:len(chain2)-40], key2, serial1},
		{"both new", chain2, key2, serial2},
		{"key mismatch after renewal", chain1, key2, serial2},
	}
	for _, st := range steps {
		dir.install(st.chain, st.key)
		for range 3 {
			f.reload()
		}
		if got := served(t, src); got != st.want {
			t.Fatalf("%s: serves %q, want %q; logs:\n%s", st.name, got, st.want, logs)
		}
	}
	if n := strings.Count(logs.String(), "keeping the current certificate"); n != 3 {
		t.Fatalf("%d warnings about bad files, want one per bad version (3):\n%s", n, logs)
	}
}

func TestFilesWarnsBeforeExpiry(t *testing.T) {
	ca, dir := newTestCA(t), newCertbotDir(t)
	chain, key, _ := ca.issue(t, testDomain, time.Now().Add(-80*time.Hour), 90*time.Hour)
	dir.install(chain, key)
	logger, logs := testLogger()
	f, err := newFiles(FilesConfig{Domain: testDomain, Dir: dir.root, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	f.reload()
	if n := strings.Count(logs.String(), "expires soon"); n != 1 {
		t.Fatalf("%d expiry warnings, want 1:\n%s", n, logs)
	}
}

func TestHTTPHandler(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})

	logger, _ := testLogger()
	managed, err := NewManaged(ManagedConfig{Domain: testDomain, Dir: t.TempDir(),
		KeySecret: []byte("secret"), DirectoryURL: "https://127.0.0.1:1/dir",
		Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	done := managed.expect("tok-1", "tok-1.thumb")
	files, err := NewFiles(FilesConfig{Domain: testDomain, Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		src          *Source
		method, path string
		status       int
		body         string
	}{
		{managed, "GET", "/.well-known/acme-challenge/tok-1", 200, "tok-1.thumb"},
		{managed, "HEAD", "/.well-known/acme-challenge/tok-1", 200, "tok-1.thumb"},
		{managed, "POST", "/.well-known/acme-challenge/tok-1", 404, "no such challenge\n"},
		{managed, "GET", "/.well-known/acme-challenge/other", 404, "no such challenge\n"},
		{managed, "GET", "/.well-known/acme-challenge/", 404, "no such challenge\n"},
		{managed, "GET", "/", 418, ""},
		{managed, "GET", "/.well-known/other", 418, ""},
		{files, "GET", "/.well-known/acme-challenge/tok-1", 418, ""},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		tc.src.HTTPHandler(next).ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status || w.Body.String() != tc.body {
			t.Errorf("%s %s (managed %v): %d %q, want %d %q", tc.method, tc.path,
				tc.src.Managed(), w.Code, w.Body, tc.status, tc.body)
		}
	}

	done()
	w := httptest.NewRecorder()
	managed.HTTPHandler(next).ServeHTTP(w, httptest.NewRequest("GET",
		"/.well-known/acme-challenge/tok-1", nil))
	if w.Code != 404 {
		t.Fatalf("challenge answered after it was done: %d", w.Code)
	}
}

func TestSubscribeMergesChanges(t *testing.T) {
	src := newSource(testDomain, nil)
	ch := src.Subscribe()
	c := &tls.Certificate{}
	src.set(c)
	src.set(c)
	<-ch
	select {
	case <-ch:
		t.Fatal("two notifications for changes not read in between")
	default:
	}
	if src.Current() != c {
		t.Fatal("Current is not the last set")
	}
}

func TestRetryWait(t *testing.T) {
	for n, want := range map[int]time.Duration{1: retryMin, 2: 2 * retryMin,
		3: 4 * retryMin, 6: retryMax, 40: retryMax} {
		for range 20 {
			got := retryWait(n, errors.New("failed"))
			if got < want-want/10 || got > want+want/10 {
				t.Fatalf("retryWait(%d) = %v, want %v give or take a tenth", n, got, want)
			}
		}
	}
}
