package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/pod"
)

// Secrets that must never show in an error or a log line.
const (
	testKeySecret     = "pks-never-print-me"
	testAccountSecret = "acs-never-print-me"
)

const testAccountID = "6e1fb0a6-2f45-4b7c-9a2d-0c1f3f0e5a11"

// podEnv returns a valid environment for a pod in a fresh ROOT_DIR, with
// vars added; an empty value in vars unsets a variable.
func podEnv(t *testing.T, vars map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"PRIVATE_KEY_SECRET": testKeySecret,
		"ACCOUNT_SECRET":     testAccountSecret,
		"ACCOUNT_ID":         testAccountID,
		"ROOT_DIR":           t.TempDir(),
	}
	maps.Copy(env, vars)
	return env
}

// regularFile returns a file that is not a directory.
func regularFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPodConfigErrors(t *testing.T) {
	file := regularFile(t)
	badHash := "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

	tests := []struct {
		vars map[string]string
		want string // the variable the error must name
	}{
		{map[string]string{"NETWORK": "Byoda.NET"}, "NETWORK"},
		{map[string]string{"NETWORK": "nodots"}, "NETWORK"},
		{map[string]string{"ACCOUNT_ID": "not-a-uuid"}, "ACCOUNT_ID must be a UUID"},
		{map[string]string{"ACCOUNT_SECRET": badHash}, "ACCOUNT_SECRET"},
		{map[string]string{"ACCOUNT_SECRET": "$argon2i$whatever"}, "ACCOUNT_SECRET"},
		{map[string]string{"ACCOUNT_USERNAME": "two words"}, "ACCOUNT_USERNAME"},
		{map[string]string{"ACCOUNT_USERNAME": strings.Repeat("u", 65)}, "ACCOUNT_USERNAME"},
		{map[string]string{"PRIVATE_KEY_SECRET": ""}, "PRIVATE_KEY_SECRET must be set"},
		{map[string]string{"ROOT_DIR": file}, "ROOT_DIR must be a directory"},
		{map[string]string{"HTTPS_PORT": "x"},
			`HTTPS_PORT must be a port from 1 to 65535, not "x"`},
		{map[string]string{"HTTPS_PORT": "0"}, "HTTPS_PORT"},
		{map[string]string{"POD_PORT": "65536"}, "POD_PORT"},
		{map[string]string{"POD_PORT": "-1"}, "POD_PORT"},
		{map[string]string{"SERVICE_PORT": "443x"}, "SERVICE_PORT"},
		{map[string]string{"HTTPS_PORT": "8443", "POD_PORT": "8443"},
			"HTTPS_PORT and POD_PORT must differ"},
		{map[string]string{"BIND_ADDRESS": "localhost"}, "BIND_ADDRESS must be an IP"},
		{map[string]string{"BIND_ADDRESS": "fe80::1%eth0"}, "BIND_ADDRESS"},
		{map[string]string{"DIRECTORY_URL": "http://dir.byoda.net"}, "DIRECTORY_URL"},
		{map[string]string{"DIRECTORY_URL": "https://dir.byoda.net/api"}, "DIRECTORY_URL"},
		{map[string]string{"DIRECTORY_URL": "dir.byoda.net"}, "DIRECTORY_URL"},
		{map[string]string{"DNS_SERVER": "ns.byoda.net:53"}, "DNS_SERVER"},
		{map[string]string{"DNS_SERVER": "127.0.0.1:0"}, "DNS_SERVER"},
		{map[string]string{"DNS_SERVER": "127.0.0.1:dns"}, "DNS_SERVER"},
		{map[string]string{"NETWORK_ROOT_CA": "/nonexistent/root-ca.pem"}, "NETWORK_ROOT_CA"},
		{map[string]string{"NETWORK_ROOT_CA": strings.Repeat("ab", 31) + "a"},
			"NETWORK_ROOT_CA"},
		{map[string]string{"NETWORK_ROOT_CA": file}, "NETWORK_ROOT_CA"},
		{map[string]string{"JOIN_SERVICE_IDS": "1,12a"},
			`JOIN_SERVICE_IDS: "12a" is not a service id`},
		{map[string]string{"JOIN_SERVICE_IDS": "-1"}, "JOIN_SERVICE_IDS"},
		{map[string]string{"JOIN_SERVICE_IDS": "4294967296"}, "JOIN_SERVICE_IDS"},
		{map[string]string{"JOIN_SERVICE_IDS": "01"}, "JOIN_SERVICE_IDS"},
		{map[string]string{"LOGLEVEL": "verbose"}, "LOGLEVEL"},
		{map[string]string{"LOGDIR": file}, "LOGDIR must be a directory"},
	}

	for _, tt := range tests {
		name := strings.Join(slices.Sorted(maps.Keys(tt.vars)), "+")
		t.Run(name, func(t *testing.T) {
			env := podEnv(t, tt.vars)
			_, err := parsePodConfig(fakeEnv(env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("one bad value gave more than one line:\n%v", err)
			}
			checkNoSecrets(t, err.Error(), env)

			if _, err := os.Stat(filepath.Join(env["ROOT_DIR"], accountIDFile)); err == nil {
				t.Error("a refused configuration wrote the account id file")
			}
		})
	}
}

// checkNoSecrets fails if text shows the value of a secret variable of env.
func checkNoSecrets(t *testing.T, text string, env map[string]string) {
	t.Helper()
	for _, name := range []string{"PRIVATE_KEY_SECRET", "ACCOUNT_SECRET"} {
		if v := env[name]; v != "" && strings.Contains(text, v) {
			t.Errorf("the value of %s shows in:\n%s", name, text)
		}
	}
}

func TestPodConfigReportsEveryError(t *testing.T) {
	env := podEnv(t, map[string]string{"HTTPS_PORT": "x", "BIND_ADDRESS": "y",
		"JOIN_SERVICE_IDS": "z", "PRIVATE_KEY_SECRET": ""})
	_, err := parsePodConfig(fakeEnv(env))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}

	lines := strings.Split(err.Error(), "\n")
	for i, name := range []string{"PRIVATE_KEY_SECRET", "HTTPS_PORT", "BIND_ADDRESS",
		"JOIN_SERVICE_IDS"} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], name) {
			t.Errorf("line %d does not name %s:\n%v", i+1, name, err)
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d lines for 4 bad values:\n%v", len(lines), err)
	}
}

