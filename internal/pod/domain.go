package pod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/domaincert"
	"github.com/byoda/byoda-go/internal/pki"
)

// domainServer keeps the custom domain's certificate current and, when the
// pod obtains it by ACME and no shared web server holds port 80, serves
// ACME_HTTP_PORT: the ACME server's HTTP-01 challenges, and a redirect to
// HTTPS for everything else. A nil domainServer, for a pod without a
// custom domain, does nothing.
type domainServer struct {
	p   *Pod
	src *domaincert.Source

	ln  net.Listener // nil without ACME_HTTP_PORT
	srv *http.Server

	ctx    context.Context
	cancel context.CancelFunc
	tasks  sync.WaitGroup
}

// listenDomain sets up the custom domain's certificate source and binds
// ACME_HTTP_PORT when the pod answers the challenges itself. Files renewed
// by someone else leave port 80 to them: certbot's standalone mode binds
// it for each renewal.
func (p *Pod) listenDomain(ctx context.Context) (*domainServer, error) {
	if p.cfg.CustomDomain == "" {
		return nil, nil
	}
	src, err := p.newDomainSource()
	if err != nil {
		return nil, err
	}
	p.domain = src

	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &domainServer{p: p, src: src, ctx: dctx, cancel: cancel}
	if !src.Managed() || p.cfg.SharedWebserver {
		return d, nil
	}

	host := ""
	if p.cfg.BindAddress.IsValid() {
		host = p.cfg.BindAddress.String()
	}
	var lc net.ListenConfig
	d.ln, err = lc.Listen(ctx, "tcp", hostPort(host, p.cfg.ACMEHTTPPort))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ACME_HTTP_PORT %d: %w", p.cfg.ACMEHTTPPort, err)
	}
	d.srv = api.NewServer(src.HTTPHandler(redirectHandler(src.Domain(), p.cfg.HTTPSPort)),
		nil)
	p.logger.Info("answering ACME challenges and redirecting to HTTPS",
		"acme_http", d.ln.Addr().String(), "custom_domain", src.Domain())
	return d, nil
}

// newDomainSource returns the source the configuration asks for: ACME, or
// the files in LETSENCRYPT_DIRECTORY.
func (p *Pod) newDomainSource() (*domaincert.Source, error) {
	logger := p.logger.With("custom_domain", p.cfg.CustomDomain)
	if !p.cfg.ManageCustomDomainCert {
		return domaincert.NewFiles(domaincert.FilesConfig{Domain: p.cfg.CustomDomain,
			Dir: p.cfg.LetsEncryptDir, Poll: p.cfg.CustomDomainPoll, Logger: logger})
	}

	client, err := p.acmeHTTPClient()
	if err != nil {
		return nil, err
	}
	return domaincert.NewManaged(domaincert.ManagedConfig{
		Domain:       p.cfg.CustomDomain,
		Dir:          filepath.Join(p.cfg.RootDir, "custom-domain", p.cfg.CustomDomain),
		KeySecret:    p.cfg.PrivateKeySecret,
		DirectoryURL: p.cfg.ACMEDirectoryURL,
		HTTPClient:   client,
		Email:        p.cfg.ACMEEmail,
		Logger:       logger,
	})
}

// acmeHTTPClient reaches the ACME server from BIND_ADDRESS, through the
// system's resolver (the network's DNS server knows only the network), and
// trusts ACME_ROOT_CA instead of the system's roots when it is set.
func (p *Pod) acmeHTTPClient() (*http.Client, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if b := p.cfg.BindAddress; b.IsValid() && !b.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: b.AsSlice()}
	}
	t := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second, IdleConnTimeout: time.Minute,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}

	if p.cfg.ACMERootCAFile != "" {
		certs, err := pki.LoadCerts(p.cfg.ACMERootCAFile)
		if err != nil {
			return nil, fmt.Errorf("ACME_ROOT_CA: %w", err)
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: t, Timeout: time.Minute}, nil
}

// redirectHandler sends every request to the same path and query on the
// custom domain over HTTPS.
func redirectHandler(domain string, httpsPort int) http.Handler {
	base := "https://" + domain
	if httpsPort != 443 {
		base += ":" + strconv.Itoa(httpsPort)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri := r.URL.RequestURI()
		if !strings.HasPrefix(uri, "/") {
			uri = "/"
		}
		http.Redirect(w, r, base+uri, http.StatusPermanentRedirect)
	})
}

// domainCertificate returns the custom domain's certificate when name is
// the custom domain; ok is false for every other name.
func (p *Pod) domainCertificate(name string, hello *tls.ClientHelloInfo) (
	c *tls.Certificate, ok bool, err error) {
	if p.domain == nil || name != p.domain.Domain() {
		return nil, false, nil
	}
	c, err = p.domain.GetCertificate(hello)
	return c, true, err
}

// attach adds d to the servers that listen returns, or gives up the port
// when listen failed.
func (d *domainServer) attach(s *servers, err error) (*servers, error) {
	if err != nil {
		if d != nil {
			d.cancel()
			if d.ln != nil {
				d.ln.Close()
			}
		}
		return nil, err
	}
	s.domain = d
	return s, nil
}

// serve starts keeping the certificate current and serving ACME_HTTP_PORT,
// whose failure goes to errs. Behind a shared web server, the web server
// gets the certificate and is told when it changes.
func (d *domainServer) serve(errs chan<- error) {
	if d == nil {
		return
	}
	d.tasks.Go(func() { d.src.Run(d.ctx) })
	if d.ln != nil {
		go func() { errs <- d.srv.Serve(d.ln) }()
	}
	if d.p.shared == nil {
		return
	}

	// The web server takes the certificate there is after subscribing, so
	// that no change falls in between.
	changed := d.src.Subscribe()
	d.p.useCustomDomainCert(d.ctx, d.src)
	d.tasks.Go(func() {
		for {
			select {
			case <-d.ctx.Done():
				return
			case <-changed:
				d.p.vhostsChanged(d.ctx)
			}
		}
	})
}

// shutdown stops the source and ACME_HTTP_PORT.
func (d *domainServer) shutdown(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.cancel()
	var err error
	if d.srv != nil {
		err = d.srv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() {
		d.tasks.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("custom domain certificate: %w", ctx.Err()))
	}
	return err
}
