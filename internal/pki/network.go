package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrNetworkExists is returned when a network is created where one is.
var ErrNetworkExists = errors.New("network already exists")

// DirectoryCertValidity is how long the directory's root-issued TLS
// certificate of a private network lasts.
const DirectoryCertValidity = 3650 * day

// Network holds the secrets a directory server runs a network with.
type Network struct {
	// Paths says where the files are.
	Paths Paths

	// Root is the network's root CA certificate.
	Root *x509.Certificate

	// AccountsCA signs account certificates.
	AccountsCA *CA

	// ServicesCA signs service CA certificates.
	ServicesCA *CA

	// DataCert and DataKey sign service contracts for the network.
	DataCert *x509.Certificate
	DataKey  crypto.Signer
}

// Verifier returns a verifier anchored on the network's root.
func (n *Network) Verifier() *Verifier {
	return &Verifier{Network: n.Paths.Network, Root: n.Root}
}

// secretFile is one file of a new network.
type secretFile struct {
	path string
	data []byte
	perm os.FileMode
}

// CreateNetwork makes the root CA, accounts CA, services CA, network data
// secret and a TLS certificate for dir.<network> under paths.Root, every key
// encrypted with password. It refuses to touch a directory that already
// holds any of them. Nothing is written unless every secret was made.
func CreateNetwork(paths Paths, password []byte) (*Network, error) {
	if err := CheckNetwork(paths.Network); err != nil {
		return nil, err
	}
	if err := refuseExisting(paths); err != nil {
		return nil, err
	}

	n, files, err := makeNetwork(paths, password)
	if err != nil {
		return nil, fmt.Errorf("creating network %s: %w", paths.Network, err)
	}

	for i, f := range files {
		if err := WriteFile(f.path, f.data, f.perm); err != nil {
			for _, done := range files[:i] {
				os.Remove(done.path)
			}
			return nil, fmt.Errorf("creating network %s: %w", paths.Network, err)
		}
	}

	if err := os.MkdirAll(paths.ServicesDir(), 0o755); err != nil {
		return nil, fmt.Errorf("creating network %s: %w", paths.Network, err)
	}
	return n, nil
}

func refuseExisting(paths Paths) error {
	for _, p := range []string{paths.RootCACert(), paths.RootCAKey(), paths.AccountsCACert(),
		paths.ServicesCACert(), paths.NetworkDataCert(), paths.AccountsCAKey(),
		paths.ServicesCAKey(), paths.NetworkDataKey()} {
		_, err := os.Stat(p)
		if err == nil {
			return fmt.Errorf("%w: %s is there", ErrNetworkExists, p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checking for an existing network: %w", err)
		}
	}
	return nil
}

func makeNetwork(paths Paths, password []byte) (*Network, []secretFile, error) {
	rootKey, err := GenerateKey(RootCA)
	if err != nil {
		return nil, nil, err
	}
	root, err := NewRootCA(paths.Network, rootKey)
	if err != nil {
		return nil, nil, err
	}

	n := &Network{Paths: paths, Root: root.Cert}
	var files []secretFile
	add := func(certPath, keyPath string, certData []byte, key crypto.Signer) error {
		keyData, err := MarshalEncryptedKey(key, password)
		if err != nil {
			return err
		}
		files = append(files, secretFile{certPath, certData, 0o644},
			secretFile{keyPath, keyData, 0o600})
		return nil
	}

	if err := add(paths.RootCACert(), paths.RootCAKey(), EncodeCert(root.Cert),
		rootKey); err != nil {
		return nil, nil, err
	}

	for _, t := range []IDType{AccountsCA, ServicesCA, NetworkData} {
		cert, key, err := root.Issue(NewName(t, paths.Network, 0))
		if err != nil {
			return nil, nil, err
		}

		var certPath, keyPath string
		switch t {
		case AccountsCA:
			n.AccountsCA = &CA{Name: NewName(t, paths.Network, 0), Cert: cert, Key: key}
			certPath, keyPath = paths.AccountsCACert(), paths.AccountsCAKey()
		case ServicesCA:
			n.ServicesCA = &CA{Name: NewName(t, paths.Network, 0), Cert: cert, Key: key}
			certPath, keyPath = paths.ServicesCACert(), paths.ServicesCAKey()
		default:
			n.DataCert, n.DataKey = cert, key
			certPath, keyPath = paths.NetworkDataCert(), paths.NetworkDataKey()
		}
		if err := add(certPath, keyPath, EncodeCertChain(cert), key); err != nil {
			return nil, nil, err
		}
	}

	dirCert, dirKey, err := IssueServerCert(root, "dir."+paths.Network, DirectoryCertValidity)
	if err != nil {
		return nil, nil, err
	}
	if err := add(paths.DirectoryCert(), paths.DirectoryKey(), EncodeCertChain(dirCert),
		dirKey); err != nil {
		return nil, nil, err
	}
	return n, files, nil
}

// IssueServerCert makes a key and a TLS server certificate for hostname
// signed by ca, outside the common-name grammar. A private network's root
// uses it for dir.<network>, whose public counterpart has a Let's Encrypt
// certificate.
func IssueServerCert(ca *CA, hostname string, validity time.Duration) (
	*x509.Certificate, crypto.Signer, error) {
	key, err := GenerateKey(Service)
	if err != nil {
		return nil, nil, err
	}

	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, err
	}

	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject(hostname),
		DNSNames:              []string{hostname},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing server certificate for %s: %w", hostname, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("signing server certificate for %s: %w", hostname, err)
	}
	return cert, key, nil
}

// LoadNetwork reads the secrets a directory server needs: the root CA
// certificate, the accounts and services CAs and the network data secret.
// The root CA key is not read; it can stay offline.
func LoadNetwork(paths Paths, password []byte) (*Network, error) {
	roots, err := LoadCerts(paths.RootCACert())
	if err != nil {
		return nil, err
	}
	n := &Network{Paths: paths, Root: roots[0]}

	if n.AccountsCA, err = LoadCA(paths.Network, paths.AccountsCACert(), paths.AccountsCAKey(),
		password); err != nil {
		return nil, err
	}
	if n.ServicesCA, err = LoadCA(paths.Network, paths.ServicesCACert(),
		paths.ServicesCAKey(), password); err != nil {
		return nil, err
	}

	data, err := LoadCerts(paths.NetworkDataCert())
	if err != nil {
		return nil, err
	}
	n.DataCert = data[0]
	if n.DataKey, err = LoadKey(paths.NetworkDataKey(), password); err != nil {
		return nil, err
	}
	if err := matchKey(n.DataCert, n.DataKey); err != nil {
		return nil, fmt.Errorf("loading network data secret: %w", err)
	}

	return n, n.check()
}

// check verifies that the loaded secrets belong to one network.
func (n *Network) check() error {
	v := n.Verifier()
	for _, c := range []struct {
		cert *x509.Certificate
		t    IDType
	}{{n.AccountsCA.Cert, AccountsCA}, {n.ServicesCA.Cert, ServicesCA},
		{n.DataCert, NetworkData}} {
		if _, err := v.Verify([]*x509.Certificate{c.cert}, Want{Types: []IDType{c.t}}); err != nil {
			return fmt.Errorf("loading network %s: %w", n.Paths.Network, err)
		}
	}
	return nil
}