func TestPodConfigDefaults(t *testing.T) {
	// readPodEnv touches no disk, so ROOT_DIR can keep its default here.
	cfg, err := readPodEnv(fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": testKeySecret}))
	if err != nil {
		t.Fatal(err)
	}
	want := pod.Config{
		Network:          "byoda.net",
		PrivateKeySecret: []byte(testKeySecret),
		RootDir:          "/byoda",
		HTTPSPort:        443,
		PodPort:          444,
		ServicePort:      443,

		HTTPPort:               8000,
		WebserverConfDir:       "/etc/nginx/conf.d",
		TrustedProxies:         pod.DefaultTrustedProxies(),
		ManageCustomDomainCert: true,
		LetsEncryptDir:         "/etc/letsencrypt",
		ACMEHTTPPort:           80,
	}
	if fmt.Sprintf("%#v", cfg) != fmt.Sprintf("%#v", want) {
		t.Fatalf("defaults\n%#v\nwant\n%#v", cfg, want)
	}

	root := t.TempDir()
	cfg, err = parsePodConfig(fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": testKeySecret,
		"ROOT_DIR": root}))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.DirectoryURL != "https://dir.byoda.net":
		t.Errorf("DirectoryURL %q", cfg.DirectoryURL)
	case cfg.Username != cfg.AccountID[:8]:
		t.Errorf("Username %q for account %s", cfg.Username, cfg.AccountID)
	case cfg.Password != (auth.Password{}):
		t.Error("a password is set without ACCOUNT_SECRET")
	case cfg.TokenLifetime != auth.DefaultLifetime:
		t.Errorf("TokenLifetime %v", cfg.TokenLifetime)
	}
}

