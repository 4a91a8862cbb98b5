package directory

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

// skipOutsideCI skips a test that needs something from outside the project,
// but fails it under CI, where everything must be there.
func skipOutsideCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestOpenSSLAccount has a running directory sign an account CSR made by
// `openssl req`, checks the result with `openssl verify -purpose sslclient`
// against the root and its chain, and resolves the account's name with dig.
func TestOpenSSLAccount(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		skipOutsideCI(t, "openssl not installed: %v", err)
	}
	e := startDirectory(t)
	dir := t.TempDir()
	id := newAccountID(t)
	cn := pki.AccountName(testNet, id).String()
	keyPath := filepath.Join(dir, "account.key")
	csrPath := filepath.Join(dir, "account.csr")

	out, err := exec.Command(openssl, "req", "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", csrPath,
		"-subj", "/C=SW/ST=SW/L=local/O=memyselfandi/CN="+cn,
		"-addext", "subjectAltName=DNS:"+cn,
		"-addext", "keyUsage=critical,digitalSignature",
		"-addext", "extendedKeyUsage=serverAuth,clientAuth").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	csr, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}

	body, _ := json.Marshal(map[string]string{"csr": string(csr)})
	r := e.do(e.client(nil, netip.Addr{}), "POST", "/api/v1/network/account", body)
	e.want(r, 201, "openssl account csr")
	var resp certResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}

	rootPath := filepath.Join(dir, "root.pem")
	chainPath := filepath.Join(dir, "chain.pem")
	certPath := filepath.Join(dir, "cert.pem")
	writeFile(t, rootPath, pki.EncodeCert(e.net.Root))
	writeFile(t, chainPath, []byte(resp.CertChain))
	writeFile(t, certPath, []byte(resp.SignedCert))

	out, err = exec.Command(openssl, "verify", "-purpose", "sslclient", "-CAfile", rootPath,
		"-untrusted", chainPath, certPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify -purpose sslclient: %v\n%s", err, out)
	}

	dig, err := exec.LookPath("dig")
	if err != nil {
		skipOutsideCI(t, "dig not installed (package dnsutils): %v", err)
	}
	out, err = exec.Command(dig, "@"+e.dnsAddr.Addr().String(), "-p",
		strconv.Itoa(int(e.dnsAddr.Port())), "+short", "+time=5", "+tries=1", cn,
		"A").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "127.0.0.1" {
		t.Fatalf("dig %s: %v\n%s", cn, err, out)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTwoDirectoriesOnePostgres runs two directory instances on one
// PostgreSQL database: what one registers, the other serves.
func TestTwoDirectoriesOnePostgres(t *testing.T) {
	dsn := os.Getenv("BYODA_TEST_POSTGRES_DSN")
	if dsn == "" {
		skipOutsideCI(t, "BYODA_TEST_POSTGRES_DSN is not set; run the tests through "+
			"scripts/test to start PostgreSQL")
	}
	network, cert := testNetwork(t)
	ctx := context.Background()

	open := func() dirstore.Store {
		s, err := dirstore.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatalf("opening postgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := startWithStore(t, network, cert, open())
	b := startWithStore(t, network, cert, open())

	id := newAccountID(t)
	name := pki.AccountName(testNet, id)
	key := ecKey(t)
	account := signed(t, a.do(a.client(nil, netip.Addr{}), "POST", "/api/v1/network/account",
		csrBody(t, name, key)), key)

	// The second instance knows the account: a renewal needs its cert.
	b.want(b.do(b.client(nil, netip.Addr{}), "POST", "/api/v1/network/account",
		csrBody(t, name, ecKey(t))), 401, "renewal at the other instance")

	source := netip.MustParseAddr("127.0.0.4")
	b.want(b.do(b.client(account, source), "PUT", "/api/v1/network/account", nil), 200,
		"put at the other instance")
	if addr, _ := a.resolve(name.String()); addr != source {
		t.Fatalf("first instance resolves %s to %v, want %v", name, addr, source)
	}
}
