package domaincert

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DefaultPoll is how often a files source looks for renewed files.
const DefaultPoll = time.Minute

// FilesConfig configures a source that reads a certificate someone else
// renews, laid out as certbot does.
type FilesConfig struct {
	// Domain is the custom domain.
	Domain string

	// Dir is the Let's Encrypt directory: the certificate is
	// Dir/live/<domain>/fullchain.pem with its key in privkey.pem.
	Dir string

	// Poll is how often the files are read again [DefaultPoll].
	Poll time.Duration

	// Logger receives what the source loads and refuses.
	Logger *slog.Logger
}

// files is the state of a source that reads an external certificate.
type files struct {
	cfg       FilesConfig
	src       *Source
	chainPath string
	keyPath   string

	// seen is the digest of the last pair of files read, good or bad, so
	// that unchanged files are neither parsed nor reported again.
	seen [sha256.Size]byte

	// warned is set once the current certificate was reported as close to
	// its expiry.
	warned bool
}

// NewFiles returns a source that serves the certificate in cfg.Dir and,
// while Run runs, replaces it when the files change. Missing or bad files
// are logged, not fatal: the source serves nothing until good ones appear.
func NewFiles(cfg FilesConfig) (*Source, error) {
	f, err := newFiles(cfg)
	if err != nil {
		return nil, err
	}
	return f.src, nil
}

func newFiles(cfg FilesConfig) (*files, error) {
	if cfg.Domain == "" || cfg.Dir == "" {
		return nil, errors.New("domaincert: a files source needs a domain and a directory")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}

	s := newSource(cfg.Domain, cfg.Logger)
	live := filepath.Join(cfg.Dir, "live", s.domain)
	f := &files{cfg: cfg, src: s, chainPath: filepath.Join(live, "fullchain.pem"),
		keyPath: filepath.Join(live, "privkey.pem")}
	s.run = f.run
	f.reload()
	return f, nil
}

func (f *files) run(ctx context.Context) {
	for sleep(ctx, f.cfg.Poll) {
		f.reload()
	}
}

// reload reads the files and serves them if they changed and are good. The
// files are symbolic links into certbot's archive directory, followed on
// every read, so a renewal that repoints them is seen.
func (f *files) reload() {
	chainPEM, keyPEM, err := f.read()
	sum := digest(chainPEM, keyPEM, err)
	if sum == f.seen {
		f.warnExpiry()
		return
	}
	f.seen = sum

	var c *tls.Certificate
	if err == nil {
		c, err = parsePair(chainPEM, keyPEM, nil, f.src.domain, f.src.now())
	}
	if err != nil {
		if f.src.Current() != nil {
			f.src.logger.Warn("certificate files of the custom domain are not usable; "+
				"keeping the current certificate", "path", f.chainPath, "err", err)
		} else {
			f.src.logger.Warn("certificate files of the custom domain are not usable; "+
				"TLS for the custom domain fails until they are", "path", f.chainPath,
				"err", err)
		}
		return
	}

	f.warned = false
	f.src.set(c)
	f.src.logger.Info("loaded certificate of the custom domain", "path", f.chainPath,
		"serial", serial(c), "not_after", c.Leaf.NotAfter)
	f.warnExpiry()
}

// digest sums what a read of the files found, contents or failure.
func digest(chainPEM, keyPEM []byte, err error) [sha256.Size]byte {
	h := sha256.New()
	h.Write(chainPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	h.Write([]byte{0})
	if err != nil {
		h.Write([]byte(err.Error()))
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// read returns the contents of both files.
func (f *files) read() (chainPEM, keyPEM []byte, err error) {
	chainPEM, err = os.ReadFile(f.chainPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate chain: %w", err)
	}
	keyPEM, err = os.ReadFile(f.keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading private key: %w", err)
	}
	return chainPEM, keyPEM, nil
}

// warnExpiry says once per certificate that it has less than a sixth of its
// lifetime left: certbot renews at a third, so its renewals have stopped.
func (f *files) warnExpiry() {
	c := f.src.Current()
	if c == nil || f.warned {
		return
	}
	leaf := c.Leaf
	if leaf.NotAfter.Sub(f.src.now()) > leaf.NotAfter.Sub(leaf.NotBefore)/6 {
		return
	}
	f.warned = true
	f.src.logger.Warn("certificate of the custom domain expires soon and was not renewed; "+
		"check that certbot renew runs", "path", f.chainPath, "not_after", leaf.NotAfter)
}
