package pod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/domaincert/pebbletest"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

const customDomain = "pod.example.test"

func TestDomainRedirect(t *testing.T) {
	tests := []struct {
		port         int
		method, uri  string
		wantLocation string
	}{
		{443, "GET", "/", "https://pod.example.test/"},
		{443, "GET", "/app/x?a=1&b=%20", "https://pod.example.test/app/x?a=1&b=%20"},
		{8443, "POST", "/api/v1/pod/authtoken",
			"https://pod.example.test:8443/api/v1/pod/authtoken"},
		{8443, "GET", "//evil.example/x", "https://pod.example.test:8443//evil.example/x"},
		{443, "GET", "http://other.example/y?z", "https://pod.example.test/y?z"},
		{443, "OPTIONS", "*", "https://pod.example.test/"},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, tc.uri, nil)
		r.Host = "203.0.113.7"
		redirectHandler(customDomain, tc.port).ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tc.wantLocation {
			t.Errorf("%s %s: %d to %q, want 308 to %q", tc.method, tc.uri, w.Code,
				w.Header().Get("Location"), tc.wantLocation)
		}
	}
}

// domainClient trusts roots for the custom domain and follows no redirect.
func domainClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
			ServerName: customDomain}}}
}

// domainSerial does a TLS handshake with the pod's HTTPS port for the
// custom domain, verified against roots, and returns the serial of the
// certificate served.
func (tp *testPod) domainSerial(roots *x509.CertPool) (string, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", hostPort(tp.cfg.BindAddress.String(),
		tp.cfg.HTTPSPort), &tls.Config{RootCAs: roots, ServerName: customDomain})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber), nil
}

// waitDomainSerial polls until the pod serves the custom domain with a
// certificate that verifies and whose serial is not old.
func (tp *testPod) waitDomainSerial(roots *x509.CertPool, old string, within time.Duration,
	logs func() string) string {
	tp.t.Helper()
	var last error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		s, err := tp.domainSerial(roots)
		if err == nil && s != old {
			return s
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	tp.t.Fatalf("no new certificate for %s within %v (last error %v); pod logs:\n%s\n%s",
		customDomain, within, last, tp.logs, logs())
	return ""
}

// TestCustomDomainACME has a pod obtain its custom domain's certificate
// from Pebble by HTTP-01 on ACME_HTTP_PORT, serve it on HTTPS_PORT,
// redirect the rest of ACME_HTTP_PORT, reuse it after a restart, and renew
// it while running. Pebble's certificates last 30 seconds, so the pod
// renews 20 seconds after issuance.
func TestCustomDomainACME(t *testing.T) {
	// Most of the test waits for the renewal: it runs beside the others.
	t.Parallel()
	n := testnet.Start(t, nil, nil)
	cfg := newPodConfig(t, n)
	acmePort := testnet.FreePort(t, cfg.BindAddress.String())
	dns := pebbletest.ServeDNS(t, "example.test", map[string]netip.Addr{
		customDomain: cfg.BindAddress})
	pebble := pebbletest.Start(t, pebbletest.Options{HTTPPort: acmePort, DNSServer: dns,
		Validity: 30 * time.Second})

	cfg.CustomDomain = customDomain
	cfg.ManageCustomDomainCert = true
	cfg.ACMEDirectoryURL = pebble.DirectoryURL
	cfg.ACMERootCAFile = pebble.CAFile
	cfg.ACMEEmail = "postmaster@example.test"
	cfg.ACMEHTTPPort = acmePort
	tp := startPod(t, n, cfg)
	roots := pebble.Roots(t)

	first := tp.waitDomainSerial(roots, "", time.Minute, pebble.Output)
	issued := time.Now()
	want := fmt.Sprintf("Attempting to validate w/ HTTP: http://%s:%d/.well-known/acme-challenge/",
		customDomain, acmePort)
	if !strings.Contains(pebble.Output(), want) || pebble.Count("set VALID") != 1 {
		t.Fatalf("pebble did not validate the pod by http-01:\n%s", pebble.Output())
	}
	if !strings.Contains(tp.logs.String(), "answered acme http-01 challenge") {
		t.Fatalf("the pod did not answer the challenge:\n%s", tp.logs)
	}

	// The custom domain serves the account's routes with the new
	// certificate; the account's name keeps the network's.
	c := domainClient(roots)
	r := tp.do(c, "GET", tp.httpsURL("/api/v1/status"), nil, "")
	if r.status != 200 || r.tls.PeerCertificates[0].VerifyHostname(customDomain) != nil {
		t.Fatalf("status on the custom domain: %d %s", r.status, r.body)
	}
	r = tp.do(tp.client(nil, ""), "GET", tp.httpsURL("/api/v1/status"), nil, "")
	if r.status != 200 || r.tls.PeerCertificates[0].Subject.CommonName != tp.accountName() {
		t.Fatalf("status on the account name: %d %s", r.status, r.body)
	}

	// ACME_HTTP_PORT redirects anything but a challenge.
	base := "http://" + hostPort(cfg.BindAddress.String(), acmePort)
	for path, wantStatus := range map[string]int{"/app/?a=b": 308, "/": 308,
		"/.well-known/acme-challenge/unknown": 404} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = customDomain
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		wantLoc := fmt.Sprintf("https://%s:%d%s", customDomain, cfg.HTTPSPort, path)
		if resp.StatusCode != wantStatus || (wantStatus == 308 && loc != wantLoc) {
			t.Fatalf("GET %s on ACME_HTTP_PORT: %d to %q, want %d to %q", path,
				resp.StatusCode, loc, wantStatus, wantLoc)
		}
	}

	// A restart serves the stored certificate without a new order.
	orders := pebble.Count("Added order")
	tp.stop()
	tp = startPod(t, n, cfg)
	if s, err := tp.domainSerial(roots); err != nil || s != first {
		t.Fatalf("after a restart the pod serves %q (%v), want the stored %q", s, err, first)
	}
	if !strings.Contains(tp.logs.String(), "loaded stored certificate") {
		t.Fatalf("restart did not load the stored certificate:\n%s", tp.logs)
	}
	if since := time.Since(issued); since > 18*time.Second {
		t.Logf("restart took until %v after issuance, close to the renewal", since)
	}

	// The running pod renews before expiry and serves the new certificate.
	second := tp.waitDomainSerial(roots, first, 90*time.Second, pebble.Output)
	if n := pebble.Count("Added order"); n != orders+1 {
		t.Fatalf("%d orders after the renewal, want %d: the restart ordered too", n, orders+1)
	}
	if made, valid := pebble.Authorizations(); made < 1 || made != valid {
		t.Fatalf("%d of %d authorizations validated by http-01:\n%s", valid, made,
			pebble.Output())
	}
	t.Logf("issued %s, renewed as %s in-process %v after issuance", first, second,
		time.Since(issued).Round(time.Second))
}