func TestPodConfigValues(t *testing.T) {
	rootCA := writeTestRootCA(t)
	env := podEnv(t, map[string]string{
		"NETWORK":          "byoda.test",
		"ACCOUNT_ID":       strings.ToUpper(testAccountID),
		"ACCOUNT_USERNAME": "alice",
		"HTTPS_PORT":       "8443",
		"POD_PORT":         "8444",
		"SERVICE_PORT":     "9443",
		"BIND_ADDRESS":     "127.0.3.9",
		"DIRECTORY_URL":    "https://dir.byoda.test:8443/",
		"DNS_SERVER":       "127.0.0.1",
		"NETWORK_ROOT_CA":  rootCA,
		"JOIN_SERVICE_IDS": "4294967295, 0",
		"LOGLEVEL":         "debug",
	})
	cfg, err := parsePodConfig(fakeEnv(env))
	if err != nil {
		t.Fatal(err)
	}

	got := fmt.Sprint(cfg.Network, cfg.AccountID, cfg.Username, cfg.RootDir, cfg.HTTPSPort,
		cfg.PodPort, cfg.ServicePort, cfg.BindAddress, cfg.DirectoryURL, cfg.DNSServer,
		cfg.RootCAFile, cfg.RootCAFingerprint, cfg.JoinServiceIDs)
	want := fmt.Sprint("byoda.test", testAccountID, "alice", env["ROOT_DIR"], 8443, 8444,
		9443, netip.MustParseAddr("127.0.3.9"), "https://dir.byoda.test:8443",
		"127.0.0.1:53", rootCA, "", []uint32{4294967295, 0})
	if got != want {
		t.Fatalf("config\n%s\nwant\n%s", got, want)
	}
	if !cfg.Password.Check(testAccountSecret) || cfg.Password.Check("other") {
		t.Fatal("ACCOUNT_SECRET is not the password")
	}
	if string(cfg.PrivateKeySecret) != testKeySecret {
		t.Fatal("PRIVATE_KEY_SECRET is not the key secret")
	}
}

// writeTestRootCA writes a self-signed CA certificate and returns its path.
func writeTestRootCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "root-ca.byoda.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "root-ca.pem")
	if err := os.WriteFile(path, pki.EncodeCert(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRootCAFingerprint(t *testing.T) {
	const fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}

	for _, v := range []string{fp, strings.ToUpper(fp), strings.Join(colons, ":"),
		strings.ToLower(strings.Join(colons, ":")), "01:23" + strings.ToUpper(fp[4:])} {
		t.Run(v, func(t *testing.T) {
			cfg, err := parsePodConfig(fakeEnv(podEnv(t,
				map[string]string{"NETWORK_ROOT_CA": v})))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RootCAFingerprint != fp || cfg.RootCAFile != "" {
				t.Fatalf("fingerprint %q, file %q; want %q", cfg.RootCAFingerprint,
					cfg.RootCAFile, fp)
			}
		})
	}
}

func TestJoinServiceIDs(t *testing.T) {
	tests := map[string][]uint32{
		"":                    nil,
		"0":                   {0},
		" 4, 1,4 ,, 16384 , ": {4, 1, 16384},
		"7,7,7":               {7},
	}
	for v, want := range tests {
		t.Run(v, func(t *testing.T) {
			cfg, err := parsePodConfig(fakeEnv(podEnv(t,
				map[string]string{"JOIN_SERVICE_IDS": v})))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.JoinServiceIDs, want) {
				t.Fatalf("JoinServiceIDs %v, want %v", cfg.JoinServiceIDs, want)
			}
		})
	}
}

