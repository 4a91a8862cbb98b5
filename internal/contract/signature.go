package contract

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// HashSHA256 is the only hash algorithm a contract signature may name.
const HashSHA256 = "SHA256"

// TimestampLayout is the time.Layout of Signature.Timestamp. Sign writes UTC;
// the reference writes its local time, and neither says which zone it used.
const TimestampLayout = "2006-01-02T15:04:05"

// Signature is a signature entry of a contract.
type Signature struct {
	Signature     string `json:"signature"`
	HashAlgorithm string `json:"hash_algorithm"`
	Timestamp     string `json:"timestamp"`
	Certificate   string `json:"certificate"`
}

// Signer is who signs: "service" or "network".
type Signer string

// The two signers of a contract. The name of each is also its key under
// "signatures" in the contract.
const (
	SignerService Signer = "service"
	SignerNetwork Signer = "network"
)

// ErrSignature is wrapped by every verification failure.
var ErrSignature = errors.New("contract signature does not verify")

// ErrNotRSA is returned when a contract is to be signed with a key that is not
// an RSA key.
var ErrNotRSA = errors.New("contract signing key is not an RSA key")

// pssOptions are those of every contract signature. When signing, the
// automatic salt length is the largest the key allows; when verifying, it
// accepts any salt length.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}

// Sign returns doc (a contract JSON object) with signatures.<by> added, signed
// with key (must be an RSA key; error otherwise) whose certificate has common
// name certCN. For SignerService any existing signatures are dropped first;
// for SignerNetwork the service signature must already be there and is kept.
// The output is the canonical form of the signed document.
//
// The service signature covers the contract with "signatures": {}; the
// network signature covers it with only the service signature in
// "signatures". A network signature that doc already has is replaced.
func Sign(doc []byte, by Signer, key crypto.Signer, certCN string, now time.Time) ([]byte, error) {
	if err := checkSigningKey(key, certCN); err != nil {
		return nil, fmt.Errorf("signing contract: %w", err)
	}
	root, err := parseContract(doc)
	if err != nil {
		return nil, fmt.Errorf("signing contract: %w", err)
	}

	signatures, err := signedSignatures(root, by)
	if err != nil {
		return nil, fmt.Errorf("signing contract: %w", err)
	}
	root["signatures"] = signatures

	digest := sha256.Sum256(root.appendCanonical(nil, 0))
	raw, err := key.Sign(rand.Reader, digest[:], pssOptions)
	if err != nil {
		return nil, fmt.Errorf("signing contract as %s: %w", by, err)
	}

	signatures[string(by)] = Signature{
		Signature:     base64.StdEncoding.EncodeToString(raw),
		HashAlgorithm: HashSHA256,
		Timestamp:     now.UTC().Format(TimestampLayout),
		Certificate:   certCN,
	}.value()
	return root.appendCanonical(nil, 0), nil
}

func checkSigningKey(key crypto.Signer, certCN string) error {
	if key == nil {
		return ErrNotRSA
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return ErrNotRSA
	}
	if certCN == "" || !utf8.ValidString(certCN) {
		return errors.New("certificate common name is empty or not UTF-8")
	}
	return nil
}

// signedSignatures returns what "signatures" holds while by signs.
func signedSignatures(root jsonObject, by Signer) (jsonObject, error) {
	switch by {
	case SignerService:
		return jsonObject{}, nil
	case SignerNetwork:
		signatures, err := signaturesOf(root)
		if err != nil {
			return nil, err
		}
		if _, err := signatureAt(signatures, SignerService); err != nil {
			return nil, err
		}
		return without(signatures, SignerNetwork), nil
	}
	return nil, fmt.Errorf("unknown signer %.40q", by)
}

// Verify checks signatures.<by> of doc with cert (an RSA data certificate).
// The entry must name cert's common name and the SHA256 hash algorithm. The
// signature is checked over the canonical form of doc, so doc itself need not
// be canonical. Every error wraps ErrSignature; those about the JSON of doc
// wrap ErrMalformed as well.
func Verify(doc []byte, by Signer, cert *x509.Certificate) error {
	if err := verify(doc, by, cert); err != nil {
		return fmt.Errorf("%w: %s signature: %w", ErrSignature, by, err)
	}
	return nil
}

