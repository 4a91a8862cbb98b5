package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically: a reader sees the old file or
// the new one, never a part. Missing directories are made with mode 0700.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}

	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)

	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir makes the entries of dir, such as a file just renamed into it,
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()

	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// SaveCertChain writes certs (leaf first) to path in the reference's
// commented format.
func SaveCertChain(path string, certs ...*x509.Certificate) error {
	return WriteFile(path, EncodeCertChain(certs...), 0o644)
}

// SaveKey writes key to path encrypted with password, readable only by the
// owner.
func SaveKey(path string, key crypto.Signer, password []byte) error {
	data, err := MarshalEncryptedKey(key, password)
	if err != nil {
		return fmt.Errorf("saving key %s: %w", filepath.Base(path), err)
	}
	return WriteFile(path, data, 0o600)
}

// LoadCerts reads the certificates of a PEM file, leaf first.
func LoadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading certificates: %w", err)
	}

	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("loading certificates from %s: %w", path, err)
	}
	return certs, nil
}

// LoadKey reads an encrypted private key file.
func LoadKey(path string, password []byte) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading key: %w", err)
	}

	key, err := ParseKey(data, password)
	if err != nil {
		return nil, fmt.Errorf("loading key %s: %w", path, err)
	}
	return key, nil
}

// LoadCA reads a CA's certificate file (with its chain) and key file.
func LoadCA(network, certPath, keyPath string, password []byte) (*CA, error) {
	certs, err := LoadCerts(certPath)
	if err != nil {
		return nil, err
	}

	key, err := LoadKey(keyPath, password)
	if err != nil {
		return nil, err
	}
	return NewCA(network, certs[0], certs[1:], key)
}

// TLSCertificate returns a chain (leaf first) and its key as a
// tls.Certificate.
func TLSCertificate(chain []*x509.Certificate, key crypto.Signer) tls.Certificate {
	tc := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}