func TestAccountIDFile(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, accountIDFile)
	env := podEnv(t, map[string]string{"ROOT_DIR": root, "ACCOUNT_ID": ""})

	// First start: an id is made and kept.
	first, err := parsePodConfig(fakeEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != first.AccountID+"\n" {
		t.Fatalf("account id file holds %q (%v), want %s", data, err, first.AccountID)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("account id file has mode %v", info.Mode().Perm())
	}

	// Restarts reuse it, whether ACCOUNT_ID is unset or names it.
	for _, id := range []string{"", first.AccountID, strings.ToUpper(first.AccountID)} {
		env["ACCOUNT_ID"] = id
		again, err := parsePodConfig(fakeEnv(env))
		if err != nil || again.AccountID != first.AccountID {
			t.Fatalf("restart with ACCOUNT_ID %q: account %s, %v; want %s", id,
				again.AccountID, err, first.AccountID)
		}
	}

	// Another id is refused, naming both and the file.
	env["ACCOUNT_ID"] = testAccountID
	_, err = parsePodConfig(fakeEnv(env))
	for _, want := range []string{testAccountID, first.AccountID, path} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second identity: error %v, want one naming %s", err, want)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != first.AccountID+"\n" {
		t.Fatal("a refused ACCOUNT_ID changed the account id file")
	}
}

func TestAccountIDFileGiven(t *testing.T) {
	env := podEnv(t, map[string]string{"ACCOUNT_ID": strings.ToUpper(testAccountID)})
	if _, err := parsePodConfig(fakeEnv(env)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(env["ROOT_DIR"], accountIDFile))
	if err != nil || string(data) != testAccountID+"\n" {
		t.Fatalf("account id file holds %q (%v), want %s", data, err, testAccountID)
	}
}

func TestAccountIDFileBad(t *testing.T) {
	tests := map[string]string{
		"garbage":   "not an id\n",
		"empty":     "",
		"two ids":   testAccountID + "\n" + testAccountID + "\n",
		"truncated": testAccountID[:20],
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			env := podEnv(t, map[string]string{"ACCOUNT_ID": ""})
			path := filepath.Join(env["ROOT_DIR"], accountIDFile)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}

			_, err := parsePodConfig(fakeEnv(env))
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Fatal("a bad account id file was overwritten")
			}
		})
	}

	t.Run("unreadable", func(t *testing.T) {
		env := podEnv(t, map[string]string{"ACCOUNT_ID": ""})
		path := filepath.Join(env["ROOT_DIR"], accountIDFile)
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := parsePodConfig(fakeEnv(env)); err == nil ||
			!strings.Contains(err.Error(), path) {
			t.Fatalf("error %v, want one naming %s", err, path)
		}
	})
}

