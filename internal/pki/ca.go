package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MinRSABits is the smallest RSA key a CA signs.
const MinRSABits = 2048

// CA is a certificate authority of a network, with its private key.
type CA struct {
	// Name is the CA's own parsed common name.
	Name Name

	// Cert is the CA's certificate.
	Cert *x509.Certificate

	// Chain holds the CAs above Cert up to, but not including, the root.
	Chain []*x509.Certificate

	// Key is the CA's private key.
	Key crypto.Signer

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// NewCA checks that cert is a CA certificate of network whose public key
// belongs to key, and returns the CA.
func NewCA(network string, cert *x509.Certificate, chain []*x509.Certificate,
	key crypto.Signer) (*CA, error) {
	name, err := ParseName(cert.Subject.CommonName, network)
	if err != nil {
		return nil, fmt.Errorf("loading ca: %w", err)
	}
	if _, ok := accepts[name.Type]; !ok {
		return nil, fmt.Errorf("loading ca: %s is a %v, not a CA", name, name.Type)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("loading ca: certificate of %s is not a CA certificate", name)
	}
	if err := matchKey(cert, key); err != nil {
		return nil, fmt.Errorf("loading ca %s: %w", name, err)
	}
	return &CA{Name: name, Cert: cert, Chain: chain, Key: key}, nil
}

// matchKey checks that key is the private key of cert.
func matchKey(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("private key does not match the certificate")
	}
	return nil
}

// NewRootCA makes the self-signed root CA of network with key.
func NewRootCA(network string, key crypto.Signer) (*CA, error) {
	if err := CheckNetwork(network); err != nil {
		return nil, fmt.Errorf("making root ca: %w", err)
	}

	name := NewName(RootCA, network, 0)
	tmpl, err := template(name, key.Public(), time.Now())
	if err != nil {
		return nil, fmt.Errorf("making root ca: %w", err)
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("making root ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("making root ca: %w", err)
	}
	return &CA{Name: name, Cert: cert, Key: key}, nil
}

// template returns the certificate template of name's profile.
func template(name Name, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	p := profiles[name.Type]

	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}

	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject(name.String()),
		DNSNames:              []string{name.String()},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(p.validity),
		KeyUsage:              p.keyUsage,
		ExtKeyUsage:           p.extKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  name.Type.IsCA(),
		SubjectKeyId:          ski,
	}
	if t.IsCA {
		t.MaxPathLen = p.maxPathLen
		t.MaxPathLenZero = p.maxPathLen == 0
	}
	return t, nil
}

// IssuerChain returns the chain that certificates signed by ca carry after
// the leaf: the CA itself and the CAs above it, without the root.
func (ca *CA) IssuerChain() []*x509.Certificate {
	if ca.Name.Type == RootCA {
		return nil
	}
	return append([]*x509.Certificate{ca.Cert}, ca.Chain...)
}

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

// Review checks csr against the policy of ca and returns the name it asks
// for. Every error wraps ErrBadCSR and says what is wrong.
func (ca *CA) Review(csr *x509.CertificateRequest) (Name, error) {
	if err := checkSignatureAlgorithm(csr.SignatureAlgorithm); err != nil {
		return Name{}, err
	}

	cn, err := reviewSubject(csr)
	if err != nil {
		return Name{}, err
	}

	name, err := ParseName(cn, ca.Name.Network)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if !slices.Contains(accepts[ca.Name.Type], name.Type) {
		return Name{}, fmt.Errorf("%w: the %v does not sign %v certificates such as %s",
			ErrBadCSR, ca.Name.Type, name.Type, name)
	}
	if ca.Name.Type.ServiceScoped() && name.ServiceID != ca.Name.ServiceID {
		return Name{}, fmt.Errorf("%w: %s is for service %d, this CA is for service %d",
			ErrBadCSR, name, name.ServiceID, ca.Name.ServiceID)
	}

	if err := reviewSANs(csr, name, ca.Name.Type == AppsCA); err != nil {
		return Name{}, err
	}
	if err := reviewKey(csr.PublicKey, name.Type); err != nil {
		return Name{}, err
	}
	if err := reviewBasicConstraints(csr, name.Type); err != nil {
		return Name{}, err
	}
	return name, nil
}

func checkSignatureAlgorithm(alg x509.SignatureAlgorithm) error {
	switch alg {
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256, x509.PureEd25519:
		return nil
	}
	return fmt.Errorf("%w: signature algorithm %v is not one of sha256WithRSAEncryption, "+
		"ecdsa-with-SHA256 or ed25519", ErrBadCSR, alg)
}

