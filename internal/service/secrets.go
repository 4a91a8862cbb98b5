// Package service is the server of one service of a Byoda network, and the
// tool that creates a service: its secrets, its registration with the
// network's directory and the network's signature on its contract.
//
// The service server publishes the network-signed contract, its data
// certificate and CA chain, signs the certificates of its members with the
// members CA and registers members.
package service

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/byoda/byoda-go/internal/pki"
)

// Secrets are the certificates and keys a running service uses. The service
// CA's key is not among them: it is only needed to create the others.
type Secrets struct {
	ServiceID uint32
	Paths     pki.Paths

	// Root is the network's root CA certificate.
	Root *x509.Certificate

	// NetworkData is the network data certificate, which signs contracts.
	NetworkData *x509.Certificate

	// ServiceCA is the service's CA certificate, issued by the network.
	ServiceCA *x509.Certificate

	// MembersCA signs the certificates of members.
	MembersCA *pki.CA

	// TLS is the service's TLS certificate with its chain and key, and
	// TLSChain the same chain parsed.
	TLS      tls.Certificate
	TLSChain []*x509.Certificate

	// DataChain is the service data certificate and its chain.
	DataChain []*x509.Certificate

	// DataKey is the service data key, which signs contracts.
	DataKey crypto.Signer
}

// LoadSecrets reads a service's secrets from the reference layout under
// paths.Root.
func LoadSecrets(paths pki.Paths, sid uint32, password []byte) (*Secrets, error) {
	s := &Secrets{ServiceID: sid, Paths: paths}

	roots, err := pki.LoadCerts(paths.RootCACert())
	if err != nil {
		return nil, err
	}
	s.Root = roots[0]

	netData, err := pki.LoadCerts(paths.NetworkDataCert())
	if err != nil {
		return nil, err
	}
	s.NetworkData = netData[0]

	caCerts, err := pki.LoadCerts(paths.ServiceCACert(sid))
	if err != nil {
		return nil, err
	}
	s.ServiceCA = caCerts[0]

	if s.MembersCA, err = pki.LoadCA(paths.Network, paths.MembersCACert(sid),
		paths.MembersCAKey(sid), password); err != nil {
		return nil, err
	}
	if s.TLSChain, err = pki.LoadCerts(paths.ServiceCert(sid)); err != nil {
		return nil, err
	}
	tlsKey, err := pki.LoadKey(paths.ServiceKey(sid), password)
	if err != nil {
		return nil, err
	}
	s.TLS = pki.TLSCertificate(s.TLSChain, tlsKey)

	if s.DataChain, err = pki.LoadCerts(paths.ServiceDataCert(sid)); err != nil {
		return nil, err
	}
	if s.DataKey, err = pki.LoadKey(paths.ServiceDataKey(sid), password); err != nil {
		return nil, err
	}

	return s, s.check()
}

// check verifies that every certificate belongs to this service of the
// network, under its own service CA.
func (s *Secrets) check() error {
	v := s.Verifier()
	for _, c := range []struct {
		chain []*x509.Certificate
		t     pki.IDType
	}{
		{append([]*x509.Certificate{s.MembersCA.Cert}, s.MembersCA.Chain...), pki.MembersCA},
		{s.TLSChain, pki.Service},
		{s.DataChain, pki.ServiceData},
	} {
		_, err := v.Verify(c.chain, pki.Want{Types: []pki.IDType{c.t}, ServiceID: s.ServiceID,
			ServiceCA: s.ServiceCA})
		if err != nil {
			return fmt.Errorf("loading service %d secrets: %w", s.ServiceID, err)
		}
	}
	return nil
}

// Verifier returns a verifier anchored on the network's root.
func (s *Secrets) Verifier() *pki.Verifier {
	return &pki.Verifier{Network: s.Paths.Network, Root: s.Root}
}

// exists reports whether path exists.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}
