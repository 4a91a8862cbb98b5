package service

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/pki"
)

// InitConfig configures Init.
type InitConfig struct {
	// Contract is the service's contract, unsigned (required).
	Contract []byte

	// Paths says where the service's files go; the network's root CA
	// certificate must already be at Paths.RootCACert (required).
	Paths pki.Paths

	// Password encrypts every private key (required).
	Password []byte

	// Directory is how to reach the network's directory; its Certificate
	// is set by Init where a request needs the service's (required).
	Directory directory.ClientConfig

	// Logger receives progress lines [discard].
	Logger *slog.Logger

	// Now returns the current time [time.Now].
	Now func() time.Time
}

// Init creates a service: its service CA through the directory, its members
// CA, apps CA, TLS and data secrets signed locally, its registration with the
// directory and the network's signature on its contract, which it keeps as
// service-contract.json. Secrets made by an earlier run are reused, so a run
// that failed half way can be repeated.
func Init(ctx context.Context, cfg InitConfig) (*Secrets, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	c, err := contract.Parse(cfg.Contract)
	if err != nil {
		return nil, err
	}
	sid, paths := c.ServiceID, cfg.Paths

	if ok, err := exists(paths.RootCACert()); err != nil || !ok {
		return nil, fmt.Errorf("the network's root CA certificate must be at %s first",
			paths.RootCACert())
	}

	anon, err := directory.NewClient(cfg.Directory)
	if err != nil {
		return nil, err
	}
	serviceCA, err := ensureServiceCA(ctx, anon, paths, sid, cfg.Password)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("service ca ready", "service_id", sid)

	if err := ensureLocalSecrets(paths, serviceCA, cfg.Password); err != nil {
		return nil, err
	}
	if err := writeCAChain(paths, sid, serviceCA); err != nil {
		return nil, err
	}

	secrets, err := LoadSecrets(paths, sid, cfg.Password)
	if err != nil {
		return nil, err
	}
	if err := register(ctx, cfg.Directory, secrets); err != nil {
		return nil, err
	}
	cfg.Logger.Info("service registered", "service_id", sid)

	if err := publishContract(ctx, cfg, secrets, c.Version); err != nil {
		return nil, err
	}
	cfg.Logger.Info("contract signed by the network", "service_id", sid, "version", c.Version)
	return secrets, nil
}

// ensureServiceCA loads the service CA, or has the directory sign a new one.
// The key is saved before the request, so a reply lost on the way can be
// asked for again with the same key.
func ensureServiceCA(ctx context.Context, dir *directory.Client, paths pki.Paths, sid uint32,
	password []byte) (*pki.CA, error) {
	certPath, keyPath := paths.ServiceCACert(sid), paths.ServiceCAKey(sid)
	if ok, err := exists(certPath); err != nil {
		return nil, err
	} else if ok {
		return pki.LoadCA(paths.Network, certPath, keyPath, password)
	}

	key, err := loadOrMakeKey(keyPath, pki.ServiceCA, password)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(pki.NewName(pki.ServiceCA, paths.Network, sid), key)
	if err != nil {
		return nil, err
	}

	reply, err := dir.SignServiceCSR(ctx, csr)
	if err != nil {
		return nil, fmt.Errorf("getting the service CA signed: %w", err)
	}
	chain, err := replyChain(reply.SignedCert, reply.CertChain)
	if err != nil {
		return nil, err
	}
	ca, err := pki.NewCA(paths.Network, chain[0], chain[1:], key)
	if err != nil {
		return nil, err
	}

	if err := saveNetworkData(paths, reply.NetworkDataCertChain); err != nil {
		return nil, err
	}
	if err := pki.SaveCertChain(certPath, chain...); err != nil {
		return nil, err
	}
	return ca, nil
}

// replyChain parses a signed certificate and its chain from a CSR reply.
func replyChain(signed, chain string) ([]*x509.Certificate, error) {
	leaf, err := pki.ParseCerts([]byte(signed))
	if err != nil {
		return nil, fmt.Errorf("reading signed certificate: %w", err)
	}
	rest, err := pki.ParseCerts([]byte(chain))
	if err != nil {
		return nil, fmt.Errorf("reading certificate chain: %w", err)
	}
	return append(leaf[:1], rest...), nil
}

// saveNetworkData keeps the network data certificate, which verifies the
// network's signature on contracts, once it chains to the root.
func saveNetworkData(paths pki.Paths, pemData string) error {
	certs, err := pki.ParseCerts([]byte(pemData))
	if err != nil {
		return fmt.Errorf("reading network data certificate: %w", err)
	}
	roots, err := pki.LoadCerts(paths.RootCACert())
	if err != nil {
		return err
	}

	v := &pki.Verifier{Network: paths.Network, Root: roots[0]}
	if _, err := v.Verify(certs[:1], pki.Want{Types: []pki.IDType{pki.NetworkData}}); err != nil {
		return fmt.Errorf("network data certificate from the directory: %w", err)
	}
	return pki.SaveCertChain(paths.NetworkDataCert(), certs[0])
}

