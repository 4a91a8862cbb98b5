package podcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/pki"
)

// fixRegister is the fix for a name the directory has wrong or not at all.
const fixRegister = "restart the pod: it registers its addresses with the directory at " +
	"start and every hour, from BIND_ADDRESS when set; check DIRECTORY_URL and the pod's log"

// newResolver returns a resolver that asks dnsServer, or the system's
// resolver when it is empty.
func newResolver(dnsServer string, timeout time.Duration) *net.Resolver {
	if dnsServer == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: timeout}).DialContext(ctx, network, dnsServer)
		},
	}
}

// dial connects to addr, resolving its host through the check's resolver.
func (c *checker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: c.cfg.Timeout}
	if _, err := netip.ParseAddr(host); err == nil {
		return d.DialContext(ctx, network, addr)
	}
	ips, err := c.resolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}
	return d.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
}

// checkDNS resolves name and judges the answer against this machine's
// addresses and BIND_ADDRESS; it returns the address to test the ports at.
func (c *checker) checkDNS(ctx context.Context, check, name string) (netip.Addr, bool) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ips, err := c.resolver.LookupNetIP(ctx, "ip4", name)
	if err != nil || len(ips) == 0 {
		c.add(check, Fail, fmt.Sprintf("%s does not resolve: %v", name, err),
			fixRegister+c.dnsServerHint())
		return netip.Addr{}, false
	}
	a := ips[0].Unmap()
	bind := c.cfg.Pod.BindAddress
	bound := bind.IsValid() && !bind.IsUnspecified()

	switch {
	case bound && a != bind && c.isLocal(a):
		c.add(check, Fail, fmt.Sprintf("%s resolves to %s, but the pod listens on "+
			"BIND_ADDRESS %s only", name, a, bind), fixRegister)
	case !c.isLocal(a) && isPrivate(a):
		c.add(check, Fail, fmt.Sprintf("%s resolves to %s, a private address of another "+
			"machine", name, a), fixRegister)
	case !c.isLocal(a):
		c.add(check, Warn, fmt.Sprintf("%s resolves to %s, which is not an address of "+
			"this machine: if it is your router's public address, the port checks below "+
			"test the forwarding from here, which cannot prove the internet gets through",
			name, a), fmt.Sprintf("forward TCP ports %d and %d of %s to this machine",
			c.cfg.Pod.HTTPSPort, c.cfg.Pod.PodPort, a))
	case isPrivate(a) && c.cfg.PublicNetwork:
		c.add(check, Warn, fmt.Sprintf("%s resolves to %s, a private address that pods "+
			"on the internet cannot reach", name, a), "run the pod at a public address, or "+
			"behind a router that forwards its ports from a public address")
	case isPrivate(a):
		c.add(check, OK, fmt.Sprintf("%s resolves to %s, an address of this machine "+
			"(private: it serves this private network, and this check cannot tell whether "+
			"the internet reaches it)", name, a), "")
	default:
		c.add(check, OK, fmt.Sprintf("%s resolves to %s, an address of this machine",
			name, a), "")
	}
	return a, true
}

func (c *checker) dnsServerHint() string {
	if c.cfg.Pod.DNSServer != "" {
		return fmt.Sprintf("; and that DNS_SERVER %s answers for %s", c.cfg.Pod.DNSServer,
			c.cfg.Pod.Network)
	}
	return ""
}

// checkDirectory checks that the directory answers, under the network's
// root or a public certificate.
func (c *checker) checkDirectory(ctx context.Context) {
	const check = "directory"
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(c.root)
	cl, err := api.NewClient(api.ClientConfig{URL: c.cfg.Pod.DirectoryURL,
		TLS: &tls.Config{RootCAs: pool, ServerName: "dir." + c.cfg.Pod.Network,
			MinVersion: tls.VersionTLS12}, Dial: c.dial, Timeout: c.cfg.Timeout})
	if err == nil {
		_, err = cl.Raw(ctx, "GET", "/api/v1/status", nil)
		cl.CloseIdle()
	}
	if err != nil {
		c.add(check, Fail, fmt.Sprintf("the directory at %s does not answer: %v",
			c.cfg.Pod.DirectoryURL, err), "check DIRECTORY_URL and that this machine "+
			"reaches it; the pod registers its addresses there"+c.dnsServerHint())
		return
	}
	c.add(check, OK, fmt.Sprintf("%s answers; it keeps the pod's DNS records, checked "+
		"below", c.cfg.Pod.DirectoryURL), "")
}