func verify(doc []byte, by Signer, cert *x509.Certificate) error {
	if by != SignerService && by != SignerNetwork {
		return errors.New("unknown signer")
	}
	if cert == nil {
		return errors.New("no certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("certificate %.80q has no RSA key", cert.Subject.CommonName)
	}

	root, err := parseContract(doc)
	if err != nil {
		return err
	}
	signatures, err := signaturesOf(root)
	if err != nil {
		return err
	}
	sig, err := signatureAt(signatures, by)
	if err != nil {
		return err
	}
	raw, err := sig.check(cert)
	if err != nil {
		return err
	}

	root["signatures"] = coveredSignatures(signatures, by)
	digest := sha256.Sum256(root.appendCanonical(nil, 0))
	return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw, pssOptions)
}

// coveredSignatures returns what "signatures" held when by signed. Unknown
// entries stay, as the signer saw them.
func coveredSignatures(signatures jsonObject, by Signer) jsonObject {
	covered := without(signatures, SignerNetwork)
	if by == SignerService {
		delete(covered, string(SignerService))
	}
	return covered
}

// check compares s with cert and returns the signature bytes.
func (s Signature) check(cert *x509.Certificate) ([]byte, error) {
	if s.HashAlgorithm != HashSHA256 {
		return nil, fmt.Errorf("unsupported hash algorithm %.40q", s.HashAlgorithm)
	}
	if s.Certificate != cert.Subject.CommonName {
		return nil, fmt.Errorf("made by %.80q, not by %.80q",
			s.Certificate, cert.Subject.CommonName)
	}

	// Strict decoding refuses stray bits in the padding, which would let
	// several texts stand for one signature.
	raw, err := base64.StdEncoding.Strict().DecodeString(s.Signature)
	if err != nil {
		return nil, fmt.Errorf("decoding signature: %w", err)
	}
	return raw, nil
}

// Signatures returns the signature entries present in doc. Entries under
// names other than those of the two signers are left out.
func Signatures(doc []byte) (map[Signer]Signature, error) {
	root, err := parseContract(doc)
	if err != nil {
		return nil, fmt.Errorf("reading contract signatures: %w", err)
	}
	signatures, err := signaturesOf(root)
	if err != nil {
		return nil, fmt.Errorf("reading contract signatures: %w", err)
	}

	found := make(map[Signer]Signature, 2)
	for _, by := range []Signer{SignerService, SignerNetwork} {
		if _, ok := signatures[string(by)]; !ok {
			continue
		}
		sig, err := signatureAt(signatures, by)
		if err != nil {
			return nil, fmt.Errorf("reading contract signatures: %w", err)
		}
		found[by] = sig
	}
	return found, nil
}

// parseContract parses doc, which must be a JSON object.
func parseContract(doc []byte) (jsonObject, error) {
	v, err := parse(doc)
	if err != nil {
		return nil, err
	}
	root, ok := v.(jsonObject)
	if !ok {
		return nil, fmt.Errorf("%w: a contract is a JSON object", ErrMalformed)
	}
	return root, nil
}

// signaturesOf returns the "signatures" object of root, empty if root has
// none.
func signaturesOf(root jsonObject) (jsonObject, error) {
	v, ok := root["signatures"]
	if !ok {
		return jsonObject{}, nil
	}
	signatures, ok := v.(jsonObject)
	if !ok {
		return nil, errors.New(`"signatures" is not an object`)
	}
	return signatures, nil
}

// signatureAt reads the entry of by in signatures.
func signatureAt(signatures jsonObject, by Signer) (Signature, error) {
	v, ok := signatures[string(by)]
	if !ok {
		return Signature{}, fmt.Errorf("contract has no %s signature", by)
	}
	entry, ok := v.(jsonObject)
	if !ok {
		return Signature{}, fmt.Errorf("%s signature is not an object", by)
	}

	var sig Signature
	for _, f := range []struct {
		name  string
		field *string
	}{
		{"signature", &sig.Signature},
		{"hash_algorithm", &sig.HashAlgorithm},
		{"timestamp", &sig.Timestamp},
		{"certificate", &sig.Certificate},
	} {
		s, ok := entry[f.name].(jsonString)
		if !ok {
			return Signature{}, fmt.Errorf("%s signature has no string %q", by, f.name)
		}
		*f.field = string(s)
	}
	return sig, nil
}

// value returns s as it is stored in a contract.
func (s Signature) value() jsonObject {
	return jsonObject{
		"signature":      jsonString(s.Signature),
		"hash_algorithm": jsonString(s.HashAlgorithm),
		"timestamp":      jsonString(s.Timestamp),
		"certificate":    jsonString(s.Certificate),
	}
}

// without returns a shallow copy of signatures without the entry of by.
func without(signatures jsonObject, by Signer) jsonObject {
	c := make(jsonObject, len(signatures))
	for name, v := range signatures {
		if name != string(by) {
			c[name] = v
		}
	}
	return c
}