// lockedBuffer is a bytes.Buffer that a logger and a test can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPodLogger(t *testing.T) {
	file := regularFile(t)

	t.Run("LOGDIR", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "logs")
		var stderr lockedBuffer
		r := podRunner{stderr: &stderr, defaultLogDir: filepath.Join(file, "unused")}
		logger, closeLog, err := r.logger(fakeEnv(map[string]string{"LOGDIR": dir}))
		if err != nil {
			t.Fatal(err)
		}
		logger.Info("hello", "n", 1)
		closeLog()

		data, err := os.ReadFile(filepath.Join(dir, "pod.log"))
		if err != nil || !strings.Contains(string(data), `"msg":"hello","n":1}`) {
			t.Fatalf("pod.log holds %q, %v", data, err)
		}
		if !strings.Contains(stderr.String(), `"msg":"hello","n":1}`) {
			t.Fatalf("stderr holds %q", stderr.String())
		}
		if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
			t.Fatalf("LOGDIR made with mode %v", info.Mode().Perm())
		}
	})

	t.Run("bad LOGDIR", func(t *testing.T) {
		r := podRunner{stderr: &lockedBuffer{}, defaultLogDir: t.TempDir()}
		_, _, err := r.logger(fakeEnv(map[string]string{"LOGDIR": filepath.Join(file, "x")}))
		if err == nil || !strings.Contains(err.Error(), "LOGDIR") {
			t.Fatalf("error %v, want one naming LOGDIR", err)
		}
	})

	t.Run("default", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "www", "logs")
		r := podRunner{stderr: &lockedBuffer{}, defaultLogDir: dir}
		logger, closeLog, err := r.logger(fakeEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		logger.Info("hello")
		closeLog()
		if data, err := os.ReadFile(filepath.Join(dir, "pod.log")); err != nil ||
			!strings.Contains(string(data), `"msg":"hello"`) {
			t.Fatalf("pod.log in the default LOGDIR holds %q, %v", data, err)
		}
	})

	t.Run("unusable default", func(t *testing.T) {
		var stderr lockedBuffer
		r := podRunner{stderr: &stderr, defaultLogDir: filepath.Join(file, "logs")}
		logger, closeLog, err := r.logger(fakeEnv(nil))
		if err != nil {
			t.Fatalf("an unusable default LOGDIR failed the pod: %v", err)
		}
		logger.Info("hello")
		closeLog()
		if out := stderr.String(); !strings.Contains(out, `"level":"WARNING"`) ||
			!strings.Contains(out, `"msg":"hello"`) {
			t.Fatalf("stderr holds %q, want a warning and the log", out)
		}
	})
}

// TestPodCommand runs `byoda pod` against a network of its own, as a person
// would, then again with its HTTPS port taken.
func TestPodCommand(t *testing.T) {
	rootCA, dirURL := startNetwork(t)
	const host = "127.0.0.1"
	logDir := filepath.Join(t.TempDir(), "logs")
	env := podEnv(t, map[string]string{
		"ACCOUNT_ID":      "",
		"NETWORK":         "byoda.test",
		"NETWORK_ROOT_CA": rootCA,
		"DIRECTORY_URL":   dirURL,
		"BIND_ADDRESS":    host,
		"HTTPS_PORT":      portOf(t, freePort(t)),
		"POD_PORT":        portOf(t, freePort(t)),
		"LOGDIR":          logDir,
	})

	var stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	r := podRunner{stderr: &stderr, ready: func(https, _ net.Addr) { ready <- https }}
	done := make(chan error, 1)
	go func() { done <- r.run(ctx, nil, fakeEnv(env)) }()

	var httpsAddr net.Addr
	select {
	case httpsAddr = <-ready:
	case err := <-done:
		t.Fatalf("byoda pod exited: %v\n%s", err, stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("byoda pod did not start within a minute:\n%s", stderr.String())
	}
	accountID, err := os.ReadFile(filepath.Join(env["ROOT_DIR"], accountIDFile))
	if err != nil {
		t.Fatal(err)
	}
	name := pki.AccountName("byoda.test", strings.TrimSpace(string(accountID))).String()
	c := httpsClient(t, rootCA, name)
	resp, err := c.Get("https://" + httpsAddr.String() + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status: %s", resp.Status)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("byoda pod stopped with %v", err)
	}
	checkStartLine(t, "stderr", stderr.String(), env)
	podLog, err := os.ReadFile(filepath.Join(logDir, "pod.log"))
	if err != nil {
		t.Fatal(err)
	}
	checkStartLine(t, "pod.log", string(podLog), env)

	// A taken port is named by its variable.
	taken, err := net.Listen("tcp", net.JoinHostPort(host, env["HTTPS_PORT"]))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// Should the port not be taken after all, the pod stops by itself.
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = podRunner{stderr: &lockedBuffer{}}.run(ctx, nil, fakeEnv(env))
	if err == nil || !strings.Contains(err.Error(), "HTTPS_PORT "+env["HTTPS_PORT"]) {
		t.Fatalf("start with HTTPS_PORT taken: %v", err)
	}

	err = podRunner{stderr: &lockedBuffer{}}.run(context.Background(), []string{"x"},
		fakeEnv(env))
	if err == nil || !strings.Contains(err.Error(), "no arguments") {
		t.Fatalf("byoda pod x: %v", err)
	}
}

// startNetwork runs `network init` and `directory` until the test ends and
// returns the root CA file and the directory's URL.
func startNetwork(t *testing.T) (rootCA, dirURL string) {
	t.Helper()
	dir := t.TempDir()
	vars := fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": "network secret",
		"LOGLEVEL": "ERROR"})
	ctx, cancel := context.WithCancel(context.Background())

	if err := run(ctx, []string{"network", "init", "--network", "byoda.test", "--dir", dir},
		vars, io.Discard); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"directory", "--network", "byoda.test", "--dir", dir,
			"--listen", addr}, vars, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("directory stopped with %v", err)
		}
	})

	rootCA = filepath.Join(dir, "network-byoda.test", "network-byoda.test-root-ca-cert.pem")
	waitFor(t, httpsClient(t, rootCA, "dir.byoda.test"), "https://"+addr+"/api/v1/status",
		done)
	return rootCA, "https://" + addr
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// checkStartLine checks that log has the start-up line with the settings
// and none of the secrets.
func checkStartLine(t *testing.T, where, log string, env map[string]string) {
	t.Helper()
	checkNoSecrets(t, log, env)
	for _, want := range []string{`"msg":"starting pod"`, `"account_secret_set":"yes"`,
		`"https_port":` + env["HTTPS_PORT"], `"bind_address":"` + env["BIND_ADDRESS"] + `"`,
		`"network_root_ca":"` + env["NETWORK_ROOT_CA"] + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("%s lacks %s:\n%s", where, want, log)
		}
	}
}

