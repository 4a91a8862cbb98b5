package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateAndLoadNetwork(t *testing.T) {
	dir := t.TempDir()
	paths := Paths{Root: dir, Network: testNet}
	password := []byte("correct horse")

	created, err := CreateNetwork(paths, password)
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}

	// The files are where the reference keeps them.
	for _, rel := range []string{
		"network-byoda.test/network-byoda.test-root-ca-cert.pem",
		"network-byoda.test/network-byoda.test-data-cert.pem",
		"network-byoda.test/network-byoda.test-accounts-ca-cert.pem",
		"network-byoda.test/network-byoda.test-services-ca-cert.pem",
		"private/network-byoda.test-root-ca.key",
		"private/network-byoda.test-data.key",
		"private/network-byoda.test-accounts-ca.key",
		"private/network-byoda.test-services-ca.key",
	} {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatalf("missing %s: %v", rel, err)
		}
		if strings.HasSuffix(rel, ".key") && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", rel, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(paths.ServicesDir()); err != nil || !fi.IsDir() {
		t.Errorf("services directory missing: %v", err)
	}

	// The root file is one bare PEM block.
	rootPEM, err := os.ReadFile(paths.RootCACert())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rootPEM), "-----BEGIN CERTIFICATE-----") ||
		strings.Count(string(rootPEM), "BEGIN") != 1 {
		t.Errorf("root CA file is not a single bare PEM block")
	}

	loaded, err := LoadNetwork(paths, password)
	if err != nil {
		t.Fatalf("LoadNetwork: %v", err)
	}
	if !SameCert(loaded.Root, created.Root) ||
		!SameCert(loaded.AccountsCA.Cert, created.AccountsCA.Cert) ||
		!SameCert(loaded.ServicesCA.Cert, created.ServicesCA.Cert) ||
		!SameCert(loaded.DataCert, created.DataCert) {
		t.Fatal("loaded network differs from the created one")
	}
	if bits := loaded.DataCert.PublicKey; bits == nil {
		t.Fatal("no data key")
	}

	if _, err := LoadNetwork(paths, []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("LoadNetwork with a wrong password: %v, want ErrWrongPassword", err)
	}
}

func TestCreateNetworkRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	paths := Paths{Root: dir, Network: testNet}
	if err := WriteFile(paths.AccountsCAKey(), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := CreateNetwork(paths, []byte("pw")); !errors.Is(err, ErrNetworkExists) {
		t.Fatalf("CreateNetwork over an existing key: %v, want ErrNetworkExists", err)
	}
	if _, err := os.Stat(paths.RootCACert()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused CreateNetwork wrote the root CA: %v", err)
	}
	data, err := os.ReadFile(paths.AccountsCAKey())
	if err != nil || string(data) != "x" {
		t.Fatalf("the existing key was changed: %q, %v", data, err)
	}
}

func TestCreateNetworkRefusesBadName(t *testing.T) {
	for _, n := range []string{"", "single", "UPPER.case", "bad_label.net"} {
		if _, err := CreateNetwork(Paths{Root: t.TempDir(), Network: n}, []byte("pw")); err == nil {
			t.Errorf("CreateNetwork(%q) succeeded", n)
		}
	}
}

// TestOpenSSLVerifiesChains checks, with the openssl binary, that a CSR made
// by `openssl req` is signed, and that the result verifies for TLS client
// and server use against the root with its chain: CA certificates without
// extended key usage are what makes this pass.
func TestOpenSSLVerifiesChains(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		skipOutsideCI(t, "openssl not installed: %v", err)
	}

	h := newHierarchy(t, testNet, 7)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "member.key")
	csrPath := filepath.Join(dir, "member.csr")
	cn := MemberName(testNet, testUUID, 7).String()

	out, err := exec.Command(openssl, "req", "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", csrPath,
		"-subj", "/C=SW/ST=SW/L=local/O=memyselfandi/CN="+cn,
		"-addext", "subjectAltName=DNS:"+cn).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}

	csrPEM, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := h.membersCA[7].Sign(csr)
	if err != nil {
		t.Fatalf("signing the openssl CSR: %v", err)
	}

	rootPath := filepath.Join(dir, "root.pem")
	chainPath := filepath.Join(dir, "chain.pem")
	certPath := filepath.Join(dir, "cert.pem")
	writeTestFile(t, rootPath, EncodeCert(h.root.Cert))
	writeTestFile(t, chainPath, EncodeCertChain(h.membersCA[7].IssuerChain()...))
	writeTestFile(t, certPath, EncodeCertChain(cert))

	for _, purpose := range []string{"sslclient", "sslserver"} {
		out, err := exec.Command(openssl, "verify", "-purpose", purpose, "-CAfile", rootPath,
			"-untrusted", chainPath, certPath).CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": OK") {
			t.Errorf("openssl verify -purpose %s: %v\n%s", purpose, err, out)
		}
	}

	// The same leaf with a chain that lacks the members CA does not verify.
	writeTestFile(t, chainPath, EncodeCertChain(h.serviceCA[7].IssuerChain()...))
	out, err = exec.Command(openssl, "verify", "-CAfile", rootPath, "-untrusted", chainPath,
		certPath).CombinedOutput()
	if err == nil {
		t.Errorf("openssl verified a chain without its members CA:\n%s", out)
	}
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeCertChainRoundTrip(t *testing.T) {
	h := newHierarchy(t, testNet, 7)
	chain := append([]*x509.Certificate{h.membersCA[7].Cert}, h.membersCA[7].Chain...)

	data := EncodeCertChain(chain...)
	if !strings.HasPrefix(string(data), "# Issuer <Name(C=SW,ST=SW,L=local,O=memyselfandi,"+
		"CN=service-ca.service-ca-7.byoda.test)>\n# Subject <Name(") {
		t.Fatalf("unexpected comment lines:\n%s", data[:200])
	}

	got, err := ParseCerts(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(chain) {
		t.Fatalf("got %d certificates, want %d", len(got), len(chain))
	}
	for i := range got {
		if !SameCert(got[i], chain[i]) {
			t.Fatalf("certificate %d differs", i)
		}
	}

	if _, err := ParseCerts([]byte("# only a comment\n")); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("ParseCerts of no certificate: %v", err)
	}
}
