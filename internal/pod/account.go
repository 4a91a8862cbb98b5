package pod

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/pki"
)

// secret is a certificate chain (leaf first) with its private key.
type secret struct {
	chain []*x509.Certificate
	key   crypto.Signer
}

func (s *secret) leaf() *x509.Certificate { return s.chain[0] }

func (s *secret) tls() tls.Certificate { return pki.TLSCertificate(s.chain, s.key) }

// loadSecret reads a certificate chain and its key, or returns nil when the
// certificate file does not exist.
func loadSecret(certPath, keyPath string, password []byte) (*secret, error) {
	certs, err := pki.LoadCerts(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}

	key, err := pki.LoadKey(keyPath, password)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(certs[0].PublicKey) {
		return nil, fmt.Errorf("%s does not hold the key of %s", keyPath, certPath)
	}
	return &secret{chain: certs, key: key}, nil
}

// save writes the secret's key, then its certificate chain.
func (s *secret) save(certPath, keyPath string, password []byte) error {
	if err := pki.SaveKey(keyPath, s.key, password); err != nil {
		return err
	}
	return pki.SaveCertChain(certPath, s.chain...)
}

// pinRoot makes sure the network's root CA is in the layout: copied from
// RootCAFile, downloaded and checked against RootCAFingerprint, or, with
// neither, downloaded from a directory with a public certificate.
func (p *Pod) pinRoot(ctx context.Context) error {
	path := p.paths.RootCACert()
	var have *x509.Certificate
	if certs, err := pki.LoadCerts(path); err == nil {
		have = certs[0]
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	var want *x509.Certificate
	switch {
	case p.cfg.RootCAFile != "":
		certs, err := pki.LoadCerts(p.cfg.RootCAFile)
		if err != nil {
			return fmt.Errorf("NETWORK_ROOT_CA: %w", err)
		}
		want = certs[0]
	case have != nil:
		want = have
	default:
		root, err := p.downloadRoot(ctx)
		if err != nil {
			return err
		}
		want = root
	}

	if p.cfg.RootCAFingerprint != "" && pki.Fingerprint(want) != p.cfg.RootCAFingerprint {
		return fmt.Errorf("the network root CA has fingerprint %s, NETWORK_ROOT_CA pins %s",
			pki.Fingerprint(want), p.cfg.RootCAFingerprint)
	}
	if have != nil && !bytes.Equal(have.Raw, want.Raw) {
		return fmt.Errorf("%s holds another root CA than NETWORK_ROOT_CA", path)
	}
	if have == nil {
		if err := pki.WriteFile(path, pki.EncodeCert(want), 0o644); err != nil {
			return err
		}
	}

	p.root = want
	p.verifier = &pki.Verifier{Network: p.cfg.Network, Root: want}
	return nil
}

// downloadRoot fetches /root-ca.pem from the directory. Without a pinned
// fingerprint the directory's certificate must be publicly trusted; with one,
// the download is checked against it instead.
func (p *Pod) downloadRoot(ctx context.Context) (*x509.Certificate, error) {
	cfg := p.directoryConfig(nil)
	cfg.RootCAs = nil
	if p.cfg.RootCAFingerprint != "" {
		cfg.InsecureSkipVerify = true
	}

	dir, err := directory.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	data, err := dir.RootCA(ctx)
	if err != nil {
		return nil, fmt.Errorf("downloading the network root CA: %w", err)
	}
	certs, err := pki.ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("downloading the network root CA: %w", err)
	}

	if p.cfg.RootCAFingerprint == "" {
		p.logger.Warn("trusting the network root CA downloaded from the directory; "+
			"set NETWORK_ROOT_CA to pin it", "fingerprint", pki.Fingerprint(certs[0]))
	}
	return certs[0], nil
}

// directoryConfig returns how to reach the directory, presenting cert when
// set.
func (p *Pod) directoryConfig(cert *tls.Certificate) directory.ClientConfig {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if p.root != nil {
		pool.AddCert(p.root)
	}
	return directory.ClientConfig{
		URL:         p.cfg.DirectoryURL,
		Network:     p.cfg.Network,
		RootCAs:     pool,
		Certificate: cert,
		Dial:        p.dialer.DialContext,
	}
}

func (p *Pod) directory(cert *tls.Certificate) (*directory.Client, error) {
	return directory.NewClient(p.directoryConfig(cert))
}

// loadNetworkData loads the network data certificate, which verifies the
// network's signature on contracts, downloading it on first start.
func (p *Pod) loadNetworkData(ctx context.Context) error {
	path := p.paths.NetworkDataCert()
	certs, err := pki.LoadCerts(path)
	if errors.Is(err, os.ErrNotExist) {
		dir, err := p.directory(nil)
		if err != nil {
			return err
		}
		data, err := dir.RootData(ctx)
		if err != nil {
			return fmt.Errorf("downloading the network data certificate: %w", err)
		}
		if certs, err = pki.ParseCerts(data); err != nil {
			return fmt.Errorf("downloading the network data certificate: %w", err)
		}
	} else if err != nil {
		return err
	}

	if _, err := p.verifier.Verify(certs[:1], pki.Want{
		Types: []pki.IDType{pki.NetworkData}}); err != nil {
		return fmt.Errorf("network data certificate: %w", err)
	}
	if err := pki.SaveCertChain(path, certs[0]); err != nil {
		return err
	}
	p.netData = certs[0]
	return nil
}

