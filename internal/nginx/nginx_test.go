package nginx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"flag"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	accountID = "6e1fb0a6-2f45-4b7c-9a2d-0c1f3f0e5a11"
	memberA   = "0b8d8d3e-5f55-4d8e-9a43-1f2a3b4c5d6e"
	memberB   = "f3c2a1b0-9e8d-4c7b-a6f5-e4d3c2b1a090"
)

// site returns a pod with two memberships, as a test changes it.
func site(change func(*Site)) Site {
	s := Site{
		AccountID: accountID,
		HTTPSPort: 443, PodPort: 444, ACMEPort: 80,
		Upstream: netip.MustParseAddrPort("127.0.0.1:8000"),
		Account: Server{Name: accountID + ".accounts.byoda.net",
			Cert:        "/byoda/webserver/account-cert.pem",
			Key:         "/byoda/webserver/account.key",
			ClientCA:    "/byoda/network-byoda.net/network-byoda.net-root-ca-cert.pem",
			VerifyDepth: 4},
	}
	for i, id := range []string{memberA, memberB} {
		sid := []string{"4294967001", "16384"}[i]
		s.Members = append(s.Members, Member{MemberID: id, Server: Server{
			Name:        id + ".members-" + sid + ".byoda.net",
			Cert:        "/byoda/webserver/member-" + id + "-cert.pem",
			Key:         "/byoda/webserver/member-" + id + ".key",
			ClientCA:    "/byoda/webserver/service-" + sid + "-client-ca.pem",
			VerifyDepth: 2}})
	}
	if change != nil {
		change(&s)
	}
	return s
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		site Site
	}{
		{"plain", site(nil)},
		{"custom-domain", site(func(s *Site) {
			s.Listen = netip.MustParseAddr("192.0.2.10")
			s.HTTPSPort, s.PodPort, s.ACMEPort = 8443, 8444, 8080
			s.Upstream = netip.MustParseAddrPort("192.0.2.10:8000")
			s.HTTP2Directive = true
			s.Members = s.Members[:1]
			s.CustomDomain = &CustomDomain{Name: "pod.example.com", ACME: true,
				Cert: "/srv/byoda/webserver/custom-domain-cert.pem",
				Key:  "/srv/byoda/webserver/custom-domain.key"}
		})},
		{"custom-domain-pending", site(func(s *Site) {
			s.Upstream = netip.MustParseAddrPort("[::1]:8000")
			s.Members = nil
			s.CustomDomain = &CustomDomain{Name: "pod.example.com", ACME: true}
		})},
		{"custom-domain-certbot", site(func(s *Site) {
			s.Members = nil
			s.CustomDomain = &CustomDomain{Name: "pod.example.com",
				Cert: "/byoda/webserver/custom-domain-cert.pem",
				Key:  "/byoda/webserver/custom-domain.key"}
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Render(tc.site)
			if err != nil {
				t.Fatal(err)
			}
			want := 1 + len(tc.site.Members)
			if len(files) != want {
				t.Fatalf("%d files, want %d", len(files), want)
			}
			for _, f := range files {
				if f.Mode != 0o644 {
					t.Errorf("%s has mode %o", f.Path, f.Mode)
				}
				if !strings.HasPrefix(string(f.Data), Marker(accountID)+"\n") {
					t.Errorf("%s does not start with the marker", f.Path)
				}
				golden(t, filepath.Join("testdata", tc.name, f.Path+".golden"), f.Data)
			}
		})
	}
}

// golden compares got with the file at path, or writes it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering:\n%s", path, got)
	}
}