// TestCustomDomainCertbot has Debian's certbot obtain the custom domain's
// certificate from Pebble into a Let's Encrypt directory that a running
// pod reads, and renew it; the pod serves each without a restart. Before
// the first one the custom domain's handshake fails while the account's
// name works. The pod is given certbot's port as ACME_HTTP_PORT and must
// leave it to certbot.
func TestCustomDomainCertbot(t *testing.T) {
	t.Parallel()
	certbot, err := exec.LookPath("certbot")
	if err != nil {
		pebbletest.Unavailable(t, "certbot is not installed (apt-get install certbot)")
	}
	port := testnet.FreePort(t, "127.0.0.1")
	dns := pebbletest.ServeDNS(t, "example.test", map[string]netip.Addr{
		customDomain: netip.MustParseAddr("127.0.0.1")})
	pebble := pebbletest.Start(t, pebbletest.Options{HTTPPort: port, DNSServer: dns})
	roots := pebble.Roots(t)

	n := testnet.Start(t, nil, nil)
	cfg := newPodConfig(t, n)
	dir := t.TempDir()
	configDir := filepath.Join(dir, "letsencrypt")
	cfg.CustomDomain = customDomain
	cfg.ManageCustomDomainCert = false
	cfg.LetsEncryptDir = configDir
	cfg.CustomDomainPoll = 100 * time.Millisecond
	cfg.ACMEHTTPPort = port
	tp := startPod(t, n, cfg)

	if _, err := tp.domainSerial(roots); err == nil {
		t.Fatal("the custom domain has a certificate before certbot ran")
	}
	if r := tp.do(tp.client(nil, ""), "GET", tp.httpsURL("/readyz"), nil, ""); r.status != 200 {
		t.Fatalf("account name without the custom domain's certificate: %d", r.status)
	}

	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args = append(args, "--non-interactive", "--config-dir", configDir,
			"--work-dir", filepath.Join(dir, "work"), "--logs-dir", filepath.Join(dir, "logs"))
		cmd := exec.CommandContext(ctx, certbot, args...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+pebble.CAFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("certbot %s: %v\n%s\npebble:\n%s", args[0], err, out, pebble.Output())
		}
	}
	liveSerial := func() string {
		t.Helper()
		certs, err := pki.LoadCerts(filepath.Join(configDir, "live", customDomain, "cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", certs[0].SerialNumber)
	}

	run("certonly", "--standalone", "--server", pebble.DirectoryURL, "--agree-tos",
		"--register-unsafely-without-email", "--http-01-port", strconv.Itoa(port),
		"--http-01-address", "127.0.0.1", "-d", customDomain)
	first := tp.waitDomainSerial(roots, "", 30*time.Second, pebble.Output)
	if first != liveSerial() {
		t.Fatalf("pod serves %s, certbot obtained %s", first, liveSerial())
	}

	orders := pebble.Count("Added order")
	run("renew", "--force-renewal", "--no-random-sleep-on-renew")
	second := tp.waitDomainSerial(roots, first, 30*time.Second, pebble.Output)
	if second != liveSerial() {
		t.Fatalf("pod serves %s after renewal, certbot renewed to %s", second, liveSerial())
	}
	if n := strings.Count(tp.logs.String(), "loaded certificate of the custom domain"); n != 2 {
		t.Fatalf("%d certificates loaded, want 2:\n%s", n, tp.logs)
	}
	if n := pebble.Count("Added order"); n != orders+1 {
		t.Fatalf("%d orders after the renewal, want %d", n, orders+1)
	}
	if made, valid := pebble.Authorizations(); made < 1 || made != valid {
		t.Fatalf("%d of %d authorizations of certbot's orders validated by http-01:\n%s",
			valid, made, pebble.Output())
	}
}