// loadAccount loads the account's TLS and data secrets, having the directory
// sign new ones on first start.
func (p *Pod) loadAccount(ctx context.Context) error {
	paths, pw := p.paths, p.cfg.PrivateKeySecret

	tlsSecret, err := loadSecret(paths.AccountCert(), paths.AccountKey(), pw)
	if err != nil {
		return fmt.Errorf("loading the account certificate: %w", err)
	}
	if tlsSecret == nil {
		if tlsSecret, err = p.newAccountSecret(ctx, pki.Account, nil); err != nil {
			return err
		}
		if err := tlsSecret.save(paths.AccountCert(), paths.AccountKey(), pw); err != nil {
			return err
		}
		p.logger.Info("created account", "account_id", p.cfg.AccountID)
	}
	if err := p.checkAccount(tlsSecret, pki.Account); err != nil {
		return err
	}

	dataSecret, err := loadSecret(paths.AccountDataCert(), paths.AccountDataKey(), pw)
	if err != nil {
		return fmt.Errorf("loading the account data certificate: %w", err)
	}
	if dataSecret == nil {
		if dataSecret, err = p.newAccountSecret(ctx, pki.AccountData, tlsSecret); err != nil {
			return err
		}
		if err := dataSecret.save(paths.AccountDataCert(), paths.AccountDataKey(),
			pw); err != nil {
			return err
		}
	}
	if err := p.checkAccount(dataSecret, pki.AccountData); err != nil {
		return err
	}

	p.mu.Lock()
	p.account, p.accountData = tlsSecret, dataSecret
	p.mu.Unlock()
	return nil
}

// checkAccount verifies that s is this account's certificate of type t; a
// pod never takes on a second identity.
func (p *Pod) checkAccount(s *secret, t pki.IDType) error {
	name, err := p.verifier.Verify(s.chain, pki.Want{Types: []pki.IDType{t}})
	if err != nil {
		return fmt.Errorf("account certificate: %w", err)
	}
	if name.ID != p.cfg.AccountID {
		return fmt.Errorf("the account certificate in %s is for account %s, "+
			"ACCOUNT_ID is %s", p.cfg.RootDir, name.ID, p.cfg.AccountID)
	}
	return nil
}

// newAccountSecret makes a key and has the directory sign it; client, when
// set, authenticates the request.
func (p *Pod) newAccountSecret(ctx context.Context, t pki.IDType, client *secret) (
	*secret, error) {
	name := pki.Name{Type: t, ID: p.cfg.AccountID, Network: p.cfg.Network}
	return newSecret(name, func(csr []byte) (string, string, error) {
		dir, err := p.directory(clientCertOf(client))
		if err != nil {
			return "", "", err
		}
		reply, err := dir.SignAccountCSR(ctx, csr)
		return reply.SignedCert, reply.CertChain, err
	})
}

// newSecret makes a key for name and has sign sign its CSR, which answers
// with the signed certificate and its chain.
func newSecret(name pki.Name, sign func(csr []byte) (signed, chain string, err error)) (
	*secret, error) {
	key, err := pki.GenerateKey(name.Type)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(name, key)
	if err != nil {
		return nil, err
	}

	signed, chain, err := sign(csr)
	if err != nil {
		return nil, fmt.Errorf("getting the %v certificate signed: %w", name.Type, err)
	}
	certs, err := certChain(signed, chain)
	if err != nil {
		return nil, err
	}
	return &secret{chain: certs, key: key}, nil
}

// clientCertOf returns s as a client certificate, or nil for no secret.
func clientCertOf(s *secret) *tls.Certificate {
	if s == nil {
		return nil
	}
	return clientCert(s)
}

// certChain parses a signed certificate and the chain that came with it.
func certChain(signed, chain string) ([]*x509.Certificate, error) {
	leaf, err := pki.ParseCerts([]byte(signed))
	if err != nil {
		return nil, fmt.Errorf("reading the signed certificate: %w", err)
	}
	rest, err := pki.ParseCerts([]byte(chain))
	if err != nil {
		return nil, fmt.Errorf("reading the certificate chain: %w", err)
	}
	return append(leaf[:1], rest...), nil
}

// registerAccount records the pod's address with the directory.
func (p *Pod) registerAccount(ctx context.Context) error {
	p.mu.RLock()
	cert := p.account.tls()
	p.mu.RUnlock()

	dir, err := p.directory(&cert)
	if err != nil {
		return err
	}
	reply, err := dir.RegisterAccount(ctx)
	if err != nil {
		return fmt.Errorf("registering the account: %w", err)
	}
	if reply.IPv4 != nil {
		p.logger.Info("registered account", "address", *reply.IPv4)
	}
	return nil
}