// TestRenderRefuses checks that nothing but plain tokens reaches nginx's
// configuration language.
func TestRenderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Site)
		want   string
	}{
		{"space in a path", func(s *Site) { s.Account.Cert = "/my byoda/cert.pem" },
			"not an absolute path"},
		{"variable in a path", func(s *Site) { s.Account.Key = "/byoda/$host.key" },
			"not an absolute path"},
		{"directive in a path", func(s *Site) {
			s.Members[0].ClientCA = "/ca.pem;include /etc/passwd"
		}, "not an absolute path"},
		{"quote in a path", func(s *Site) { s.Account.ClientCA = `/ca".pem` },
			"not an absolute path"},
		{"relative path", func(s *Site) { s.Account.Cert = "byoda/cert.pem" },
			"not an absolute path"},
		{"empty path", func(s *Site) { s.Members[1].Key = "" }, "not an absolute path"},
		{"brace in a name", func(s *Site) { s.Account.Name = "a}b.byoda.net" },
			"not a plain DNS name"},
		{"upper case name", func(s *Site) { s.Members[0].Name = "A.byoda.net" },
			"not a plain DNS name"},
		{"bad custom domain", func(s *Site) {
			s.CustomDomain = &CustomDomain{Name: "pod example.com"}
		}, "not a plain DNS name"},
		{"custom domain without key", func(s *Site) {
			s.CustomDomain = &CustomDomain{Name: "pod.example.com", Cert: "/c.pem"}
		}, "both a certificate and a key"},
		{"bad account id", func(s *Site) { s.AccountID = "x;y" }, "not a plain id"},
		{"bad member id", func(s *Site) { s.Members[0].MemberID = "../../etc/x" },
			"not a plain id"},
		{"port zero", func(s *Site) { s.PodPort = 0 }, "not a port"},
		{"no upstream", func(s *Site) { s.Upstream = netip.AddrPort{} }, "upstream"},
		{"zone", func(s *Site) { s.Listen = netip.MustParseAddr("fe80::1%eth0") }, "zones"},
		{"no verify depth", func(s *Site) { s.Members[0].VerifyDepth = 0 }, "verify depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(site(tc.change))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

func TestClientCAFile(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7),
		Subject:  pkix.Name{CommonName: "service-ca.service-ca-7.byoda.net"},
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	data, err := ClientCAFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	trusted, rest := pem.Decode(data)
	plain, rest := pem.Decode(rest)
	if trusted == nil || plain == nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("want two PEM blocks:\n%s", data)
	}
	if trusted.Type != "TRUSTED CERTIFICATE" || plain.Type != "CERTIFICATE" ||
		!bytes.Equal(plain.Bytes, ca.Raw) {
		t.Fatalf("blocks %s and %s", trusted.Type, plain.Type)
	}

	var cert asn1.RawValue
	aux, err := asn1.Unmarshal(trusted.Bytes, &cert)
	if err != nil || !bytes.Equal(cert.FullBytes, ca.Raw) {
		t.Fatalf("the trusted block does not start with the certificate: %v", err)
	}
	var trust certTrust
	if rest, err := asn1.Unmarshal(aux, &trust); err != nil || len(rest) != 0 {
		t.Fatalf("trust settings: %v, %d bytes left", err, len(rest))
	}
	if len(trust.Trust) != 1 || !trust.Trust[0].Equal(oidClientAuth) {
		t.Fatalf("trusted for %v, want client authentication only", trust.Trust)
	}
}

func TestHasHTTP2Directive(t *testing.T) {
	for version, want := range map[string]bool{
		"nginx version: nginx/1.22.1":                   false,
		"nginx version: nginx/1.25.0":                   false,
		"nginx version: nginx/1.25.1":                   true,
		"nginx version: nginx/1.26.3 (Debian)":          true,
		"nginx version: nginx/1.9.15":                   false,
		"nginx version: nginx/2.0.0":                    true,
		"nginx version: openresty/1.21.4.1":             false,
		"sh: 1: nginx: not found":                       false,
		"":                                              false,
		"nginx version: nginx/1.100.0 built by gcc 7.1": true,
	} {
		if got := HasHTTP2Directive(version); got != want {
			t.Errorf("HasHTTP2Directive(%q) = %v, want %v", version, got, want)
		}
	}
}
