package domaincert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/byoda/byoda-go/internal/pki"
)

// Names of the files a managed source keeps in ManagedConfig.Dir.
const (
	AccountKeyFile   = "acme-account.key"
	KeyFile          = "privkey.key"
	ChainFile        = "fullchain.pem"
	DirectoryURLFile = "acme-directory-url"
)

// Retry policy of a managed source after a failed attempt: the wait starts
// at retryMin and doubles up to retryMax, give or take a tenth. With
// Let's Encrypt's limit of five failed validations per domain and hour,
// the first hour of failures stays under it.
const (
	retryMin = 2 * time.Minute
	retryMax = time.Hour

	// attemptTimeout bounds one attempt to obtain a certificate.
	attemptTimeout = 10 * time.Minute
)

// ManagedConfig configures a source that obtains its certificate by ACME.
type ManagedConfig struct {
	// Domain is the custom domain.
	Domain string

	// Dir is where the account key, the certificate's key and its chain
	// are kept; it is made when missing.
	Dir string

	// KeySecret encrypts the two private keys on disk.
	KeySecret []byte

	// DirectoryURL is the ACME server's directory.
	DirectoryURL string

	// HTTPClient talks to the ACME server; nil uses one that trusts the
	// system's roots.
	HTTPClient *http.Client

	// Email is the contact of the ACME account; empty registers none.
	Email string

	// RenewBefore is how long before expiry the certificate is renewed;
	// zero renews when a third of its lifetime is left.
	RenewBefore time.Duration

	// Logger receives the source's progress and failures.
	Logger *slog.Logger
}

// managed is the state of a source that obtains its certificate by ACME.
type managed struct {
	cfg    ManagedConfig
	src    *Source
	client *acme.Client

	// stale is set when the stored certificate came from another ACME
	// directory: it is served, but replaced at once.
	stale bool
}

// NewManaged returns a source that obtains the certificate of cfg.Domain
// from an ACME server by the HTTP-01 challenge once Run runs. A stored
// certificate that is still valid is served from the start.
func NewManaged(cfg ManagedConfig) (*Source, error) {
	m, err := newManaged(cfg)
	if err != nil {
		return nil, err
	}
	return m.src, nil
}

func newManaged(cfg ManagedConfig) (*managed, error) {
	if cfg.Domain == "" || cfg.Dir == "" || cfg.DirectoryURL == "" {
		return nil, errors.New("domaincert: a managed source needs a domain, a directory " +
			"and an ACME directory URL")
	}
	if len(cfg.KeySecret) == 0 {
		return nil, errors.New("domaincert: a managed source needs a key secret")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: time.Minute}
	}

	s := newSource(cfg.Domain, cfg.Logger)
	s.managed = true
	cfg.Domain = s.domain
	m := &managed{cfg: cfg, src: s}
	s.run = m.run
	m.loadStored()
	return m, nil
}

// loadStored serves the stored certificate when there is a usable one.
func (m *managed) loadStored() {
	chainPEM, err := os.ReadFile(m.path(ChainFile))
	if errors.Is(err, fs.ErrNotExist) {
		m.src.logger.Info("no stored certificate for the custom domain")
		return
	}
	var c *tls.Certificate
	if err == nil {
		var keyPEM []byte
		keyPEM, err = os.ReadFile(m.path(KeyFile))
		if err == nil {
			c, err = parsePair(chainPEM, keyPEM, m.cfg.KeySecret, m.cfg.Domain, m.src.now())
		}
	}
	if err != nil {
		m.src.logger.Warn("stored certificate of the custom domain is not usable; "+
			"requesting a new one", "dir", m.cfg.Dir, "err", err)
		return
	}

	from, err := os.ReadFile(m.path(DirectoryURLFile))
	if err != nil || strings.TrimSpace(string(from)) != m.cfg.DirectoryURL {
		m.stale = true
		m.src.logger.Info("stored certificate came from another ACME directory; "+
			"serving it until a new one is issued", "acme_directory_url", m.cfg.DirectoryURL)
	}
	m.src.set(c)
	m.src.logger.Info("loaded stored certificate of the custom domain", "serial", serial(c),
		"not_after", c.Leaf.NotAfter, "renew_at", m.renewAt(c.Leaf))
}

func (m *managed) path(name string) string { return filepath.Join(m.cfg.Dir, name) }

