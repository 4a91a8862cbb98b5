package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
)

// fakeEnv is an environment for run.
func fakeEnv(vars map[string]string) env {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestUsage(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"nonsense"}, fakeEnv(nil), &stderr)
	if !errors.Is(err, errUsage) {
		t.Fatalf("run(nonsense) = %v, want errUsage", err)
	}
	if !strings.Contains(stderr.String(), "network init") {
		t.Fatalf("usage does not list the commands:\n%s", stderr.String())
	}
}

func TestNetworkInit(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	vars := map[string]string{"PRIVATE_KEY_SECRET": "secret"}
	args := []string{"network", "init", "--network", "byoda.test", "--dir", dir}

	if err := run(ctx, args, fakeEnv(nil), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "PRIVATE_KEY_SECRET") {
		t.Fatalf("network init without PRIVATE_KEY_SECRET: %v", err)
	}
	if err := run(ctx, args, fakeEnv(vars), io.Discard); err != nil {
		t.Fatalf("network init: %v", err)
	}

	paths := pki.Paths{Root: dir, Network: "byoda.test"}
	before, err := os.ReadFile(paths.RootCACert())
	if err != nil {
		t.Fatal(err)
	}
	err = run(ctx, args, fakeEnv(vars), io.Discard)
	if !errors.Is(err, pki.ErrNetworkExists) {
		t.Fatalf("second network init: %v, want ErrNetworkExists", err)
	}
	after, _ := os.ReadFile(paths.RootCACert())
	if !bytes.Equal(before, after) {
		t.Fatal("a refused network init changed the root CA")
	}

	bad := []string{"network", "init", "--network", "nodots", "--dir", t.TempDir()}
	if err := run(ctx, bad, fakeEnv(vars), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--network") {
		t.Fatalf("network init of a one-label network: %v", err)
	}
}

func TestDirectoryConfigErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "--network (NETWORK) is required"},
		{[]string{"--network", "x"}, nil, "at least two labels"},
		{nil, map[string]string{"NETWORK": "byoda.test"}, "--dir (ROOT_DIR) is required"},
		{[]string{"--network", "byoda.test", "--dir", "d", "--listen", "nope"}, nil,
			"--listen (DIRECTORY_LISTEN) must be ADDRESS:PORT"},
		{[]string{"--network", "byoda.test", "--dir", "d"},
			map[string]string{"DIRECTORY_DNS_LISTEN": "53"},
			"--dns-listen (DIRECTORY_DNS_LISTEN)"},
		{[]string{"--network", "byoda.test", "--dir", "d", "--address", "x"}, nil,
			"--address (DIRECTORY_ADDRESS) must be an IP address"},
		{[]string{"--network", "byoda.test", "--dir", "d", "--tls-cert", "c"}, nil,
			"--tls-cert and --tls-key go together"},
		{[]string{"--network", "byoda.test", "--dir", "d", "extra"}, nil,
			"unexpected argument"},
	}

	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseDirectoryFlags(tt.args, fakeEnv(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}

	cfg, err := parseDirectoryFlags([]string{"--network", "byoda.test"},
		fakeEnv(map[string]string{"ROOT_DIR": "/srv/net", "DIRECTORY_LISTEN": "[::1]:8443"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != "/srv/net" || cfg.Listen != "[::1]:8443" ||
		cfg.Store != "/srv/net/directory.db" ||
		cfg.TLSCert != "/srv/net/network-byoda.test/network-byoda.test-dir-cert.pem" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDirectoryCommand creates a network and runs `byoda directory` on it,
// as a person would, until its context ends.
func TestDirectoryCommand(t *testing.T) {
	dir := t.TempDir()
	vars := fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": "secret", "LOGLEVEL": "ERROR"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if err := run(ctx, []string{"network", "init", "--network", "byoda.test", "--dir", dir},
		vars, io.Discard); err != nil {
		t.Fatal(err)
	}

	listen := freePort(t)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"directory", "--network", "byoda.test", "--dir", dir,
			"--listen", listen, "--dns-listen", "127.0.0.1:0"}, vars, io.Discard)
	}()

	roots, err := pki.LoadCerts(filepath.Join(dir, "network-byoda.test",
		"network-byoda.test-root-ca-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "dir.byoda.test"}}}

	var resp *http.Response
	for i := 0; i < 100; i++ {
		resp, err = client.Get("https://" + listen + "/api/v1/status")
		if err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("directory exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("directory did not answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("directory stopped with %v", err)
	}

	if _, err := os.Stat(filepath.Join(dir, "directory.db")); err != nil {
		t.Fatalf("no store at the default path: %v", err)
	}
}

func TestDirectoryWrongPassword(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if err := run(ctx, []string{"network", "init", "--network", "byoda.test", "--dir", dir},
		fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": "right"}), io.Discard); err != nil {
		t.Fatal(err)
	}

	err := run(ctx, []string{"directory", "--network", "byoda.test", "--dir", dir},
		fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": "wrong"}), io.Discard)
	if !errors.Is(err, pki.ErrWrongPassword) {
		t.Fatalf("directory with a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong\"") || strings.Contains(err.Error(), "right") {
		t.Fatalf("error leaks a password: %v", err)
	}
}

// TestServiceCommands runs, as a person would, `network init`, `directory`,
// `service init` and `service serve`, and downloads the service's contract.
func TestServiceCommands(t *testing.T) {
	netDir, svcDir := t.TempDir(), t.TempDir()
	vars := fakeEnv(map[string]string{"PRIVATE_KEY_SECRET": "secret", "LOGLEVEL": "ERROR"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if err := run(ctx, []string{"network", "init", "--network", "byoda.test", "--dir", netDir},
		vars, io.Discard); err != nil {
		t.Fatal(err)
	}
	dirAddr := freePort(t)
	dirDone := make(chan error, 1)
	go func() {
		dirDone <- run(ctx, []string{"directory", "--network", "byoda.test", "--dir", netDir,
			"--listen", dirAddr}, vars, io.Discard)
	}()
	rootCA := filepath.Join(netDir, "network-byoda.test", "network-byoda.test-root-ca-cert.pem")
	client := httpsClient(t, rootCA, "dir.byoda.test")
	waitFor(t, client, "https://"+dirAddr+"/api/v1/status", dirDone)

	contractPath := filepath.Join("..", "..", "internal", "service", "testdata", "notes.json")
	common := []string{"--network", "byoda.test", "--dir", svcDir,
		"--directory-url", "https://" + dirAddr}
	err := run(ctx, append([]string{"service", "init", "--contract", contractPath,
		"--root-ca", rootCA}, common...), vars, io.Discard)
	if err != nil {
		t.Fatalf("service init: %v", err)
	}

	svcAddr := freePort(t)
	svcDone := make(chan error, 1)
	go func() {
		svcDone <- run(ctx, append([]string{"service", "serve", "--service-id", "4294967001",
			"--listen", svcAddr}, common...), vars, io.Discard)
	}()
	client = httpsClient(t, rootCA, "service.service-4294967001.byoda.test")
	waitFor(t, client, "https://"+svcAddr+"/service-contract.json", svcDone)

	cancel()
	for _, done := range []chan error{svcDone, dirDone} {
		if err := <-done; err != nil {
			t.Fatalf("server stopped with %v", err)
		}
	}
}

func httpsClient(t *testing.T, rootCA, serverName string) *http.Client {
	t.Helper()
	roots, err := pki.LoadCerts(rootCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}}}
}

// waitFor polls url until it answers 200, failing if done reports first.
func waitFor(t *testing.T, c *http.Client, url string, done chan error) {
	t.Helper()
	var lastErr error
	for i := 0; i < 100; i++ {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = errors.New(resp.Status)
		}
		lastErr = err

		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not answer: %v", url, lastErr)
}
