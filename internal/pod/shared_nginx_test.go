package pod

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/nginx"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/store"
	"github.com/byoda/byoda-go/internal/testnet"
)

// testNginx is an nginx the test runs as its own process, with a
// configuration that includes the pod's vhost directory.
type testNginx struct {
	t       *testing.T
	bin     string
	prefix  string
	conf    string
	confDir string
	log     string
}

// startNginx runs Debian's nginx until the test ends. Without nginx the
// test skips, or fails under CI.
func startNginx(t *testing.T) *testNginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx is not installed (apt-get install nginx)")
		}
		t.Skip("nginx is not installed (apt-get install nginx); skipping")
	}

	prefix := t.TempDir()
	ng := &testNginx{t: t, bin: bin, prefix: prefix, conf: filepath.Join(prefix, "nginx.conf"),
		confDir: filepath.Join(prefix, "conf.d"), log: filepath.Join(prefix, "error.log")}
	if err := os.Mkdir(ng.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log info;
pid %[1]s/nginx.pid;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s/*.conf;
}
`, prefix, ng.confDir)
	if err := os.WriteFile(ng.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	cmd := exec.Command(bin, append(ng.args(), "-g", "daemon off;")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(prefix, "nginx.pid")); err == nil {
			return ng
		}
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v: %s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if i == 200 {
			t.Fatal("nginx wrote no pid file within 10 seconds")
		}
	}
}

// args are the arguments that point nginx at the test's configuration.
func (ng *testNginx) args() []string {
	return []string{"-p", ng.prefix, "-e", ng.log, "-c", ng.conf}
}

func (ng *testNginx) command(action string) string {
	return ng.bin + " " + action + " " + strings.Join(ng.args(), " ")
}

func (ng *testNginx) errorLog() string {
	data, _ := os.ReadFile(ng.log)
	return string(data)
}

// sharedPodConfig returns the configuration of a pod behind ng, which
// trusts only 127.0.0.1, where nginx connects from.
func sharedPodConfig(t *testing.T, n *testnet.Net, ng *testNginx, join ...uint32) Config {
	t.Helper()
	cfg := newPodConfig(t, n, join...)
	cfg.SharedWebserver = true
	cfg.HTTPPort = testnet.FreePort(t, cfg.BindAddress.String())
	cfg.ACMEHTTPPort = testnet.FreePort(t, cfg.BindAddress.String())
	cfg.WebserverConfDir = ng.confDir
	cfg.WebserverTestCommand = ng.command("-t -q")
	cfg.WebserverReloadCommand = ng.command("-s reload")
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// httpURL is the pod's own plain HTTP port.
func (tp *testPod) httpURL(path string) string {
	return fmt.Sprintf("http://%s%s", hostPort(tp.cfg.BindAddress.String(), tp.cfg.HTTPPort),
		path)
}

// plainClient connects from local, or from the system's choice when local
// is invalid.
func plainClient(local netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// doWith sends a request with extra headers.
func (tp *testPod) doWith(c *http.Client, method, url string, headers map[string]string,
	body string) reply {
	tp.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tp.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	tp.bodies.Write(b.Bytes())
	return reply{resp.StatusCode, b.Bytes(), resp.TLS}
}

// nameClient reaches tp's names at tp's address, as the network's DNS
// resolves them, so that the Host header and the TLS server name agree as
// nginx requires when it verifies client certificates. It presents cert,
// when set, whatever CAs the server asks for.
func (tp *testPod) nameClient(cert *tls.Certificate, name string) *http.Client {
	c := tp.client(nil, name)
	tr := c.Transport.(*http.Transport)
	if cert != nil {
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (
			*tls.Certificate, error) {
			return cert, nil
		}
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network,
			net.JoinHostPort(tp.cfg.BindAddress.String(), port))
	}
	return c
}

// nameURL is the URL of path on name at the pod port, or at the HTTPS port.
func (tp *testPod) nameURL(name string, podPort bool, path string) string {
	port := tp.cfg.HTTPSPort
	if podPort {
		port = tp.cfg.PodPort
	}
	return "https://" + hostPort(name, port) + path
}

// eventually polls check, bounded, until it returns nil.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	var err error
	for i := 0; i < 200; i++ {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestSharedWebserver runs a pod behind Debian's nginx with the files the
// pod writes: browsers and pods reach it through nginx, nginx and the pod
// refuse certificates of another service, and headers sent to the pod's
// HTTP port by anyone but nginx count for nothing.
func TestSharedWebserver(t *testing.T) {
	ng := startNginx(t)
	n := startNet(t)
	a := startPod(t, n, sharedPodConfig(t, n, ng, notesSID))
	b := startPod(t, n, newPodConfig(t, n, notesSID, otherSID))
	am, _ := a.pod.Membership(notesSID)
	bNotes, _ := b.pod.Membership(notesSID)
	bOther, _ := b.pod.Membership(otherSID)

	t.Run("files", func(t *testing.T) {
		for _, name := range []string{nginx.AccountFile, nginx.MemberFile(am.MemberID)} {
			data, err := os.ReadFile(filepath.Join(ng.confDir, name))
			if err != nil || !strings.HasPrefix(string(data), nginx.Marker(a.cfg.AccountID)) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		dir := filepath.Join(a.cfg.RootDir, webserverDir)
		if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", dir, info.Mode(), err)
		}
		keys, _ := filepath.Glob(filepath.Join(dir, "*.key"))
		if len(keys) != 2 {
			t.Fatalf("keys for nginx: %v", keys)
		}
		for _, k := range keys {
			if info, err := os.Stat(k); err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v %v", k, info.Mode(), err)
			}
		}
	})

	t.Run("browser and JWT calls on 443", func(t *testing.T) {
		c := a.client(nil, "")
		r := a.do(c, "GET", a.httpsURL("/api/v1/pod/account"), nil, "")
		want(t, r, 401, "account without credentials")
		if cn := r.tls.PeerCertificates[0].Subject.CommonName; cn != a.accountName() {
			t.Fatalf("nginx served %s for the account name", cn)
		}
		want(t, a.do(c, "GET", a.httpsURL("/api/v1/pod/account"), nil, a.accountToken()),
			200, "account with a token")
		r = a.do(a.nameClient(nil, a.accountName()), "GET", a.nameURL(a.accountName(), false,
			"/"), nil, "")
		if r.status != 200 || !strings.Contains(strings.ToLower(string(r.body)), "<html") {
			t.Fatalf("the web page through nginx: %d %.200s", r.status, r.body)
		}

		da := newDataClient(t, a)
		da.addNote(t, "through nginx")
		if q := da.query(t, map[string]any{}); q.TotalCount != 1 {
			t.Fatalf("query through nginx: %+v", q)
		}

		counter, _, err := da.subscribe(t, "counter", da.token, map[string]any{})
		if err != nil {
			t.Fatalf("websocket through nginx: %v", err)
		}
		defer counter.CloseNow()
		var count struct {
			Counter int64 `json:"counter"`
		}
		readJSON(t, counter, &count)
		da.addNote(t, "seen on the websocket")
		readJSON(t, counter, &count)
		if count.Counter != 2 {
			t.Fatalf("counter after an append: %d", count.Counter)
		}
	})

	t.Run("pod to pod on 444", func(t *testing.T) {
		db := newDataClient(t, b)
		msg := map[string]any{"message_id": uuid.NewString(), "text": "via nginx",
			"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
		want(t, db.call("messages", "append", map[string]any{"data": msg, "depth": 1,
			"remote_member_id": am.MemberID}), 200, "B appends to A through nginx")
		page, err := am.Store.Query(context.Background(), "messages", store.QueryOptions{})
		if err != nil || len(page.Edges) != 1 || page.Edges[0].Origin.ID != bNotes.MemberID {
			t.Fatalf("A's messages: %+v, %v", page, err)
		}

		r := a.do(a.nameClient(clientCert(bNotes.tls), am.Name()), "GET",
			a.nameURL(am.Name(), true, "/member-data-cert.pem"), nil, "")
		want(t, r, 200, "a member of the service on A's member vhost")
		if cn := r.tls.PeerCertificates[0].Subject.CommonName; cn != am.Name() {
			t.Fatalf("nginx served %s for the member name", cn)
		}
		account := a.nameURL(a.accountName(), true, "/api/v1/pod/account")
		want(t, a.do(a.nameClient(a.accountCert(), a.accountName()), "GET", account, nil, ""),
			200, "the account's own certificate on 444")
		want(t, a.do(a.nameClient(nil, a.accountName()), "GET", account, nil, ""), 401,
			"444 without a client certificate")
	})

	t.Run("another service's CA", func(t *testing.T) {
		// nginx refuses it on the membership's name, at its TLS check,
		// before the pod sees the request.
		other := clientCert(bOther.tls)
		status := a.nameURL(am.Name(), true, "/api/v1/status")
		r := a.do(a.nameClient(other, am.Name()), "GET", status, nil, "")
		want(t, r, 403, "member of another service on a member vhost")
		if !strings.Contains(r.detail(), "not accepted: FAILED:") {
			t.Fatalf("nginx's detail %q", r.detail())
		}
		if !strings.Contains(ng.errorLog(), "client SSL certificate verify error") {
			t.Fatalf("nginx did not log its refusal:\n%s", ng.errorLog())
		}

		svc := n.Services[otherSID].Secrets
		serviceCA, err := pki.LoadCA(testnet.Network, svc.Paths.ServiceCACert(otherSID),
			svc.Paths.ServiceCAKey(otherSID), []byte(testnet.Password))
		if err != nil {
			t.Fatal(err)
		}
		forged := forgeMember(t, serviceCA, notesSID)
		r = a.do(a.nameClient(forged, am.Name()), "GET", status, nil, "")
		want(t, r, 403, "forged members CA on a member vhost")
		if !strings.Contains(r.detail(), "not accepted: FAILED:") {
			t.Fatalf("nginx's detail %q", r.detail())
		}

		// The account's vhost trusts the root, as other pods' accounts
		// need: nginx lets both through and the pod refuses them.
		status = a.nameURL(a.accountName(), true, "/api/v1/status")
		r = a.do(a.nameClient(other, a.accountName()), "GET", status, nil, "")
		want(t, r, 403, "member of another service on the account vhost")
		if !strings.Contains(r.detail(), "not a member of service") {
			t.Fatalf("detail %q", r.detail())
		}
		r = a.do(a.nameClient(forged, a.accountName()), "GET", status, nil, "")
		want(t, r, 403, "forged members CA on the account vhost")
	})

	accountPEM := nginxEscape(pki.EncodeCert(a.accountCert().Leaf))
	bogus := nginxEscape(pki.EncodeCert(selfSigned(t, a.accountName())))

	t.Run("forged headers from an untrusted address", func(t *testing.T) {
		c := plainClient(netip.MustParseAddr("127.0.0.77"))
		forged := map[string]string{"X-Byoda-Port": "pod", "X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": accountPEM, "X-Real-IP": "127.0.0.1",
			"X-Client-SSL-Subject":    "CN=" + a.accountName(),
			"X-Client-SSL-Issuing-CA": "CN=accounts-ca.accounts-ca." + testnet.Network}
		want(t, a.doWith(c, "GET", a.httpURL("/api/v1/status"), forged, ""), 200,
			"status, which anyone may ask")
		want(t, a.doWith(c, "GET", a.httpURL("/api/v1/pod/account"), forged, ""), 401,
			"account with forged headers")

		forged["X-Client-SSL-Cert"] = nginxEscape(pki.EncodeCert(bNotes.tls.leaf()))
		forged["Content-Type"] = "application/json"
		r := a.doWith(c, "POST", a.httpURL(fmt.Sprintf("/api/v1/data/%d/messages/append",
			notesSID)), forged, `{"data": {"message_id": "`+uuid.NewString()+
			`", "text": "forged", "created_timestamp": "2025-01-01T00:00:00Z"}}`)
		if r.status != 401 && r.status != 403 {
			t.Fatalf("append as a forged member: %d %s", r.status, r.body)
		}
		r = a.doWith(c, "POST", a.httpURL(fmt.Sprintf("/api/v1/data/%d/notes/query",
			notesSID)), forged, `{}`)
		if r.status != 401 && r.status != 403 {
			t.Fatalf("query as a forged member: %d %s", r.status, r.body)
		}
	})

	t.Run("headers from the trusted address", func(t *testing.T) {
		c := plainClient(netip.Addr{})
		headers := map[string]string{"X-Byoda-Port": "pod", "X-Client-SSL-Verify": "SUCCESS",
			"X-Client-SSL-Cert": bogus}
		r := a.doWith(c, "GET", a.httpURL("/api/v1/pod/account"), headers, "")
		want(t, r, 403, "a self-signed certificate with the account's name")
		if !strings.Contains(r.detail(), "not accepted") {
			t.Fatalf("detail %q", r.detail())
		}
		headers["X-Client-SSL-Verify"] = "FAILED:certificate has expired"
		want(t, a.doWith(c, "GET", a.httpURL("/api/v1/pod/account"), headers, ""), 403,
			"a certificate the proxy refused")

		// What the trusted proxy verified is believed: the proxy alone
		// saw that the client holds the key.
		headers["X-Client-SSL-Verify"], headers["X-Client-SSL-Cert"] = "SUCCESS", accountPEM
		want(t, a.doWith(c, "GET", a.httpURL("/api/v1/pod/account"), headers, ""), 200,
			"the account's certificate as the proxy reports it")
	})

	t.Run("renewed certificates reach nginx", func(t *testing.T) {
		a.pod.renewBefore.Store(int64(400 * 24 * time.Hour))
		err := a.pod.renewDue(context.Background())
		a.pod.renewBefore.Store(int64(DefaultRenewBefore))
		if err != nil {
			t.Fatalf("renewDue: %v", err)
		}
		renewed, _ := a.pod.Membership(notesSID)
		for name, serial := range map[string]*big.Int{
			a.accountName(): a.accountCert().Leaf.SerialNumber,
			renewed.Name():  renewed.tls.leaf().SerialNumber,
		} {
			eventually(t, "nginx serving the renewed certificate of "+name, func() error {
				r := a.do(a.nameClient(nil, name), "GET", a.nameURL(name, false,
					"/api/v1/status"), nil, "")
				if r.status != 200 {
					return fmt.Errorf("%d %s", r.status, r.body)
				}
				if got := r.tls.PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
					return fmt.Errorf("serves serial %v, want %v", got, serial)
				}
				return nil
			})
		}
	})

	t.Run("join writes a vhost and reloads nginx", func(t *testing.T) {
		r := a.do(a.client(nil, ""), "POST", a.httpsURL(fmt.Sprintf(
			"/api/v1/pod/member/service_id/%d/version/1", otherSID)), nil, a.accountToken())
		want(t, r, 200, "join through nginx")
		joined, ok := a.pod.Membership(otherSID)
		if !ok {
			t.Fatal("no membership after the join")
		}
		if _, err := os.Stat(filepath.Join(ng.confDir,
			nginx.MemberFile(joined.MemberID))); err != nil {
			t.Fatal(err)
		}

		// nginx reloads in the background: until its old workers are gone,
		// a connection may still reach one that does not know the name.
		status := func(cert *tls.Certificate, podPort bool, path string, want int) func() error {
			return func() error {
				r := a.do(a.nameClient(cert, joined.Name()), "GET", a.nameURL(joined.Name(),
					podPort, path), nil, "")
				if r.status != want {
					return fmt.Errorf("%d %s", r.status, r.body)
				}
				return nil
			}
		}
		eventually(t, "the new member vhost on 443", status(nil, false, "/member-cert.pem",
			200))
		eventually(t, "a member of the new service on 444", status(clientCert(bOther.tls),
			true, "/member-data-cert.pem", 200))
		eventually(t, "a member of the first service on the new vhost",
			status(clientCert(bNotes.tls), true, "/member-data-cert.pem", 403))
		if !strings.Contains(a.logs.String(), "updated the web server's virtual servers") {
			t.Fatalf("the pod did not log the update:\n%s", a.logs)
		}
	})
}

// TestSharedWebserverCustomDomain serves a custom domain through nginx:
// its ACME challenges on the ACME port, its certificate once there is one,
// and a certificate nginx cannot load rolled back.
func TestSharedWebserverCustomDomain(t *testing.T) {
	ng := startNginx(t)
	n := startNet(t)
	cfg := sharedPodConfig(t, n, ng)
	cfg.CustomDomain, cfg.ManageCustomDomainCert = "pod.example.test", true
	// No ACME server on the Internet: a closed port on loopback.
	cfg.ACMEDirectoryURL = "https://127.0.0.1:1/directory"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := startPod(t, n, cfg)
	account := filepath.Join(ng.confDir, nginx.AccountFile)
	before, err := os.ReadFile(account)
	if err != nil || !bytes.Contains(before, []byte("served here once its certificate")) {
		t.Fatalf("account.conf before a certificate: %v\n%s", err, before)
	}

	src := &changingDomainCert{staticDomainCert: staticDomainCert{token: "tok-123",
		keyAuth: "tok-123.thumbprint"}}
	a.pod.useCustomDomainCert(context.Background(), src)

	c := plainClient(netip.Addr{})
	acme := fmt.Sprintf("http://%s", hostPort(cfg.BindAddress.String(), cfg.ACMEHTTPPort))
	headers := map[string]string{"Host": cfg.CustomDomain}
	r := a.doWith(c, "GET", acme+acmeChallengePath+"tok-123", headers, "")
	if r.status != 200 || string(r.body) != "tok-123.thumbprint" {
		t.Fatalf("ACME challenge through nginx: %d %s", r.status, r.body)
	}
	r = a.doWith(c, "GET", acme+"/app/", headers, "")
	if r.status != 301 {
		t.Fatalf("the ACME port beyond challenges: %d %s", r.status, r.body)
	}

	caCert, caKey := testCA(t)
	good := domainCert(t, caCert, caKey, cfg.CustomDomain, ecKey(t))
	mismatched := *good
	mismatched.PrivateKey = ecKey(t)

	// A certificate whose key does not match makes nginx -t fail: the pod
	// puts the previous files back and nginx keeps serving.
	src.set(&mismatched)
	a.pod.vhostsChanged(context.Background())
	if after, _ := os.ReadFile(account); !bytes.Equal(after, before) {
		t.Fatalf("account.conf was not restored:\n%s", after)
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, webserverDir,
		"custom-domain-cert.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the rejected certificate is still in place: %v", err)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, "the web server rejected the new virtual servers") ||
		!strings.Contains(logs, "custom-domain") || !strings.Contains(logs, "mismatch") {
		t.Fatalf("the rejection is not logged with nginx's message:\n%s", logs)
	}
	want(t, a.do(a.client(nil, ""), "GET", a.httpsURL("/api/v1/status"), nil, ""), 200,
		"the account after the rejection")

	src.set(good)
	a.pod.vhostsChanged(context.Background())
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	domain := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: cfg.CustomDomain}}}
	eventually(t, "the custom domain through nginx", func() error {
		r := a.do(domain, "GET", a.httpsURL("/api/v1/status"), nil, "")
		if r.status != 200 {
			return fmt.Errorf("%d %s", r.status, r.body)
		}
		if cn := r.tls.PeerCertificates[0].Subject.CommonName; cn != cfg.CustomDomain {
			return fmt.Errorf("served %s", cn)
		}
		return nil
	})
}

// changingDomainCert is a staticDomainCert whose certificate the test
// replaces while the pod reads it.
type changingDomainCert struct {
	mu sync.Mutex
	staticDomainCert
}

func (c *changingDomainCert) set(cert *tls.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cert = cert
}

func (c *changingDomainCert) Current() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert
}

// testCA returns a CA that stands for a public one, such as Let's Encrypt.
func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subjectOf("test public CA"),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// domainCert has ca issue a server certificate for name, with the key that
// goes into the tls.Certificate, matching or not.
func domainCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string,
	key *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: subjectOf(name),
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key, Leaf: leaf}
}
