package pod

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/nginx"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

// selfSigned returns a certificate named cn signed by its own key.
func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: subjectOf(cn),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nginxEscape escapes PEM as nginx's $ssl_client_escaped_cert does.
func nginxEscape(pemData []byte) string {
	return url.PathEscape(string(pemData))
}

func TestReadProxyHeaders(t *testing.T) {
	cert := selfSigned(t, "client.example")
	escaped := nginxEscape(pki.EncodeCert(cert))
	two := nginxEscape(append(pki.EncodeCert(cert), pki.EncodeCert(cert)...))

	type headers map[string]string
	for _, tc := range []struct {
		name   string
		h      headers
		port   string
		certs  int
		client string
		status int
		detail string
	}{
		{name: "nothing", h: headers{}, port: frontHTTPS},
		{name: "443 vhost", h: headers{"X-Byoda-Port": "https", "X-Real-IP": "192.0.2.1"},
			port: frontHTTPS, client: "192.0.2.1"},
		{name: "certificate on the HTTPS port is ignored", h: headers{"X-Byoda-Port": "https",
			"X-Client-SSL-Verify": "SUCCESS", "X-Client-SSL-Cert": escaped}, port: frontHTTPS},
		{name: "failure on the ACME port is ignored", h: headers{"X-Byoda-Port": "http",
			"X-Client-SSL-Verify": "FAILED:x"}, port: frontHTTP},
		{name: "444 vhost", h: headers{"X-Byoda-Port": "pod", "X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": escaped, "X-Real-IP": "2001:db8::7"}, port: frontPod,
			certs: 1, client: "2001:db8::7"},
		{name: "certificate with its chain", h: headers{"X-Byoda-Port": "pod",
			"X-Client-SSL-Verify": "SUCCESS", "X-Client-SSL-Cert": two}, port: frontPod,
			certs: 2},
		{name: "reference vhost with a certificate", h: headers{
			"X-Client-SSL-Verify": "SUCCESS", "X-Client-SSL-Cert": escaped,
			"X-Client-SSL-Subject": "CN=someone.else"}, port: frontPod, certs: 1},
		{name: "reference vhost without a certificate", h: headers{
			"X-Client-SSL-Verify": "NONE"}, port: frontHTTPS},
		{name: "pod port without a certificate", h: headers{"X-Byoda-Port": "pod",
			"X-Client-SSL-Verify": "NONE"}, port: frontPod},
		{name: "mapped address", h: headers{"X-Real-IP": "::ffff:192.0.2.9"},
			port: frontHTTPS, client: "192.0.2.9"},

		{name: "refused by nginx", h: headers{"X-Byoda-Port": "pod",
			"X-Client-SSL-Verify": "FAILED:unable to get local issuer certificate"},
			status: 403, detail: "unable to get local issuer certificate"},
		{name: "refused without a reason", h: headers{"X-Client-SSL-Verify": "FAILED"},
			status: 403, detail: "not accepted by the web server"},
		{name: "unknown verdict", h: headers{"X-Client-SSL-Verify": "success"},
			status: 403, detail: "must be SUCCESS, NONE or FAILED"},
		{name: "verdict without certificate", h: headers{"X-Byoda-Port": "pod",
			"X-Client-SSL-Verify": "SUCCESS"}, status: 403, detail: "did not pass it"},
		{name: "subject alone is not believed", h: headers{"X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Subject": "CN=" + cert.Subject.CommonName}, status: 403,
			detail: "did not pass it"},
		{name: "certificate not PEM", h: headers{"X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": "hello"}, status: 403, detail: "no readable certificate"},
		{name: "certificate badly escaped", h: headers{"X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": "%zz" + escaped}, status: 403, detail: "not URL-escaped"},
		{name: "certificate too long", h: headers{"X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": strings.Repeat("%41", 12000)}, status: 403,
			detail: "longer than"},
		{name: "too many certificates", h: headers{"X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": strings.Repeat(escaped, 9)}, status: 403,
			detail: "more than 8"},
		{name: "unknown port", h: headers{"X-Byoda-Port": "admin"}, status: 400,
			detail: "must be https, pod or http"},
		{name: "bad client address", h: headers{"X-Real-IP": "localhost"}, status: 400,
			detail: "must be an IP address"},
		{name: "control characters are not echoed", h: headers{
			"X-Client-SSL-Verify": "FAILED:\x1b[31mred"}, status: 403, detail: "?[31mred"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.h {
				h.Set(k, v)
			}
			rep, err := readProxyHeaders(h)
			if tc.status != 0 {
				var e *api.Error
				if !errors.As(err, &e) || e.Status != tc.status ||
					!strings.Contains(e.Detail, tc.detail) {
					t.Fatalf("error %v, want %d with %q", err, tc.status, tc.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			client := ""
			if rep.client.IsValid() {
				client = rep.client.String()
			}
			if rep.port != tc.port || len(rep.certs) != tc.certs || client != tc.client {
				t.Fatalf("port %q, %d certificates, client %q; want %q, %d, %q", rep.port,
					len(rep.certs), client, tc.port, tc.certs, tc.client)
			}
		})
	}

	h := http.Header{}
	h.Add("X-Client-SSL-Verify", "NONE")
	h.Add("X-Client-SSL-Verify", "SUCCESS")
	if _, err := readProxyHeaders(h); err == nil || !strings.Contains(err.Error(), "once") {
		t.Fatalf("a header sent twice: %v", err)
	}
}

// staticDomainCert is a custom domain certificate source that holds one
// certificate and answers one ACME challenge.
type staticDomainCert struct {
	cert           *tls.Certificate
	token, keyAuth string
}

func (s *staticDomainCert) Current() *tls.Certificate { return s.cert }

func (s *staticDomainCert) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != acmeChallengePath+s.token {
			next.ServeHTTP(w, r)
			return
		}
		w.Write([]byte(s.keyAuth))
	})
}

