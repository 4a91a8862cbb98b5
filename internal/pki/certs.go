package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// DataKeyBits is the size of the RSA keys made for data secrets.
const DataKeyBits = 4096

// ErrNoCertificate is returned when PEM data holds no certificate.
var ErrNoCertificate = errors.New("no certificate in PEM data")

// Subject attributes every Byoda certificate carries besides its common name.
var subjectTemplate = pkix.Name{
	Country:      []string{"SW"},
	Province:     []string{"SW"},
	Locality:     []string{"local"},
	Organization: []string{"memyselfandi"},
}

// GenerateKey makes a new private key of the kind a secret of type t uses:
// RSA-4096 for data secrets and EC P-256 for everything else.
func GenerateKey(t IDType) (crypto.Signer, error) {
	if t.IsData() {
		return GenerateRSAKey(DataKeyBits)
	}

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ec key: %w", err)
	}
	return k, nil
}

// GenerateRSAKey makes an RSA key of the given size.
func GenerateRSAKey(bits int) (crypto.Signer, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("generating rsa key: %w", err)
	}
	return k, nil
}

// subject returns the subject distinguished name of a Byoda certificate.
func subject(cn string) pkix.Name {
	s := subjectTemplate
	s.CommonName = cn
	return s
}

// randomSerial returns a positive random serial number of up to 159 bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 159)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("making serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// subjectKeyID computes the key identifier of RFC 5280 §4.2.1.2 method 1.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}

	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding public key: %w", err)
	}

	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// ParseCerts reads every CERTIFICATE block of PEM data in order, skipping
// comment lines and other text between the blocks.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}

		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}

	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}

// EncodeCert returns one certificate as a bare PEM block, the form of the
// root CA file and of /root-ca.pem.
func EncodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// EncodeCertChain returns certs as the reference writes cert files: each
// PEM block preceded by comment lines naming its issuer, subject and
// validity, which readers skip.
func EncodeCertChain(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		fmt.Fprintf(&b, "# Issuer <Name(%s)>\n", nameForComment(c.Issuer))
		fmt.Fprintf(&b, "# Subject <Name(%s)>\n", nameForComment(c.Subject))
		fmt.Fprintf(&b, "# Valid from %s to %s\n",
			c.NotBefore.UTC().Format(time.DateTime+"-07:00"),
			c.NotAfter.UTC().Format(time.DateTime+"-07:00"))
		b.Write(EncodeCert(c))
	}
	return b.Bytes()
}

// nameForComment writes a name in the order the subject carries it, as
// "C=SW,ST=SW,...,CN=x".
func nameForComment(n pkix.Name) string {
	short := map[string]string{
		"2.5.4.6": "C", "2.5.4.8": "ST", "2.5.4.7": "L", "2.5.4.10": "O",
		"2.5.4.11": "OU", "2.5.4.3": "CN",
	}

	parts := make([]string, 0, len(n.Names))
	for _, atv := range n.Names {
		key, ok := short[atv.Type.String()]
		if !ok {
			key = atv.Type.String()
		}
		parts = append(parts, fmt.Sprintf("%s=%v", key, atv.Value))
	}
	return strings.Join(parts, ",")
}

// Fingerprint returns the lower-case hex SHA-256 fingerprint of a certificate.
func Fingerprint(c *x509.Certificate) string {
	return fmt.Sprintf("%x", sha256.Sum256(c.Raw))
}
