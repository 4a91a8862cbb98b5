package pod

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/nginx"
	"github.com/byoda/byoda-go/internal/pki"
)

// Headers a shared web server sets for the pod.
const (
	// headerPort names the port a request came in on: frontHTTPS,
	// frontPod or frontHTTP. The pod's vhosts set it; without it a
	// verified client certificate means the pod port, as with the
	// reference's vhosts.
	headerPort = "X-Byoda-Port"

	headerVerify = "X-Client-SSL-Verify"
	headerCert   = "X-Client-SSL-Cert"
	headerRealIP = "X-Real-IP"

	// clientSSLPrefix starts the canonical keys of the X-Client-SSL-*
	// headers.
	clientSSLPrefix = "X-Client-Ssl-"
)

// The values of headerPort.
const (
	frontHTTPS = "https"
	frontPod   = "pod"
	frontHTTP  = "http"
)

// Bounds of a client certificate passed in headerCert.
const (
	maxProxiedCert  = 32 << 10
	maxProxiedCerts = 8
)

// acmeChallengePath is where ACME HTTP-01 challenges are asked.
const acmeChallengePath = "/.well-known/acme-challenge/"

// webserverDir is the directory, under ROOT_DIR, of the files the shared
// web server reads.
//
// nginx reads a certificate's key when it loads its configuration and
// cannot decrypt the pod's key files without PRIVATE_KEY_SECRET, which
// would open every key of the pod, not only the TLS keys nginx needs. So
// the pod writes plain copies of those keys alone, in a directory of mode
// 0700 with files of mode 0600 owned by the pod's user: nginx's master
// process, which runs as root, reads them, and its workers and other users
// cannot. The copies follow every renewal and disappear with their
// membership.
const webserverDir = "webserver"

// How deep nginx verifies client certificates: on the account's name down
// to the root (a member's certificate is four below it), on a membership's
// name down to the service CA (a member's certificate is two below it).
const (
	accountVerifyDepth = 4
	memberVerifyDepth  = 2
)

// defaultTestCommand checks nginx's configuration when the pod runs as
// root, nginx is on the PATH and WEBSERVER_TEST_COMMAND is unset.
const defaultTestCommand = "nginx -t -q"

// sharedServer is the pod's side of a shared web server
// (SHARED_WEBSERVER). An nginx of the host terminates TLS on HTTPS_PORT and
// POD_PORT, verifies client certificates on POD_PORT, and passes the
// requests to the pod's plain HTTP_PORT with headers that say what it saw.
// The pod believes those headers only from TRUSTED_PROXIES, and even then
// verifies the client certificate itself, as on its own TLS ports. What it
// cannot check is that the client holds the certificate's key, which only
// the web server saw: anyone who can connect to HTTP_PORT from a trusted
// address can act as any certificate holder, so the trusted addresses must
// be the web server's alone.
type sharedServer struct {
	writer nginx.Writer

	// http2Directive says that the host's nginx reads "http2 on;".
	http2Directive bool

	// writeMu serialises rewrites of the files.
	writeMu sync.Mutex

	mu     sync.RWMutex
	domain customDomainCert
}

// customDomainCert is the source of the custom domain's certificate, in
// its own package: the certificate to serve, nil until one is obtained,
// and the handler of the ACME HTTP-01 challenges that the web server
// passes on from its port 80.
type customDomainCert interface {
	Current() *tls.Certificate
	HTTPHandler(next http.Handler) http.Handler
}

// listenShared binds HTTP_PORT, writes the web server's files and returns
// the server of both ports' routes, which listens on the one plain
// listener, passed as servers' https and pod.
func (p *Pod) listenShared(ctx context.Context) (*servers, error) {
	dir := p.cfg.WebserverConfDir
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("WEBSERVER_CONF_DIR must be the directory the web server "+
			"includes virtual servers from, and %s is not one", dir)
	}
	if err := nginx.CheckOwner(dir, p.cfg.AccountID); err != nil {
		return nil, fmt.Errorf("WEBSERVER_CONF_DIR: %w", err)
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", hostPort(p.httpAddr().String(), p.cfg.HTTPPort))
	if err != nil {
		return nil, fmt.Errorf("HTTP_PORT %d: %w", p.cfg.HTTPPort, err)
	}

	p.shared = p.newSharedServer(ctx)
	if p.domain != nil {
		p.shared.domain = p.domain // written into the first files already
	}
	if err := p.rewriteVhosts(ctx); err != nil {
		ln.Close()
		return nil, err
	}
	p.logger.Info("serving behind a shared web server", "http", ln.Addr().String(),
		"upstream", p.upstream().String(), "https_port", p.cfg.HTTPSPort,
		"pod_port", p.cfg.PodPort)

	srv := api.NewServer(p.sharedHandler(p.handler(false), p.handler(true)), nil)
	return &servers{https: ln, pod: ln, httpsSrv: srv}, nil
}