func loadOrMakeKey(path string, t pki.IDType, password []byte) (crypto.Signer, error) {
	if ok, err := exists(path); err != nil {
		return nil, err
	} else if ok {
		return pki.LoadKey(path, password)
	}

	key, err := pki.GenerateKey(t)
	if err != nil {
		return nil, err
	}
	if err := pki.SaveKey(path, key, password); err != nil {
		return nil, err
	}
	return key, nil
}

// ensureLocalSecrets makes, with the service CA, whichever of the members
// CA, apps CA, service TLS and service data secrets are missing.
func ensureLocalSecrets(paths pki.Paths, ca *pki.CA, password []byte) error {
	sid := ca.Name.ServiceID
	for _, s := range []struct {
		t              pki.IDType
		certPath, keyP string
	}{
		{pki.MembersCA, paths.MembersCACert(sid), paths.MembersCAKey(sid)},
		{pki.AppsCA, paths.AppsCACert(sid), paths.AppsCAKey(sid)},
		{pki.Service, paths.ServiceCert(sid), paths.ServiceKey(sid)},
		{pki.ServiceData, paths.ServiceDataCert(sid), paths.ServiceDataKey(sid)},
	} {
		if ok, err := exists(s.certPath); err != nil {
			return err
		} else if ok {
			continue
		}

		key, err := loadOrMakeKey(s.keyP, s.t, password)
		if err != nil {
			return err
		}
		csr, err := pki.NewCSR(pki.NewName(s.t, paths.Network, sid), key)
		if err != nil {
			return err
		}
		req, err := pki.ParseCSR(csr)
		if err != nil {
			return err
		}
		cert, _, err := ca.Sign(req)
		if err != nil {
			return err
		}
		chain := append([]*x509.Certificate{cert}, ca.IssuerChain()...)
		if err := pki.SaveCertChain(s.certPath, chain...); err != nil {
			return err
		}
	}
	return nil
}

// writeCAChain writes the service CA, the services CA and the root into the
// trust file for the service's member certificates.
func writeCAChain(paths pki.Paths, sid uint32, ca *pki.CA) error {
	roots, err := pki.LoadCerts(paths.RootCACert())
	if err != nil {
		return err
	}
	chain := append(ca.IssuerChain(), roots[0])
	return pki.SaveCertChain(paths.ServiceCAChain(sid), chain...)
}

// register stores the service's data certificate with the directory and
// records the service's address, presenting the service's TLS certificate.
func register(ctx context.Context, cfg directory.ClientConfig, s *Secrets) error {
	cfg.Certificate = &s.TLS
	dir, err := directory.NewClient(cfg)
	if err != nil {
		return err
	}

	if _, err := dir.RegisterService(ctx, s.ServiceID,
		pki.EncodeCertChain(s.DataChain...)); err != nil {
		return fmt.Errorf("registering service %d: %w", s.ServiceID, err)
	}
	return nil
}

// publishContract has the network sign the contract unless the kept
// service-contract.json already is that version, then keeps the
// network-signed contract after checking both signatures.
func publishContract(ctx context.Context, cfg InitConfig, s *Secrets, version int) error {
	path := s.Paths.ServiceContract(s.ServiceID)
	if kept, err := os.ReadFile(path); err == nil {
		if c, err := s.VerifyContract(kept); err == nil && c.Version == version {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	signed, err := contract.Sign(cfg.Contract, contract.SignerService, s.DataKey,
		s.DataChain[0].Subject.CommonName, cfg.Now())
	if err != nil {
		return fmt.Errorf("signing contract: %w", err)
	}

	dirCfg := cfg.Directory
	dirCfg.Certificate = &s.TLS
	dir, err := directory.NewClient(dirCfg)
	if err != nil {
		return err
	}
	if err := dir.SubmitContract(ctx, s.ServiceID, signed); err != nil {
		return fmt.Errorf("submitting contract version %d: %w", version, err)
	}

	doc, err := dir.Contract(ctx, s.ServiceID)
	if err != nil {
		return fmt.Errorf("downloading the signed contract: %w", err)
	}
	c, err := s.VerifyContract(doc)
	if err != nil {
		return err
	}
	if c.Version != version {
		return fmt.Errorf("the directory returned version %d, not %d", c.Version, version)
	}
	return pki.WriteFile(path, doc, 0o644)
}

// VerifyContract checks the service's and the network's signatures on doc
// and parses it.
func (s *Secrets) VerifyContract(doc []byte) (*contract.Contract, error) {
	if err := contract.Verify(doc, contract.SignerService, s.DataChain[0]); err != nil {
		return nil, err
	}
	if err := contract.Verify(doc, contract.SignerNetwork, s.NetworkData); err != nil {
		return nil, err
	}

	c, err := contract.Parse(doc)
	if err != nil {
		return nil, err
	}
	if c.ServiceID != s.ServiceID {
		return nil, fmt.Errorf("contract is for service %d, not %d", c.ServiceID, s.ServiceID)
	}
	return c, nil
}
