// Package pebbletest runs Pebble, Let's Encrypt's ACME test server, on
// loopback for a test, with a DNS server that sends its validations to the
// test's addresses. Pebble is built from the Go module proxy at a fixed
// version the first time and kept in the user's cache directory.
//
// Tests that need Pebble or another outside program skip when it cannot be
// had, except under CI=true, where they fail.
package pebbletest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/dns"
	"github.com/byoda/byoda-go/internal/testnet"
)

// Version is the version of Pebble the tests run.
const Version = "v2.10.3"

const module = "github.com/letsencrypt/pebble/v2/cmd/pebble"

// Unavailable ends a test that needs something this machine lacks: it
// skips, or fails under CI=true, where everything must run.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (the test runs under CI=true)", args...)
}

var (
	buildMu sync.Mutex
	built   string
)

// Binary returns the path of the Pebble program, building it the first
// time.
func Binary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if built != "" {
		return built
	}

	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "byoda-go", "pebble-"+Version)
	bin := filepath.Join(dir, "pebble")
	if _, err := os.Stat(bin); err == nil {
		built = bin
		return bin
	}

	goCmd, err := exec.LookPath("go")
	if err != nil {
		Unavailable(t, "pebbletest: no go command to build Pebble with: %v", err)
	}
	// Each build goes to its own directory and is renamed into place, so
	// that test processes building at once do not see half a binary.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".pebble-build-")
	if err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "install", module+"@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		Unavailable(t, "pebbletest: building Pebble %s failed: %v\n%s", Version, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
	if err := os.Rename(filepath.Join(tmp, "pebble"), bin); err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
	built = bin
	return bin
}

// Options configure a Pebble.
type Options struct {
	// HTTPPort is the port Pebble fetches HTTP-01 challenges from.
	HTTPPort int

	// DNSServer, as ADDRESS:PORT, resolves the names Pebble validates.
	DNSServer string

	// Validity is the lifetime of the certificates Pebble issues; zero
	// leaves Pebble's 90 days.
	Validity time.Duration
}

// Pebble is a running Pebble.
type Pebble struct {
	// DirectoryURL is its ACME directory.
	DirectoryURL string

	// CAFile holds the CA of its HTTPS certificate, and CAs has it.
	CAFile string
	CAs    *x509.CertPool

	mgmt string
	out  *testnet.Buffer
}

// Start runs Pebble until the test ends. Its challenge validations are
// real, without Pebble's random delays, and every order needs a new
// authorization.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	p := &Pebble{out: &testnet.Buffer{}}
	p.writeTLS(t, dir)

	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	mgmt := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	p.DirectoryURL = "https://" + listen + "/dir"
	p.mgmt = "https://" + mgmt

	profile := map[string]any{"description": "test"}
	if opts.Validity > 0 {
		profile["validityPeriod"] = int(opts.Validity / time.Second)
	}
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        freePort(t),
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": profile},
	}}
	data, _ := json.Marshal(config)
	configFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "-config", configFile, "-dnsserver", opts.DNSServer)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0",
		"PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		Unavailable(t, "pebbletest: starting Pebble: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", p.out)
		}
	})
	p.waitReady(t)
	return p
}

// waitReady polls the directory until Pebble answers.
func (p *Pebble) waitReady(t testing.TB) {
	t.Helper()
	c := p.client()
	for range 200 {
		resp, err := c.Get(p.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pebble did not answer at %s within 10 seconds:\n%s", p.DirectoryURL, p.out)
}

// client trusts Pebble's HTTPS certificate.
func (p *Pebble) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.CAs}}}
}

// Output returns what Pebble printed so far.
func (p *Pebble) Output() string { return p.out.String() }

// Count returns how often Pebble printed s.
func (p *Pebble) Count(s string) int { return strings.Count(p.out.String(), s) }

// Authorizations returns how many authorizations Pebble made and how many
// of them a completed challenge made valid. An order may reuse a valid
// authorization instead of making one: Pebble does so one time in a
// hundred even with PEBBLE_AUTHZREUSE=0.
func (p *Pebble) Authorizations() (made, validated int) {
	out := p.out.String()
	for line := range strings.Lines(out) {
		_, rest, ok := strings.Cut(line, "There are now ")
		count, _, isAuthz := strings.Cut(rest, " authorizations in the db")
		if n, err := strconv.Atoi(count); ok && isAuthz && err == nil {
			made = n
		}
	}
	return made, strings.Count(out, "set VALID by completed challenge")
}

// Roots returns the roots of the certificates Pebble issues, read from its
// management interface.
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.client().Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("reading pebble's root: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reading pebble's root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("pebble's root is not PEM: %q", data)
	}
	return pool
}

// writeTLS makes a CA and a certificate for 127.0.0.1 signed by it for
// Pebble's HTTPS listeners.
func (p *Pebble) writeTLS(t testing.TB, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject: pkix.Name{CommonName: "pebbletest CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "localhost"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	p.CAFile = filepath.Join(dir, "ca.pem")
	for name, block := range map[string]*pem.Block{
		p.CAFile:                       {Type: "CERTIFICATE", Bytes: caDER},
		filepath.Join(dir, "cert.pem"): {Type: "CERTIFICATE", Bytes: der},
		filepath.Join(dir, "key.pem"):  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.CAs = x509.NewCertPool()
	p.CAs.AddCert(ca)
}

// ServeDNS answers, until the test ends, for the names of zone given in
// names with their addresses, and returns its address for Options.DNSServer.
func ServeDNS(t testing.TB, zone string, names map[string]netip.Addr) string {
	t.Helper()
	static := map[string][]netip.Addr{}
	for name, addr := range names {
		static[name] = []netip.Addr{addr}
	}
	srv, err := dns.NewServer(dns.Config{Zone: zone, Static: static,
		Lookup: func(context.Context, string) (netip.Addr, bool, error) {
			return netip.Addr{}, false, nil
		}})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	l, err := dns.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, l.UDP, l.TCP)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l.Addr().String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