// seen is what a port's handler saw of a request.
type seen struct {
	Port    string
	Certs   int
	Client  string
	Proxied []string
}

func TestSharedHandler(t *testing.T) {
	p := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		nil)
	ca := selfSigned(t, "accounts-ca.accounts-ca.byoda.test")
	p.account = &secret{chain: []*x509.Certificate{selfSigned(t, "leaf"), ca}}
	p.shared = &sharedServer{}

	port := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := seen{Port: name, Certs: len(peerCertificates(r))}
			if addr, err := api.ClientAddr(r); err == nil {
				s.Client = addr.String()
			}
			for k := range r.Header {
				if strings.HasPrefix(k, clientSSLPrefix) || k == headerPort {
					s.Proxied = append(s.Proxied, k)
				}
			}
			api.WriteJSON(w, http.StatusOK, s)
		})
	}
	h := p.sharedHandler(port("https"), port("pod"))
	serve := func(remote, path string, headers map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://pod.test"+path, nil)
		r.RemoteAddr = remote
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	forged := map[string]string{"X-Byoda-Port": "pod", "X-Client-SSL-Verify": "SUCCESS",
		"X-Client-SSL-Cert": nginxEscape(pki.EncodeCert(ca)), "X-Real-IP": "192.0.2.1"}

	for _, tc := range []struct {
		name, remote string
		headers      map[string]string
		want         seen
	}{
		{"forged headers from elsewhere", "192.0.2.50:4000", forged,
			seen{Port: "https", Client: "192.0.2.50"}},
		{"forged headers from a neighbour on loopback", "127.0.0.77:4000", forged,
			seen{Port: "https", Client: "127.0.0.77"}},
		{"the trusted proxy", "127.0.0.1:4000", forged,
			seen{Port: "pod", Certs: 2, Client: "192.0.2.1",
				Proxied: []string{"X-Byoda-Port", "X-Client-Ssl-Cert", "X-Client-Ssl-Verify"}}},
		{"the trusted proxy, IPv4 in IPv6", "[::ffff:127.0.0.1]:4000",
			map[string]string{"X-Byoda-Port": "https"},
			seen{Port: "https", Client: "127.0.0.1", Proxied: []string{"X-Byoda-Port"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.remote, "/api/v1/status", tc.headers)
			var got seen
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got.Port != tc.want.Port || got.Certs != tc.want.Certs ||
				got.Client != tc.want.Client || len(got.Proxied) != len(tc.want.Proxied) {
				t.Fatalf("saw %+v, want %+v", got, tc.want)
			}
		})
	}

	w := serve("127.0.0.1:4000", "/api/v1/status", map[string]string{
		"X-Byoda-Port": "pod", "X-Client-SSL-Verify": "FAILED:certificate has expired"})
	if w.Code != 403 || !strings.Contains(w.Body.String(), "certificate has expired") {
		t.Fatalf("refused certificate: %d %s", w.Code, w.Body)
	}
	w = serve("127.0.0.1:4000", "/api/v1/status", map[string]string{"X-Byoda-Port": "http"})
	if w.Code != 404 {
		t.Fatalf("the ACME port beyond challenges: %d %s", w.Code, w.Body)
	}

	// ACME challenges are answered for anyone once there is a source.
	w = serve("192.0.2.50:4000", acmeChallengePath+"tok", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"https"`) {
		t.Fatalf("challenge without a source: %d %s", w.Code, w.Body)
	}
	p.shared.domain = &staticDomainCert{token: "tok", keyAuth: "tok.thumbprint"}
	if w = serve("192.0.2.50:4000", acmeChallengePath+"tok", nil); w.Body.String() !=
		"tok.thumbprint" {
		t.Fatalf("challenge: %d %s", w.Code, w.Body)
	}
	if w = serve("192.0.2.50:4000", acmeChallengePath+"other", nil); w.Code != 404 {
		t.Fatalf("unknown challenge: %d %s", w.Code, w.Body)
	}
}

// TestVhostFiles checks the files written for the web server of a pod in a
// container: paths in the vhosts are under HOST_ROOT_DIR, files under
// ROOT_DIR, keys readable by the owner alone, and files of a membership
// that is gone removed.
func TestVhostFiles(t *testing.T) {
	root, conf := t.TempDir(), t.TempDir()
	accountID := uuid.NewString()
	p := New(Config{Network: testnet.Network, AccountID: accountID, RootDir: root,
		HostRootDir: "/srv/pods/one", HTTPSPort: 443, PodPort: 444, ACMEHTTPPort: 80,
		HTTPPort: 8000, BindAddress: netip.MustParseAddr("0.0.0.0"),
		WebserverConfDir: conf}, nil)
	p.account = &secret{chain: []*x509.Certificate{selfSigned(t, "leaf"),
		selfSigned(t, "accounts-ca.accounts-ca.byoda.test")}, key: ecKey(t)}
	p.shared = &sharedServer{}

	stale := filepath.Join(root, webserverDir, "member-gone.key")
	if err := pki.WriteFile(stale, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, remove, err := p.vhostFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(remove) != 1 || remove[0] != stale {
		t.Fatalf("remove %v, want %s", remove, stale)
	}

	byName := map[string]nginx.File{}
	for _, f := range files {
		byName[filepath.Base(f.Path)] = f
	}
	vhost := string(byName[nginx.AccountFile].Data)
	for _, line := range []string{
		"ssl_certificate     /srv/pods/one/webserver/account-cert.pem;",
		"ssl_certificate_key /srv/pods/one/webserver/account.key;",
		"ssl_client_certificate /srv/pods/one/network-byoda.test/",
		"proxy_pass http://127.0.0.1:8000;",
		"listen 443 ssl",
	} {
		if !strings.Contains(vhost, line) {
			t.Errorf("account.conf lacks %q:\n%s", line, vhost)
		}
	}
	if f := byName[nginx.AccountFile]; filepath.Dir(f.Path) != conf {
		t.Errorf("account.conf goes to %s", f.Path)
	}
	key := byName["account.key"]
	if filepath.Dir(key.Path) != filepath.Join(root, webserverDir) || key.Mode != 0o600 ||
		!strings.HasPrefix(string(key.Data), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("account.key: %s mode %o", key.Path, key.Mode)
	}
	if certs, err := pki.ParseCerts(byName["account-cert.pem"].Data); err != nil ||
		len(certs) != 2 {
		t.Errorf("account-cert.pem holds %d certificates: %v", len(certs), err)
	}
}