func (p *Pod) newSharedServer(ctx context.Context) *sharedServer {
	s := &sharedServer{writer: nginx.Writer{Test: p.cfg.WebserverTestCommand,
		Reload: p.cfg.WebserverReloadCommand}}

	_, err := exec.LookPath("nginx")
	if s.writer.Test == "" {
		// nginx -t opens nginx's pid file, which only root may.
		switch {
		case err != nil:
			p.logger.Warn("nginx is not on the PATH: the virtual servers are not checked " +
				"before the web server loads them; set WEBSERVER_TEST_COMMAND to check them")
		case os.Geteuid() != 0:
			p.logger.Warn("nginx -t needs root: the virtual servers are not checked before " +
				"the web server loads them; set WEBSERVER_TEST_COMMAND, such as " +
				"\"sudo nginx -t -q\", to check them")
		default:
			s.writer.Test = defaultTestCommand
		}
	}
	if err != nil {
		return s
	}

	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(vctx, "nginx", "-v").CombinedOutput()
	if err != nil {
		p.logger.Warn("nginx -v failed; writing vhosts for nginx before 1.25.1", "err", err)
	}
	s.http2Directive = nginx.HasHTTP2Directive(string(out))
	return s
}

// httpAddr is the address HTTP_PORT listens on: BIND_ADDRESS, or
// loopback, where an nginx of the same host reaches it and nobody else.
func (p *Pod) httpAddr() netip.Addr {
	if p.cfg.BindAddress.IsValid() {
		return p.cfg.BindAddress
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// upstream is where the web server reaches HTTP_PORT: an unspecified
// BIND_ADDRESS, as in a container whose port the host publishes on its
// loopback address, is reached on loopback.
func (p *Pod) upstream() netip.AddrPort {
	addr := p.httpAddr()
	switch {
	case addr.IsUnspecified() && addr.Is6():
		addr = netip.IPv6Loopback()
	case addr.IsUnspecified():
		addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(addr, uint16(p.cfg.HTTPPort))
}

// sharedHandler serves HTTP_PORT. A request from a trusted proxy is served
// as the port it reports, with the client certificate it reports, and from
// the client address it reports; any other request is served as the HTTPS
// port, without the proxy headers, so that only a token can authenticate
// it.
func (p *Pod) sharedHandler(https, pod http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, acmeChallengePath) {
			if src := p.shared.customDomain(); src != nil {
				src.HTTPHandler(http.HandlerFunc(api.NotFound)).ServeHTTP(w, r)
				return
			}
		}
		if !p.trustedProxy(r) {
			dropProxyHeaders(r.Header)
			https.ServeHTTP(w, r)
			return
		}

		rep, err := readProxyHeaders(r.Header)
		if err != nil {
			api.WriteError(p.logger, w, r, err)
			return
		}
		ctx := r.Context()
		if rep.certs != nil {
			ctx = context.WithValue(ctx, proxiedCertsKey{}, p.withKnownCAs(rep.certs))
		}
		r = r.WithContext(ctx) // a copy, whose RemoteAddr may change
		if rep.client.IsValid() {
			r.RemoteAddr = netip.AddrPortFrom(rep.client, 0).String()
		}

		switch rep.port {
		case frontPod:
			pod.ServeHTTP(w, r)
		case frontHTTP:
			api.NotFound(w, r)
		default:
			https.ServeHTTP(w, r)
		}
	})
}

