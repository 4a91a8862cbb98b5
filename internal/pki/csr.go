package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
)

var (
	oidExtKeyUsage       = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtBasicConstr    = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtExtKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidServerAuth        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

// NewCSR makes a PEM certificate signing request for name with key. Like the
// reference's, it asks for the key usages, extended key usages and (for CAs)
// basic constraints of the name's type, so that reference CAs, which copy
// them from the request, sign it too.
func NewCSR(name Name, key crypto.Signer) ([]byte, error) {
	p, ok := profiles[name.Type]
	if !ok || name.Type == RootCA {
		return nil, fmt.Errorf("making csr: no request exists for type %v", name.Type)
	}

	exts, err := csrExtensions(name, p)
	if err != nil {
		return nil, fmt.Errorf("making csr for %s: %w", name, err)
	}

	tmpl := &x509.CertificateRequest{
		Subject:         subject(name.String()),
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("making csr for %s: %w", name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func csrExtensions(name Name, p profile) ([]pkix.Extension, error) {
	san, err := asn1.Marshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(name.String())},
	})
	if err != nil {
		return nil, err
	}

	ku, err := marshalKeyUsage(p.keyUsage)
	if err != nil {
		return nil, err
	}

	exts := []pkix.Extension{
		{Id: oidExtSubjectAltName, Critical: true, Value: san},
		{Id: oidExtKeyUsage, Critical: true, Value: ku},
	}

	if len(p.extKeyUsage) > 0 {
		eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidServerAuth, oidClientAuth})
		if err != nil {
			return nil, err
		}
		exts = append(exts, pkix.Extension{Id: oidExtExtKeyUsage, Value: eku})
	}

	if name.Type.IsCA() {
		bc, err := asn1.Marshal(basicConstraints{IsCA: true, MaxPathLen: p.maxPathLen})
		if err != nil {
			return nil, err
		}
		exts = append(exts, pkix.Extension{Id: oidExtBasicConstr, Critical: true, Value: bc})
	}
	return exts, nil
}

type basicConstraints struct {
	IsCA       bool `asn1:"optional"`
	MaxPathLen int  `asn1:"optional,default:-1"`
}

// marshalKeyUsage encodes a key usage bit set as the DER BIT STRING of
// RFC 5280 §4.2.1.3, where bit 0 (digitalSignature) is the leftmost.
func marshalKeyUsage(ku x509.KeyUsage) ([]byte, error) {
	var b [2]byte
	length := 0
	for i := 0; i < 9; i++ {
		if ku&(1<<i) != 0 {
			b[i/8] |= 0x80 >> (i % 8)
			length = i + 1
		}
	}

	bytes := b[:(length+7)/8]
	return asn1.Marshal(asn1.BitString{Bytes: bytes, BitLength: length})
}

// ParseCSR decodes a PEM (or DER) certificate signing request and checks its
// signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block is %q, not a certificate request",
				ErrBadCSR, block.Type)
		}
		der = block.Bytes
	}

	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// ErrBadCSR is wrapped by every error about a certificate signing request a
// CA refuses to sign.
var ErrBadCSR = errors.New("invalid certificate signing request")