func TestPodConfigFront(t *testing.T) {
	base := map[string]string{"PRIVATE_KEY_SECRET": testKeySecret}
	read := func(vars map[string]string) (pod.Config, error) {
		t.Helper()
		env := map[string]string{}
		maps.Copy(env, base)
		maps.Copy(env, vars)
		return readPodEnv(fakeEnv(env))
	}

	cfg, err := read(map[string]string{"MANAGE_CUSTOM_DOMAIN_CERT": "",
		"CUSTOM_DOMAIN": "Pod.Example.COM.", "SHARED_WEBSERVER": "1",
		"TRUSTED_PROXIES": "10.1.2.3, 192.0.2.0/24,::1"})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.ManageCustomDomainCert:
		t.Error("MANAGE_CUSTOM_DOMAIN_CERT set empty still manages the certificate")
	case cfg.CustomDomain != "pod.example.com":
		t.Errorf("CustomDomain %q", cfg.CustomDomain)
	case !cfg.SharedWebserver:
		t.Error("SHARED_WEBSERVER=1 is not shared")
	case fmt.Sprint(cfg.TrustedProxies) != "[10.1.2.3/32 192.0.2.0/24 ::1/128]":
		t.Errorf("TrustedProxies %v", cfg.TrustedProxies)
	}

	cfg, err = read(map[string]string{"MANAGE_CUSTOM_DOMAIN_CERT": "yes",
		"TRUSTED_PROXIES": ""})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ManageCustomDomainCert || len(cfg.TrustedProxies) != 0 {
		t.Errorf("manage %v, proxies %v; want true and none", cfg.ManageCustomDomainCert,
			cfg.TrustedProxies)
	}

	for name, value := range map[string]string{
		"TRUSTED_PROXIES":    "10.0.0.0/8, nonsense",
		"CUSTOM_DOMAIN":      "no_underscores.example.com",
		"ACME_DIRECTORY_URL": "http://acme.example.com/dir",
		"ACME_ROOT_CA":       "/nonexistent/ca.pem",
		"HTTP_PORT":          "70000",
		"ACME_HTTP_PORT":     "eighty",
	} {
		_, err := read(map[string]string{name: value})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v, want one naming %s", name, value, err, name)
		}
	}
}
