package podcheck

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	mdns "github.com/miekg/dns"

	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/pod"
	"github.com/byoda/byoda-go/internal/testnet"
)

const (
	notesSID  = 4294967201
	keySecret = "podcheck-key-secret-never-shown"
)

var podAddr struct {
	sync.Mutex
	next byte
}

// podConfig returns the configuration of a pod in n on a loopback address
// of its own, joined to the notes service.
func podConfig(t *testing.T, n *testnet.Net) pod.Config {
	t.Helper()
	podAddr.Lock()
	podAddr.next++
	addr := netip.AddrFrom4([4]byte{127, 0, 5, podAddr.next})
	podAddr.Unlock()

	cfg := pod.Config{
		Network:          testnet.Network,
		AccountID:        uuid.NewString(),
		PrivateKeySecret: []byte(keySecret),
		RootDir:          t.TempDir(),
		HTTPSPort:        testnet.FreePort(t, addr.String()),
		PodPort:          testnet.FreePort(t, addr.String()),
		ServicePort:      n.ServicePort,
		BindAddress:      addr,
		DirectoryURL:     n.DirectoryURL,
		DNSServer:        n.DNS.String(),
		RootCAFile:       n.RootFile,
		JoinServiceIDs:   []uint32{notesSID},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(filepath.Join(cfg.RootDir, "account_id"),
		[]byte(cfg.AccountID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runPod runs a pod of cfg until the test ends or stop is called, and
// returns once it has registered and joined.
func runPod(t *testing.T, n *testnet.Net, cfg pod.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- pod.New(cfg, slog.New(slog.DiscardHandler)).Run(ctx,
			func(net.Addr, net.Addr) { close(ready) })
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
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("pod stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)

	pool := x509.NewCertPool()
	pool.AddCert(n.Root)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool,
			ServerName: pki.AccountName(cfg.Network, cfg.AccountID).String()}}}
	url := "https://" + net.JoinHostPort(cfg.BindAddress.String(),
		strconv.Itoa(cfg.HTTPSPort)) + "/readyz"
	for range 600 {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return stop
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("pod not ready within a minute")
	return nil
}

// find returns the result of the check named check.
func find(t *testing.T, results []Result, check string) Result {
	t.Helper()
	for _, r := range results {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no result for %q in:\n%s", check, format(results))
	return Result{}
}

func format(results []Result) string {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintln(&b, r)
	}
	return b.String()
}

// want checks that the result of check has status s and mentions each of
// detail in its detail and fix in its fix.
func want(t *testing.T, results []Result, check string, s Status, detail, fix string) {
	t.Helper()
	r := find(t, results, check)
	if r.Status != s || !strings.Contains(r.Detail, detail) || !strings.Contains(r.Fix, fix) {
		t.Errorf("%s:\n%s\nwant %s with %q and fix %q", check, r, s, detail, fix)
	}
	if s != OK && r.Fix == "" {
		t.Errorf("%s is %s without a fix", check, s)
	}
}

// noSecret fails if a result shows the key passphrase.
func noSecret(t *testing.T, results []Result, secrets ...string) {
	t.Helper()
	for _, r := range results {
		for _, s := range append(secrets, keySecret, "PRIVATE KEY") {
			if strings.Contains(r.String(), s) {
				t.Errorf("a result shows a secret: %s", r)
			}
		}
	}
}

// TestCheck runs the checks against a pod in a network: all pass, and then
// each of a set of faults gives the FAIL or WARN lines that say what to
// fix.
func TestCheck(t *testing.T) {
	n := testnet.Start(t, []string{filepath.Join("..", "service", "testdata",
		"notes.json")}, []uint32{notesSID})
	cfg := podConfig(t, n)
	stop := runPod(t, n, cfg)
	check := func(edit func(*Config)) []Result {
		c := Config{Pod: cfg}
		if edit != nil {
			edit(&c)
		}
		results := Run(context.Background(), c)
		noSecret(t, results)
		return results
	}

	httpsCheck := fmt.Sprintf("port %d (HTTPS_PORT)", cfg.HTTPSPort)
	podCheck := fmt.Sprintf("port %d (POD_PORT)", cfg.PodPort)
	sid := uint32(notesSID)

	t.Run("all OK", func(t *testing.T) {
		results := check(nil)
		for _, r := range results {
			if r.Status != OK {
				t.Errorf("not OK: %s", r)
			}
		}
		for _, name := range []string{"root dir", "root CA", "keys",
			"network data certificate", "account certificate", "account data certificate",
			fmt.Sprintf("service %d CA chain", sid),
			fmt.Sprintf("member certificate of service %d", sid),
			fmt.Sprintf("member data certificate of service %d", sid), "directory",
			"dns account", httpsCheck, podCheck, fmt.Sprintf("dns service %d", sid),
			fmt.Sprintf("port %d for service %d", cfg.PodPort, sid),
			fmt.Sprintf("service %d registration", sid)} {
			find(t, results, name)
		}
		want(t, results, "dns account", OK, cfg.BindAddress.String()+", an address "+
			"of this machine (private", "")
		want(t, results, podCheck, OK, "accepts its client certificate", "")
		if Count(results, OK) != len(results) {
			t.Fatalf("results:\n%s", format(results))
		}
	})

	account, err := pki.LoadCerts(cfg.Paths().AccountCert())
	if err != nil {
		t.Fatal(err)
	}
	notAfter := account[0].NotAfter

	t.Run("certificate expiring", func(t *testing.T) {
		results := check(func(c *Config) {
			c.Now = func() time.Time { return notAfter.Add(-10 * 24 * time.Hour) }
		})
		want(t, results, "account certificate", Warn, "in 10 days", "renews")
	})

	t.Run("certificate expired", func(t *testing.T) {
		results := check(func(c *Config) {
			c.Now = func() time.Time { return notAfter.Add(24 * time.Hour) }
		})
		want(t, results, "account certificate", Fail, "expired on "+
			notAfter.UTC().Format(dateFormat), "start it")
		want(t, results, fmt.Sprintf("member certificate of service %d", sid), Fail,
			"expired", "reaches the service")
	})

	t.Run("public network", func(t *testing.T) {
		results := check(func(c *Config) { c.PublicNetwork = true })
		want(t, results, "dns account", Warn, "private address that pods on the "+
			"internet cannot reach", "public address")
	})

	t.Run("wrong PRIVATE_KEY_SECRET", func(t *testing.T) {
		wrong := "not-the-key-secret-4711"
		results := check(func(c *Config) { c.Pod.PrivateKeySecret = []byte(wrong) })
		want(t, results, "keys", Fail, "PRIVATE_KEY_SECRET does not open",
			"set PRIVATE_KEY_SECRET")
		want(t, results, podCheck, Warn, "not checked", "keys")
		noSecret(t, results, wrong)
	})

	t.Run("wrong DNS answer", func(t *testing.T) {
		wrongDNS := fakeDNS(t, netip.MustParseAddr("127.0.9.9"))
		results := check(func(c *Config) { c.Pod.DNSServer = wrongDNS })
		want(t, results, "dns account", Fail, "resolves to 127.0.9.9, but the pod "+
			"listens on BIND_ADDRESS "+cfg.BindAddress.String(), "restart the pod")
		want(t, results, httpsCheck, Fail, "nothing listens at 127.0.9.9", "start the pod")
		want(t, results, fmt.Sprintf("service %d registration", sid), Fail,
			"does not answer", "")
	})

	t.Run("pod stopped", func(t *testing.T) {
		stop()
		results := check(nil)
		target := net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.HTTPSPort))
		want(t, results, httpsCheck, Fail, "nothing listens at "+target+
			" (connection refused)", "start the pod; if it runs, let TCP port")
		want(t, results, podCheck, Fail, "connection refused", "forward it on your router")
		want(t, results, fmt.Sprintf("port %d for service %d", cfg.PodPort, sid), Fail,
			"connection refused", "start the pod")
		// What the network knows stays.
		want(t, results, "dns account", OK, "resolves to", "")
		want(t, results, fmt.Sprintf("service %d registration", sid), OK, "knows member",
			"")
	})
}

// fakeDNS runs a DNS server that answers every A question with a, and
// returns its address.
func fakeDNS(t *testing.T, a netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(
		func(w mdns.ResponseWriter, r *mdns.Msg) {
			m := new(mdns.Msg)
			m.SetReply(r)
			if len(r.Question) == 1 && r.Question[0].Qtype == mdns.TypeA {
				m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{
					Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET,
					Ttl: 60}, A: a.AsSlice()})
			}
			w.WriteMsg(m)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestDNSJudgement checks how an answer is judged against this machine's
// addresses and BIND_ADDRESS; only the DNS server, on loopback, is asked.
func TestDNSJudgement(t *testing.T) {
	local := []netip.Addr{netip.MustParseAddr("192.168.1.20"),
		netip.MustParseAddr("203.0.113.7")}
	tests := []struct {
		name   string
		answer string
		bind   string
		public bool
		status Status
		detail string
	}{
		{"bound address", "127.0.6.1", "127.0.6.1", false, OK, "private"},
		{"another local address", "127.0.6.2", "127.0.6.1", false, Fail,
			"listens on BIND_ADDRESS 127.0.6.1 only"},
		{"unbound", "192.168.1.20", "", false, OK, "an address of this machine"},
		{"private of another machine", "10.9.9.9", "", false, Fail,
			"private address of another machine"},
		{"router", "198.51.100.4", "192.168.1.20", false, Warn, "router's public address"},
		{"private on a public network", "192.168.1.20", "", true, Warn,
			"pods on the internet cannot reach"},
		{"public and local", "203.0.113.7", "", true, OK, "an address of this machine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dnsAddr := fakeDNS(t, netip.MustParseAddr(tt.answer))
			cfg := Config{PublicNetwork: tt.public, Timeout: 5 * time.Second}
			cfg.Pod.DNSServer, cfg.Pod.HTTPSPort, cfg.Pod.PodPort = dnsAddr, 443, 444
			if tt.bind != "" {
				cfg.Pod.BindAddress = netip.MustParseAddr(tt.bind)
			}
			c := &checker{cfg: cfg, resolver: newResolver(dnsAddr, cfg.Timeout),
				local: local}
			addr, ok := c.checkDNS(context.Background(), "dns", "pod.byoda.test")
			r := c.results[0]
			if !ok || addr.String() != tt.answer || r.Status != tt.status ||
				!strings.Contains(r.Detail, tt.detail) {
				t.Fatalf("%s, want %s with %q", r, tt.status, tt.detail)
			}
		})
	}

	// A name that does not resolve.
	c := &checker{cfg: Config{Timeout: time.Second}, resolver: newResolver(
		"127.0.0.1:1", time.Second)}
	c.cfg.Pod.DNSServer = "127.0.0.1:1"
	if _, ok := c.checkDNS(context.Background(), "dns", "pod.byoda.test"); ok ||
		c.results[0].Status != Fail || !strings.Contains(c.results[0].Fix, "DNS_SERVER") {
		t.Fatalf("unresolvable name: %s", c.results[0])
	}
}

// writeCert writes a self-signed certificate for name, valid until
// notAfter, to path.
func writeCert(t *testing.T, path, name string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:   pkix.Name{CommonName: name},
		Issuer:    pkix.Name{CommonName: "test CA"},
		DNSNames:  []string{name},
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := pki.WriteFile(path, pki.EncodeCert(cert), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCustomDomain(t *testing.T) {
	const domain = "pod.example.org"
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		managed bool
		file    string // relative to the directory the pod reads
		certFor string
		expires time.Duration
		status  Status
		detail  string
	}{
		{"managed", true, "cert.pem", domain, 60 * 24 * time.Hour, OK, "valid until"},
		{"certbot", false, "fullchain.pem", domain, 60 * 24 * time.Hour, OK, "valid until"},
		{"certbot due", false, "fullchain.pem", domain, 5 * 24 * time.Hour, Warn, "in 5 days"},
		{"certbot expired", false, "fullchain.pem", domain, -time.Hour, Fail, "expired on"},
		{"other name", false, "fullchain.pem", "other.example.org", 60 * 24 * time.Hour,
			Warn, "no certificate"},
		{"none yet", true, "", "", 0, Warn, "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Now: func() time.Time { return now }}
			cfg.Pod.RootDir, cfg.Pod.LetsEncryptDir = t.TempDir(), t.TempDir()
			cfg.Pod.CustomDomain, cfg.Pod.ManageCustomDomainCert = domain, tt.managed
			cfg.Pod.ACMEHTTPPort = 80
			dir := filepath.Join(cfg.Pod.LetsEncryptDir, "live", domain)
			if tt.managed {
				dir = filepath.Join(cfg.Pod.RootDir, "custom-domain", domain)
			}
			if tt.file != "" {
				writeCert(t, filepath.Join(dir, tt.file), tt.certFor, now.Add(tt.expires))
				os.WriteFile(filepath.Join(dir, "privkey.pem"), []byte("not a cert"), 0o600)
			}

			c := &checker{cfg: cfg}
			c.checkCustomDomain()
			r := c.results[0]
			if r.Status != tt.status || !strings.Contains(r.Detail, tt.detail) ||
				r.Check != "custom domain "+domain || (r.Status != OK && r.Fix == "") {
				t.Fatalf("%s, want %s with %q", r, tt.status, tt.detail)
			}
		})
	}
}

func TestNoPod(t *testing.T) {
	cfg := Config{}
	cfg.Pod.RootDir, cfg.Pod.Network = t.TempDir(), testnet.Network
	results := Run(context.Background(), cfg)
	if len(results) != 1 || results[0].Status != Fail ||
		!strings.Contains(results[0].Fix, "byoda pod restore") {
		t.Fatalf("an empty ROOT_DIR:\n%s", format(results))
	}
}
