package domaincert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
)

// ErrNoCertificate is returned by GetCertificate while the source has no
// certificate for its domain yet.
var ErrNoCertificate = errors.New("no certificate for the custom domain yet")

// challengePrefix is the path under which ACME servers fetch HTTP-01 key
// authorizations (RFC 8555, section 8.3).
const challengePrefix = "/.well-known/acme-challenge/"

// Source holds the certificate of one custom domain and keeps it current
// while Run runs. Its methods are safe for concurrent use.
type Source struct {
	domain string
	logger *slog.Logger
	now    func() time.Time
	run    func(ctx context.Context)

	// managed says whether the source answers ACME HTTP-01 challenges.
	managed bool

	cert atomic.Pointer[tls.Certificate]

	mu     sync.Mutex
	subs   []chan struct{}
	tokens map[string]string // key authorizations by challenge token
}

func newSource(domain string, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		domain: normalize(domain),
		logger: logger,
		now:    time.Now,
		tokens: map[string]string{},
	}
}

// Domain returns the name the source holds the certificate of, in lower
// case.
func (s *Source) Domain() string { return s.domain }

// Managed reports whether the source obtains the certificate by ACME itself
// and so needs its HTTP-01 challenges answered on port 80.
func (s *Source) Managed() bool { return s.managed }

// Run keeps the certificate current until ctx ends: it obtains and renews
// a managed certificate, or watches the files of an external one.
func (s *Source) Run(ctx context.Context) { s.run(ctx) }

// Current returns the certificate being served, or nil before there is one.
// The caller must not modify it.
func (s *Source) Current() *tls.Certificate { return s.cert.Load() }

// GetCertificate returns the current certificate for a TLS handshake, as
// tls.Config.GetCertificate does, whatever name the client asked for. It
// fails with ErrNoCertificate before there is one.
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%s: %w", s.domain, ErrNoCertificate)
}

// Subscribe returns a channel that receives a value after the certificate
// changed. Changes that come faster than they are read are merged into one.
func (s *Source) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

// set serves c from now on and tells the subscribers.
func (s *Source) set(c *tls.Certificate) {
	s.cert.Store(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// HTTPHandler answers the ACME server's HTTP-01 challenges of a managed
// source and passes every other request to next.
func (s *Source) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, challengePrefix)
		if !ok || !s.managed {
			next.ServeHTTP(w, r)
			return
		}

		s.mu.Lock()
		auth, found := s.tokens[token]
		s.mu.Unlock()
		if !found || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			s.logger.Debug("unknown acme challenge requested", "token", token,
				"remote", r.RemoteAddr)
			http.Error(w, "no such challenge", http.StatusNotFound)
			return
		}
		s.logger.Info("answered acme http-01 challenge", "token", token,
			"remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(auth))
	})
}

// expect makes the challenge of token answerable until the returned
// function is called.
func (s *Source) expect(token, keyAuth string) (done func()) {
	s.mu.Lock()
	s.tokens[token] = keyAuth
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.tokens, token)
		s.mu.Unlock()
	}
}

// parsePair reads a PEM certificate chain (leaf first) and its private key
// and checks that they make a usable certificate for domain at now. A chain
// file that ends in the middle of a PEM block, as a file being written
// does, is refused.
func parsePair(chainPEM, keyPEM, password []byte, domain string, now time.Time) (
	*tls.Certificate, error) {
	if err := checkComplete(chainPEM); err != nil {
		return nil, err
	}
	chain, err := pki.ParseCerts(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("reading certificate chain: %w", err)
	}
	key, err := pki.ParseKey(keyPEM, password)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	if err := check(chain, key, domain, now); err != nil {
		return nil, err
	}

	c := pki.TLSCertificate(chain, key)
	return &c, nil
}

// checkComplete fails when data holds the start of a PEM block that does
// not end.
func checkComplete(data []byte) error {
	rest := data
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = r
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return errors.New("the certificate chain ends in an incomplete PEM block")
	}
	return nil
}

// check makes sure that key belongs to the leaf of chain and that the leaf
// is a server certificate for domain, valid at now.
func check(chain []*x509.Certificate, key crypto.Signer, domain string, now time.Time) error {
	leaf := chain[0]
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return errors.New("the private key does not belong to the certificate")
	}
	if err := leaf.VerifyHostname(domain); err != nil {
		return fmt.Errorf("the certificate does not cover %s: %w", domain, err)
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("the certificate is not valid before %s",
			leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if !now.Before(leaf.NotAfter) {
		return fmt.Errorf("the certificate expired at %s",
			leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// sleep waits for d or the end of ctx and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func normalize(domain string) string {
	return strings.ToLower(strings.TrimSuffix(domain, "."))
}

// serial returns a certificate's serial number as hex, for logs.
func serial(c *tls.Certificate) string {
	return fmt.Sprintf("%x", c.Leaf.SerialNumber)
}