// trustedProxy reports whether r came from an address of TRUSTED_PROXIES.
// It looks at the connection's address only: headers name addresses
// anyone can write.
func (p *Pod) trustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap().WithZone("")
	for _, prefix := range p.cfg.TrustedProxies {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// dropProxyHeaders removes the headers only a trusted proxy may set.
func dropProxyHeaders(h http.Header) {
	for key := range h {
		if strings.HasPrefix(key, clientSSLPrefix) || key == headerPort {
			delete(h, key)
		}
	}
}

// proxiedCertsKey keys, in a request's context, the client certificate a
// trusted proxy reported, followed by the CAs the pod holds.
type proxiedCertsKey struct{}

// peerCertificates returns the certificates a client presented: in its TLS
// handshake with the pod, or, behind a shared web server, in its handshake
// with the web server. They are not verified yet.
func peerCertificates(r *http.Request) []*x509.Certificate {
	if r.TLS != nil {
		return r.TLS.PeerCertificates
	}
	certs, _ := r.Context().Value(proxiedCertsKey{}).([]*x509.Certificate)
	return certs
}

// withKnownCAs returns certs followed by the CAs of the pod's own chains:
// nginx passes on the client's certificate without the CAs the client
// sent, and a client of this pod is under one of them.
//
// TODO(byoda): a member under a members CA this pod has not seen, after
// its service introduced a new one, is refused until this pod's own member
// certificate is renewed under it; fetching the service's members CA would
// close that gap.
func (p *Pod) withKnownCAs(certs []*x509.Certificate) []*x509.Certificate {
	out := slices.Clone(certs)
	p.mu.RLock()
	defer p.mu.RUnlock()
	out = append(out, p.account.chain[1:]...)
	for _, m := range p.members {
		out = append(out, m.tls.chain[1:]...)
		out = append(out, m.CAChain...)
	}
	return out
}

// proxyReport is what a trusted proxy said about a request.
type proxyReport struct {
	// port is frontHTTPS, frontPod or frontHTTP.
	port string

	// certs are the client's certificate, verified by the proxy, and any
	// certificates passed with it; nil without one.
	certs []*x509.Certificate

	// client is the client's address; invalid when not reported.
	client netip.Addr
}

// readProxyHeaders reads the headers of a trusted proxy. The client
// certificate counts on the pod port only, as on the pod's own ports;
// X-Client-SSL-Subject and X-Client-SSL-Issuing-CA are never believed, the
// certificate itself is read instead.
func readProxyHeaders(h http.Header) (proxyReport, error) {
	var rep proxyReport
	port, err := oneHeader(h, headerPort)
	if err != nil {
		return rep, err
	}
	switch port {
	case "", frontHTTPS, frontPod, frontHTTP:
		rep.port = port
	default:
		return rep, api.Errorf(http.StatusBadRequest, "%s must be %s, %s or %s, not %q",
			headerPort, frontHTTPS, frontPod, frontHTTP, clip(port))
	}

	ip, err := oneHeader(h, headerRealIP)
	if err != nil {
		return rep, err
	}
	if ip != "" {
		if rep.client, err = netip.ParseAddr(ip); err != nil {
			return rep, api.Errorf(http.StatusBadRequest, "%s must be an IP address, not %q",
				headerRealIP, clip(ip))
		}
		rep.client = rep.client.Unmap().WithZone("")
	}

	if rep.port == frontHTTPS || rep.port == frontHTTP {
		return rep, nil
	}
	if rep.certs, err = readProxiedCert(h); err != nil {
		return rep, err
	}
	if rep.port == "" {
		rep.port = frontHTTPS
		if rep.certs != nil {
			rep.port = frontPod
		}
	}
	return rep, nil
}

// readProxiedCert reads the client certificate a proxy verified: nil when
// there was none, an error when the proxy refused it.
func readProxiedCert(h http.Header) ([]*x509.Certificate, error) {
	verify, err := oneHeader(h, headerVerify)
	if err != nil {
		return nil, err
	}
	switch {
	case verify == "" || verify == "NONE":
		return nil, nil
	case strings.HasPrefix(verify, "FAILED"):
		reason := strings.TrimPrefix(strings.TrimPrefix(verify, "FAILED"), ":")
		return nil, api.Errorf(http.StatusForbidden,
			"client certificate not accepted by the web server in front: %s", clip(reason))
	case verify != "SUCCESS":
		return nil, api.Errorf(http.StatusForbidden,
			"%s must be SUCCESS, NONE or FAILED:<reason>, not %q", headerVerify, clip(verify))
	}

	escaped, err := oneHeader(h, headerCert)
	if err != nil {
		return nil, err
	}
	certs, err := parseEscapedCerts(escaped)
	if err != nil {
		return nil, api.Wrap(http.StatusForbidden, err,
			fmt.Sprintf("client certificate not accepted: %v", err))
	}
	return certs, nil
}

// parseEscapedCerts reads the URL-escaped PEM of nginx's
// $ssl_client_escaped_cert.
func parseEscapedCerts(escaped string) ([]*x509.Certificate, error) {
	if escaped == "" {
		return nil, fmt.Errorf("the web server in front verified a certificate "+
			"but did not pass it in %s", headerCert)
	}
	if len(escaped) > maxProxiedCert {
		return nil, fmt.Errorf("%s is longer than %d bytes", headerCert, maxProxiedCert)
	}
	text, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, fmt.Errorf("%s is not URL-escaped PEM", headerCert)
	}
	certs, err := pki.ParseCerts([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%s holds no readable certificate", headerCert)
	}
	if len(certs) > maxProxiedCerts {
		return nil, fmt.Errorf("%s holds more than %d certificates", headerCert,
			maxProxiedCerts)
	}
	return certs, nil
}

// oneHeader returns the value of header name, refusing several.
func oneHeader(h http.Header, name string) (string, error) {
	v := h.Values(name)
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(v[0]), nil
	}
	return "", api.Errorf(http.StatusBadRequest, "%s must be sent once, not %d times",
		name, len(v))
}