// probe asks https://name:port/api/v1/status at addr, presenting client
// when set, and returns the server's certificate.
func (c *checker) probe(ctx context.Context, addr netip.Addr, port int, name string,
	client *tls.Certificate) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	pool.AddCert(c.root)
	cfg := &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	target := net.JoinHostPort(addr.String(), strconv.Itoa(port))
	tr := &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: c.cfg.Timeout}).DialContext(ctx, network, target)
		},
		TLSHandshakeTimeout: c.cfg.Timeout,
		DisableKeepAlives:   true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * c.cfg.Timeout}

	url := "https://" + net.JoinHostPort(name, strconv.Itoa(port)) + "/api/v1/status"
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/status answered %d: %.200s", resp.StatusCode,
			body)
	}
	return resp.TLS.PeerCertificates[0], nil
}

// describeProbeError says in words why nothing answered at addr:port.
func describeProbeError(target string, err error) string {
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at %s (connection refused)", target)
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no answer from %s in time: a firewall may drop the traffic",
			target)
	case errors.As(err, &certErr):
		return fmt.Sprintf("%s serves a certificate that does not verify under the "+
			"network's root: %v", target, certErr.Err)
	}
	return fmt.Sprintf("%s: %v", target, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// portFix is the fix for a port that does not answer as the pod.
func (c *checker) portFix(port int, err error) string {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Sprintf("another server answers on port %d at that address: stop it "+
			"or move it, or point the pod's DNS at the pod", port)
	}
	return fmt.Sprintf("start the pod; if it runs, let TCP port %d through the firewall "+
		"and forward it on your router to this machine", port)
}

// checkPorts tests HTTPS_PORT and POD_PORT at the account's address: each
// must serve the account's certificate, and POD_PORT must take the
// account's certificate as a client's.
func (c *checker) checkPorts(ctx context.Context, addr netip.Addr, resolved bool) {
	pod := c.cfg.Pod
	for _, p := range []struct {
		check  string
		port   int
		client bool
	}{{fmt.Sprintf("port %d (HTTPS_PORT)", pod.HTTPSPort), pod.HTTPSPort, false},
		{fmt.Sprintf("port %d (POD_PORT)", pod.PodPort), pod.PodPort, true}} {
		if !resolved {
			c.add(p.check, Fail, "not checked: the account's name does not resolve",
				fixRegister)
			continue
		}
		var client *tls.Certificate
		if p.client {
			if c.account.key == nil {
				c.add(p.check, Warn, "not checked: it needs the account key, which did "+
					"not open", "see the keys check above")
				continue
			}
			cert := pki.TLSCertificate(c.account.chain, c.account.key)
			client = &cert
		}
		c.checkServed(ctx, p.check, addr, p.port, c.accountName(), client, c.account.chain)
	}
}

// checkMemberPort tests POD_PORT at a membership's address, as other
// members reach it.
func (c *checker) checkMemberPort(ctx context.Context, m *member, addr netip.Addr,
	resolved bool) {
	check := fmt.Sprintf("port %d for service %d", c.cfg.Pod.PodPort, m.sid)
	switch {
	case !resolved:
		c.add(check, Fail, "not checked: the membership's name does not resolve",
			fixRegister)
		return
	case m.tls.key == nil:
		c.add(check, Warn, "not checked: it needs the member key, which did not open",
			"see the keys check above")
		return
	}
	cert := pki.TLSCertificate(m.tls.chain, m.tls.key)
	c.checkServed(ctx, check, addr, c.cfg.Pod.PodPort, m.name, &cert, m.tls.chain)
}

// checkServed probes name at addr:port and checks that the server is the
// pod: that it serves the certificate of want.
func (c *checker) checkServed(ctx context.Context, check string, addr netip.Addr, port int,
	name string, client *tls.Certificate, want []*x509.Certificate) {
	target := net.JoinHostPort(addr.String(), strconv.Itoa(port))
	served, err := c.probe(ctx, addr, port, name, client)
	switch {
	case err != nil:
		c.add(check, Fail, describeProbeError(target, err), c.portFix(port, err))
	case len(want) > 0 && !pki.SameCert(served, want[0]):
		c.add(check, Warn, fmt.Sprintf("%s answers for %s with another certificate than "+
			"the one in ROOT_DIR (serial %s)", target, name, served.SerialNumber),
			"restart the pod if it has not picked up a renewed certificate; make sure "+
				"only one pod uses this ROOT_DIR")
	default:
		how := "serves " + name
		if client != nil {
			how += " and accepts its client certificate"
		}
		c.add(check, OK, fmt.Sprintf("%s %s", target, how), "")
	}
}
