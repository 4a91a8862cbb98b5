package pod

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	mdns "github.com/miekg/dns"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

const (
	notesSID   = 4294967001
	otherSID   = 4294967002
	keySecret  = "pod-key-secret-do-not-leak"
	accountPwd = "correct horse battery staple"
)

func contractPath() string {
	return filepath.Join("..", "service", "testdata", "notes.json")
}

// testPod is a pod running for a test, with what the test saw of it.
type testPod struct {
	t      *testing.T
	net    *testnet.Net
	cfg    Config
	pod    *Pod
	logs   *testnet.Buffer
	bodies *testnet.Buffer
	stop   func()
}

var (
	podAddrs    sync.Mutex
	nextPodAddr byte = 10

	// netPorts are the HTTPS and pod ports of each test network: pods dial
	// each other on the network's pod port, so all of a network's pods
	// share them, each on its own address.
	netPorts = map[*testnet.Net][2]int{}
)

// newPodConfig returns the configuration of a pod on its own loopback
// address in n.
func newPodConfig(t *testing.T, n *testnet.Net, join ...uint32) Config {
	t.Helper()
	podAddrs.Lock()
	nextPodAddr++
	addr := netip.AddrFrom4([4]byte{127, 0, 2, nextPodAddr})
	ports, ok := netPorts[n]
	if !ok {
		ports = [2]int{testnet.FreePort(t, addr.String()), testnet.FreePort(t, addr.String())}
		netPorts[n] = ports
	}
	podAddrs.Unlock()

	password, err := auth.ParsePassword(accountPwd)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Network:          testnet.Network,
		AccountID:        uuid.NewString(),
		Password:         password,
		PrivateKeySecret: []byte(keySecret),
		RootDir:          t.TempDir(),
		HTTPSPort:        ports[0],
		PodPort:          ports[1],
		ServicePort:      n.ServicePort,
		BindAddress:      addr,
		DirectoryURL:     n.DirectoryURL,
		DNSServer:        n.DNS.String(),
		RootCAFile:       n.RootFile,
		JoinServiceIDs:   join,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startPod runs a pod with cfg until the test ends or stop is called, and
// waits until it is ready.
func startPod(t *testing.T, n *testnet.Net, cfg Config) *testPod {
	t.Helper()
	tp := &testPod{t: t, net: n, cfg: cfg, logs: &testnet.Buffer{}, bodies: &testnet.Buffer{}}
	logger := slog.New(slog.NewTextHandler(tp.logs, &slog.HandlerOptions{
		Level: slog.LevelDebug}))
	tp.pod = New(cfg, logger)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- tp.pod.Run(ctx, func(https, pod net.Addr) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("pod did not start: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("pod did not start within two minutes")
	}

	var once sync.Once
	tp.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("pod stopped with %v", err)
			}
			tp.checkNoSecrets()
		})
	}
	t.Cleanup(tp.stop)
	tp.waitReady()
	return tp
}

// waitReady polls /readyz until the pod has registered and joined.
func (tp *testPod) waitReady() {
	tp.t.Helper()
	for i := 0; i < 600; i++ {
		r := tp.do(tp.client(nil, ""), "GET", tp.httpsURL("/readyz"), nil, "")
		if r.status == 200 && len(tp.pod.Memberships()) >= len(tp.cfg.JoinServiceIDs) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tp.t.Fatalf("pod not ready within a minute; logs:\n%s", tp.logs)
}

// checkNoSecrets fails the test if a log line or a response body of the pod
// holds a private key or the key passphrase.
func (tp *testPod) checkNoSecrets() {
	for what, text := range map[string]string{"logs": tp.logs.String(),
		"responses": tp.bodies.String()} {
		for _, secret := range []string{keySecret, "PRIVATE KEY", accountPwd} {
			if strings.Contains(text, secret) {
				tp.t.Errorf("the pod's %s contain a secret (%q)", what, secret[:6])
			}
		}
	}
}

func (tp *testPod) httpsURL(path string) string {
	return fmt.Sprintf("https://%s%s", hostPort(tp.cfg.BindAddress.String(),
		tp.cfg.HTTPSPort), path)
}

func (tp *testPod) podURL(path string) string {
	return fmt.Sprintf("https://%s%s", hostPort(tp.cfg.BindAddress.String(),
		tp.cfg.PodPort), path)
}

func (tp *testPod) accountName() string {
	return pki.AccountName(testnet.Network, tp.cfg.AccountID).String()
}

// client returns an HTTPS client that trusts the network root, asks for
// serverName and presents cert when set.
func (tp *testPod) client(cert *tls.Certificate, serverName string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(tp.net.Root)
	if serverName == "" {
		serverName = tp.accountName()
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}
}

type reply struct {
	status int
	body   []byte
	tls    *tls.ConnectionState
}

func (r reply) detail() string {
	var d struct {
		Detail string `json:"detail"`
	}
	json.Unmarshal(r.body, &d)
	return d.Detail
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (tp *testPod) do(c *http.Client, method, url string, body any, token string) reply {
	tp.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tp.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	tp.bodies.Write(data)
	return reply{resp.StatusCode, data, resp.TLS}
}

func want(t *testing.T, r reply, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	if status >= 400 && r.detail() == "" {
		t.Fatalf("%s: no detail in %s", what, r.body)
	}
}

// login returns a token from the login endpoint.
func (tp *testPod) login(body map[string]any) string {
	tp.t.Helper()
	r := tp.do(tp.client(nil, ""), "POST", tp.httpsURL("/api/v1/pod/authtoken"), body, "")
	want(tp.t, r, 200, "login")
	var out struct {
		AuthToken string `json:"auth_token"`
	}
	r.json(tp.t, &out)
	return out.AuthToken
}

func (tp *testPod) accountToken() string {
	return tp.login(map[string]any{"username": tp.cfg.Username, "password": accountPwd,
		"target_type": "accounts"})
}

// accountCert returns the pod's account certificate as a client's.
func (tp *testPod) accountCert() *tls.Certificate {
	tp.pod.mu.RLock()
	defer tp.pod.mu.RUnlock()
	return clientCert(tp.pod.account)
}

// resolve asks the network's DNS server for name's address.
func resolve(t *testing.T, n *testnet.Net, name string) netip.Addr {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	in, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(m, n.DNS.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range in.Answer {
		if a, ok := rr.(*mdns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A.To4())
			return addr
		}
	}
	return netip.Addr{}
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