// clip makes a header value fit to quote in a detail: printable ASCII, at
// most 100 characters.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, s)
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return s
}

// useCustomDomainCert has the shared web server serve the custom domain
// with src's certificate and pass its ACME challenges to src. The source
// calls vhostsChanged whenever its certificate changes.
func (p *Pod) useCustomDomainCert(ctx context.Context, src customDomainCert) {
	if p.shared == nil {
		return
	}
	p.shared.mu.Lock()
	p.shared.domain = src
	p.shared.mu.Unlock()
	p.vhostsChanged(ctx)
}

func (s *sharedServer) customDomain() customDomainCert {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.domain
}

// vhostsChanged rewrites the shared web server's files after the pod's
// names or certificates changed, when there is a shared web server. Every
// failure is logged.
func (p *Pod) vhostsChanged(ctx context.Context) {
	if p.shared == nil {
		return
	}
	if err := p.rewriteVhosts(context.WithoutCancel(ctx)); err != nil {
		p.logger.Error("updating the web server's virtual servers failed", "err", err)
	}
}

// rewriteVhosts writes the web server's vhost files and the files they
// name, removes those of memberships that are gone, and has the web server
// check and reload them. Only files the web server cannot have are an
// error; a rejected configuration or a failed reload is logged.
func (p *Pod) rewriteVhosts(ctx context.Context) error {
	p.shared.writeMu.Lock()
	defer p.shared.writeMu.Unlock()

	files, remove, err := p.vhostFiles()
	defer func() {
		for _, f := range files {
			if f.Mode == 0o600 {
				clear(f.Data)
			}
		}
	}()
	if err != nil {
		return err
	}

	res, err := p.shared.writer.Apply(ctx, files, remove)
	var cmdErr *nginx.CommandError
	switch {
	case errors.Is(err, nginx.ErrRejected):
		p.logger.Error("the web server rejected the new virtual servers; "+
			"it keeps the previous ones", "files", res.Changed, "err", err)
	case errors.As(err, &cmdErr):
		p.logger.Error("WEBSERVER_RELOAD_COMMAND failed; the web server may still use "+
			"the previous virtual servers", "files", res.Changed, "err", err)
	case err != nil:
		return fmt.Errorf("writing the web server's files: %w", err)
	case len(res.Changed) == 0:
	case res.Reloaded:
		p.logger.Info("updated the web server's virtual servers", "files", res.Changed)
	default:
		p.logger.Warn("the web server must reload to use the changed virtual servers; "+
			"set WEBSERVER_RELOAD_COMMAND to have the pod do it", "command",
			"nginx -s reload", "files", res.Changed)
	}
	if res.TestOutput != "" {
		p.logger.Debug("the web server's configuration test said", "output", res.TestOutput)
	}
	return nil
}