// run obtains a certificate when there is none or the current one is due,
// and sleeps until the next is due, retrying with backoff after failures.
func (m *managed) run(ctx context.Context) {
	failures := 0
	for {
		if wait := m.untilDue(); wait > 0 {
			m.src.logger.Debug("custom domain certificate not due yet",
				"renew_at", m.src.now().Add(wait))
			if !sleep(ctx, wait) {
				return
			}
			continue
		}

		m.src.logger.Info("requesting certificate for the custom domain",
			"attempt", failures+1, "acme_directory_url", m.cfg.DirectoryURL)
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		c, err := m.obtain(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			m.stale = false
			m.src.set(c)
			m.src.logger.Info("obtained certificate for the custom domain",
				"serial", serial(c), "not_after", c.Leaf.NotAfter,
				"renew_at", m.renewAt(c.Leaf))
			continue
		}

		// The next attempt registers again, in case the CA forgot the
		// account.
		m.client = nil
		failures++
		wait := retryWait(failures, err)
		m.src.logger.Warn("obtaining certificate for the custom domain failed",
			"attempt", failures, "retry_in", wait.Round(time.Second), "err", err)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// untilDue returns how long the current certificate can be served before
// it must be renewed; zero or less means now.
func (m *managed) untilDue() time.Duration {
	c := m.src.Current()
	if c == nil || m.stale {
		return 0
	}
	return m.renewAt(c.Leaf).Sub(m.src.now())
}

// renewAt is when leaf is renewed: RenewBefore before it expires, or when a
// third of its lifetime is left, made up to a fiftieth of the lifetime
// earlier, by an amount taken from the serial number, so that pods do not
// all come to the CA at the same moment.
func (m *managed) renewAt(leaf *x509.Certificate) time.Time {
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	before := m.cfg.RenewBefore
	if before <= 0 {
		before = lifetime / 3
	}
	spread := new(big.Int).Mod(leaf.SerialNumber, big.NewInt(1000)).Int64()
	jitter := lifetime / 50 * time.Duration(spread) / 1000
	return leaf.NotAfter.Add(-before - jitter)
}

// retryWait is how long to wait after the n-th failure in a row: what the
// CA asked for when it limited the rate, else doubling from retryMin to
// retryMax, each give or take a tenth.
func retryWait(n int, err error) time.Duration {
	d := retryMax
	if n < 16 {
		d = min(retryMin<<(n-1), retryMax)
	}
	d += time.Duration(mrand.Int64N(int64(d/5))) - d/10
	if ra, ok := acme.RateLimit(err); ok && ra > d {
		d = ra
	}
	return d
}

// obtain orders a certificate, proves control of the domain by HTTP-01 and
// keeps the issued certificate with a new key.
func (m *managed) obtain(ctx context.Context) (*tls.Certificate, error) {
	client, err := m.acmeClient(ctx)
	if err != nil {
		return nil, err
	}

	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(m.cfg.Domain))
	if err != nil {
		return nil, fmt.Errorf("creating order: %w", err)
	}
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, client, u); err != nil {
			return nil, err
		}
	}
	if order, err = client.WaitOrder(ctx, order.URI); err != nil {
		return nil, fmt.Errorf("waiting for the order: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating certificate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: m.cfg.Domain}, DNSNames: []string{m.cfg.Domain}}, key)
	if err != nil {
		return nil, fmt.Errorf("making certificate request: %w", err)
	}
	ders, _, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalizing the order: %w", err)
	}
	return m.keep(ders, key)
}

// acmeClient returns the ACME client, registering the account the first
// time; the account key is made on first use and kept.
func (m *managed) acmeClient(ctx context.Context) (*acme.Client, error) {
	if m.client != nil {
		return m.client, nil
	}
	key, err := m.accountKey()
	if err != nil {
		return nil, err
	}

	client := &acme.Client{Key: key, HTTPClient: m.cfg.HTTPClient,
		DirectoryURL: m.cfg.DirectoryURL, UserAgent: "byoda-pod"}
	var account acme.Account
	if m.cfg.Email != "" {
		account.Contact = []string{"mailto:" + m.cfg.Email}
	}
	_, err = client.Register(ctx, &account, func(tos string) bool {
		m.src.logger.Info("agreeing to the ACME server's terms of service", "terms", tos)
		return true
	})
	if err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("registering the ACME account: %w", err)
	}
	m.client = client
	return client, nil
}

// accountKey loads the ACME account key, or makes and keeps one.
func (m *managed) accountKey() (crypto.Signer, error) {
	path := m.path(AccountKeyFile)
	key, err := pki.LoadKey(path, m.cfg.KeySecret)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ACME account key: %w", err)
	}
	if err := pki.SaveKey(path, k, m.cfg.KeySecret); err != nil {
		return nil, err
	}
	return k, nil
}

// authorize completes the authorization at url by HTTP-01, unless the
// account already holds it.
func (m *managed) authorize(ctx context.Context, client *acme.Client, url string) error {
	z, err := client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("reading authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}

	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("the ACME server offers no http-01 challenge for %s",
			z.Identifier.Value)
	}
	keyAuth, err := client.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		return fmt.Errorf("answering http-01 challenge: %w", err)
	}
	defer m.src.expect(chal.Token, keyAuth)()

	if _, err := client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("accepting http-01 challenge: %w", err)
	}
	if _, err := client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("http-01 challenge for %s: %w", z.Identifier.Value, err)
	}
	return nil
}

// keep checks the issued chain against key and stores both; a chain that
// does not fit is not kept.
func (m *managed) keep(ders [][]byte, key crypto.Signer) (*tls.Certificate, error) {
	var chainPEM []byte
	for _, der := range ders {
		chainPEM = append(chainPEM, pem.EncodeToMemory(
			&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyPEM, err := pki.MarshalEncryptedKey(key, m.cfg.KeySecret)
	if err != nil {
		return nil, fmt.Errorf("encrypting certificate key: %w", err)
	}
	c, err := parsePair(chainPEM, keyPEM, m.cfg.KeySecret, m.cfg.Domain, m.src.now())
	if err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}

	// The key goes first: after a crash between the two writes the pair
	// does not match, and the next start orders a new certificate.
	if err := pki.WriteFile(m.path(KeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := pki.WriteFile(m.path(ChainFile), chainPEM, 0o644); err != nil {
		return nil, err
	}
	if err := pki.WriteFile(m.path(DirectoryURLFile), []byte(m.cfg.DirectoryURL+"\n"),
		0o644); err != nil {
		return nil, err
	}
	return c, nil
}