// Subject attributes a request may carry: C, ST, L, O and CN.
var allowedSubjectAttrs = map[string]bool{
	"2.5.4.6": true, "2.5.4.8": true, "2.5.4.7": true, "2.5.4.10": true, "2.5.4.3": true,
}

func reviewSubject(csr *x509.CertificateRequest) (string, error) {
	cns := 0
	for _, atv := range csr.Subject.Names {
		oid := atv.Type.String()
		if !allowedSubjectAttrs[oid] {
			return "", fmt.Errorf("%w: subject attribute %s is not allowed; "+
				"only C, ST, L, O and CN are", ErrBadCSR, oid)
		}
		if oid == "2.5.4.3" {
			cns++
		}
	}

	if cns != 1 {
		return "", fmt.Errorf("%w: the subject must have exactly one common name, it has %d",
			ErrBadCSR, cns)
	}
	return strings.ToLower(csr.Subject.CommonName), nil
}

func reviewSANs(csr *x509.CertificateRequest, name Name, allowTwo bool) error {
	if len(csr.EmailAddresses)+len(csr.IPAddresses)+len(csr.URIs) > 0 {
		return fmt.Errorf("%w: only DNS names are allowed as subject alternative names",
			ErrBadCSR)
	}

	max := 1
	if allowTwo {
		max = 2
	}
	if n := len(csr.DNSNames); n == 0 || n > max {
		return fmt.Errorf("%w: the request must have exactly %d DNS subject alternative "+
			"name(s), it has %d", ErrBadCSR, max, n)
	}

	if !strings.EqualFold(csr.DNSNames[0], name.String()) {
		return fmt.Errorf("%w: the first DNS alternative name %q is not the common name %s",
			ErrBadCSR, csr.DNSNames[0], name)
	}
	return nil
}

func reviewKey(pub crypto.PublicKey, t IDType) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("%w: rsa key of %d bits is too small; at least %d are needed",
				ErrBadCSR, k.N.BitLen(), MinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if t.IsData() {
			break
		}
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ec keys must use curve P-256 or P-384", ErrBadCSR)
		}
		return nil
	case ed25519.PublicKey:
		if t.IsData() {
			break
		}
		return nil
	}
	return fmt.Errorf("%w: a %v certificate needs an RSA key", ErrBadCSR, t)
}

func reviewBasicConstraints(csr *x509.CertificateRequest, t IDType) error {
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidExtBasicConstr) {
			continue
		}

		var bc basicConstraints
		rest, err := asn1.Unmarshal(ext.Value, &bc)
		if err != nil || len(rest) > 0 {
			return fmt.Errorf("%w: malformed basic constraints", ErrBadCSR)
		}
		if bc.IsCA && !t.IsCA() {
			return fmt.Errorf("%w: a %v certificate cannot be a CA", ErrBadCSR, t)
		}
	}
	return nil
}

// Sign reviews csr and, when it passes, issues its certificate with the
// profile of the requested type. The certificate does not outlive the CA.
func (ca *CA) Sign(csr *x509.CertificateRequest) (*x509.Certificate, Name, error) {
	name, err := ca.Review(csr)
	if err != nil {
		return nil, Name{}, err
	}

	cert, err := ca.issue(name, csr.PublicKey, csr.RawSubject)
	if err != nil {
		return nil, Name{}, err
	}
	return cert, name, nil
}

// Issue makes a key and a certificate for name signed by ca, as done when a
// network or service creates its own secrets.
func (ca *CA) Issue(name Name) (*x509.Certificate, crypto.Signer, error) {
	key, err := GenerateKey(name.Type)
	if err != nil {
		return nil, nil, err
	}

	csrPEM, err := NewCSR(name, key)
	if err != nil {
		return nil, nil, err
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, nil, err
	}

	cert, _, err := ca.Sign(csr)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (ca *CA) issue(name Name, pub crypto.PublicKey, rawSubject []byte) (
	*x509.Certificate, error) {
	tmpl, err := template(name, pub, ca.now())
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", name, err)
	}
	// The subject is copied byte for byte, as the reference does.
	tmpl.RawSubject = rawSubject
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", name, err)
	}
	return cert, nil
}

// SameCert reports whether a and b are the same certificate.
func SameCert(a, b *x509.Certificate) bool {
	return a != nil && b != nil && bytes.Equal(a.Raw, b.Raw)
}