// vhostFiles returns the files to install, those the web server reads
// under ROOT_DIR first and the vhost files that name them last, and the
// files to remove.
func (p *Pod) vhostFiles() ([]nginx.File, []string, error) {
	wf := &webFiles{p: p, dir: filepath.Join(p.cfg.RootDir, webserverDir)}
	if err := os.MkdirAll(wf.dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(wf.dir, 0o700); err != nil {
		return nil, nil, err
	}

	site, err := p.site(wf)
	if err != nil {
		return wf.files, nil, err
	}
	vhosts, err := nginx.Render(site)
	if err != nil {
		return wf.files, nil, err
	}
	var names []string
	for _, v := range vhosts {
		names = append(names, v.Path)
		v.Path = filepath.Join(p.cfg.WebserverConfDir, v.Path)
		wf.files = append(wf.files, v)
	}

	remove, err := nginx.Stale(p.cfg.WebserverConfDir, p.cfg.AccountID, names)
	if err != nil {
		return wf.files, nil, err
	}
	old, err := filepath.Glob(filepath.Join(wf.dir, "*"))
	if err != nil {
		return wf.files, nil, err
	}
	for _, path := range old {
		if !slices.ContainsFunc(wf.files, func(f nginx.File) bool { return f.Path == path }) {
			remove = append(remove, path)
		}
	}
	return wf.files, remove, nil
}

// webFiles collects the files the web server reads under ROOT_DIR.
type webFiles struct {
	p     *Pod
	dir   string
	files []nginx.File
}

// add adds a file and returns its path as the web server sees it.
func (wf *webFiles) add(name string, data []byte, mode uint32) string {
	path := filepath.Join(wf.dir, name)
	wf.files = append(wf.files, nginx.File{Path: path, Data: data, Mode: mode})
	return wf.p.hostPath(path)
}

// addTLS adds a certificate chain and its key, unencrypted and readable by
// the owner alone, and returns a server with their paths.
func (wf *webFiles) addTLS(name string, c tls.Certificate) (nginx.Server, error) {
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return nginx.Server{}, fmt.Errorf("the key of %s is a %T, not a signing key", name,
			c.PrivateKey)
	}
	key, err := pki.MarshalKey(signer)
	if err != nil {
		return nginx.Server{}, fmt.Errorf("the key of %s: %w", name, err)
	}
	var chain bytes.Buffer
	for _, der := range c.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return nginx.Server{Cert: wf.add(name+"-cert.pem", chain.Bytes(), 0o644),
		Key: wf.add(name+".key", key, 0o600)}, nil
}

// site describes the pod's virtual servers, adding the files they name to
// wf.
func (p *Pod) site(wf *webFiles) (nginx.Site, error) {
	p.mu.RLock()
	account := p.account.tls()
	p.mu.RUnlock()

	s := nginx.Site{AccountID: p.cfg.AccountID, Listen: p.cfg.BindAddress,
		HTTPSPort: p.cfg.HTTPSPort, PodPort: p.cfg.PodPort, ACMEPort: p.cfg.ACMEHTTPPort,
		Upstream: p.upstream(), HTTP2Directive: p.shared.http2Directive}
	var err error
	if s.Account, err = wf.addTLS("account", account); err != nil {
		return s, err
	}
	s.Account.Name = pki.AccountName(p.cfg.Network, p.cfg.AccountID).String()
	s.Account.ClientCA = p.hostPath(p.paths.RootCACert())
	s.Account.VerifyDepth = accountVerifyDepth

	members := p.Memberships()
	slices.SortFunc(members, func(a, b *Membership) int {
		return cmp.Compare(a.ServiceID, b.ServiceID)
	})
	for _, m := range members {
		srv, err := wf.addTLS("member-"+m.MemberID, m.tls.tls())
		if err != nil {
			return s, err
		}
		anchor, err := nginx.ClientCAFile(m.ServiceCA)
		if err != nil {
			return s, err
		}
		srv.Name, srv.VerifyDepth = m.Name(), memberVerifyDepth
		srv.ClientCA = wf.add(fmt.Sprintf("service-%d-client-ca.pem", m.ServiceID), anchor,
			0o644)
		s.Members = append(s.Members, nginx.Member{MemberID: m.MemberID, Server: srv})
	}

	if p.cfg.CustomDomain == "" {
		return s, nil
	}
	s.CustomDomain = &nginx.CustomDomain{Name: p.cfg.CustomDomain,
		ACME: p.cfg.ManageCustomDomainCert}
	if src := p.shared.customDomain(); src != nil {
		if c := src.Current(); c != nil && len(c.Certificate) > 0 {
			srv, err := wf.addTLS("custom-domain", *c)
			if err != nil {
				return s, err
			}
			s.CustomDomain.Cert, s.CustomDomain.Key = srv.Cert, srv.Key
		}
	}
	return s, nil
}

// hostPath returns path, a file under ROOT_DIR, as the web server sees it:
// under HOST_ROOT_DIR.
func (p *Pod) hostPath(path string) string {
	rel, err := filepath.Rel(p.cfg.RootDir, path)
	if err != nil || p.cfg.HostRootDir == "" {
		return path
	}
	return filepath.Join(p.cfg.HostRootDir, rel)
}
