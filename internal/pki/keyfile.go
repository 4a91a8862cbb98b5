package pki

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// DefaultKDFIterations is the PBKDF2 iteration count used when writing a key
// file. Key files live on local disk and are loaded a handful of times per
// start, so a count that costs tens of milliseconds per load is affordable and
// makes guessing a weak password from a stolen file far more expensive than
// the 2048 rounds older key files use.
const DefaultKDFIterations = 100000

// ErrWrongPassword is returned when a key file does not decrypt with the given
// password.
var ErrWrongPassword = errors.New("pki: wrong private key password")

// PEM block types of the private key files.
const (
	pemEncryptedPKCS8 = "ENCRYPTED PRIVATE KEY"
	pemPKCS8          = "PRIVATE KEY"
	pemSEC1           = "EC PRIVATE KEY"
	pemPKCS1          = "RSA PRIVATE KEY"
)

// Bounds on the PBKDF2 iteration count of a key file; the upper one keeps a
// hostile file from stalling a start for minutes.
const (
	minKDFIterations = 1
	maxKDFIterations = 10_000_000
)

// keyFileSaltSize is the PBKDF2 salt size used when writing.
const keyFileSaltSize = 16

// Object identifiers of RFC 8018 (PKCS #5 v2.1), NIST and RSADSI.
var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC     = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// encryptedPrivateKeyInfo is the EncryptedPrivateKeyInfo of RFC 5958.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes2Params is the PBES2-params of RFC 8018.
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is the PBKDF2-params of RFC 8018. Salt is a CHOICE of which
// only the OCTET STRING arm is in use; an absent PRF means hmacWithSHA1.
type pbkdf2Params struct {
	Salt           asn1.RawValue
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// pkcs8Outline is the start of a PKCS #8 PrivateKeyInfo, enough to tell a
// correctly decrypted key from the noise a wrong password produces. Later
// optional fields are ignored when decoding.
type pkcs8Outline struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// cbcCipher is a block cipher a key file may be encrypted with.
type cbcCipher struct {
	keySize  int
	ivSize   int
	newBlock func(key []byte) (cipher.Block, error)
}

// MarshalEncryptedKey returns key (an *ecdsa.PrivateKey, *rsa.PrivateKey or
// ed25519.PrivateKey) as a PEM "ENCRYPTED PRIVATE KEY" block, encrypted with
// password using PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC. An empty
// password is an error.
func MarshalEncryptedKey(key crypto.Signer, password []byte) ([]byte, error) {
	return MarshalEncryptedKeyIter(key, password, DefaultKDFIterations)
}

// MarshalEncryptedKeyIter is MarshalEncryptedKey with an explicit PBKDF2
// iteration count.
func MarshalEncryptedKeyIter(key crypto.Signer, password []byte, iterations int) ([]byte, error) {
	if len(password) == 0 {
		return nil, errors.New("pki: empty private key password")
	}
	if iterations < minKDFIterations || iterations > maxKDFIterations {
		return nil, fmt.Errorf("pki: kdf iteration count %d outside %d..%d",
			iterations, minKDFIterations, maxKDFIterations)
	}

	plain, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	defer clear(plain)

	der, err := encryptPKCS8(plain, password, defaultKeyFileScheme(iterations))
	if err != nil {
		return nil, fmt.Errorf("encrypting private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPKCS8, Bytes: der}), nil
}

// MarshalKey returns key as an unencrypted PEM "PRIVATE KEY" (PKCS #8) block.
func MarshalKey(key crypto.Signer) ([]byte, error) {
	der, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	defer clear(der)

	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// ParseKey reads the first private key PEM block of data. It accepts
// "ENCRYPTED PRIVATE KEY" (decrypted with password), and unencrypted
// "PRIVATE KEY", "EC PRIVATE KEY" and "RSA PRIVATE KEY" blocks. Text, comment
// lines and blocks of other types before the key are skipped.
func ParseKey(data, password []byte) (crypto.Signer, error) {
	block := firstKeyBlock(data)
	if block == nil {
		return nil, errors.New("pki: no private key PEM block found")
	}
	if _, ok := block.Headers["Proc-Type"]; ok {
		return nil, fmt.Errorf("pki: legacy encrypted %q block is not supported; "+
			"convert it to encrypted PKCS #8", block.Type)
	}

	var key any
	var err error
	switch block.Type {
	case pemEncryptedPKCS8:
		key, err = parseEncryptedPKCS8(block.Bytes, password)
	case pemPKCS8:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemSEC1:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case pemPKCS1:
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %q block: %w", block.Type, err)
	}
	return keyFileSigner(key)
}

// firstKeyBlock returns the first PEM block of data holding a private key, or
// nil. Every round consumes input, so the loop ends.
func firstKeyBlock(data []byte) *pem.Block {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		switch block.Type {
		case pemEncryptedPKCS8, pemPKCS8, pemSEC1, pemPKCS1:
			return block
		}
	}
	return nil
}

// keyFileSigner checks that key is one of the signing key types of the
// network and returns it as a crypto.Signer.
func keyFileSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k != nil {
			return k, nil
		}
	case *rsa.PrivateKey:
		if k != nil {
			return k, nil
		}
	case ed25519.PrivateKey:
		if len(k) == ed25519.PrivateKeySize {
			return k, nil
		}
	default:
		return nil, fmt.Errorf("pki: unsupported private key type %T", key)
	}
	return nil, errors.New("pki: empty private key")
}

// marshalPKCS8 returns the PKCS #8 DER encoding of key. The caller clears it.
func marshalPKCS8(key crypto.Signer) ([]byte, error) {
	// x509 would dereference a typed nil key.
	if _, err := keyFileSigner(key); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return der, nil
}

// keyFileScheme picks the PBES2 algorithms of a key file being written.
type keyFileScheme struct {
	prf        asn1.ObjectIdentifier // nil leaves the PRF out: hmacWithSHA1
	cipher     asn1.ObjectIdentifier
	saltSize   int
	iterations int
}

// defaultKeyFileScheme returns the scheme MarshalEncryptedKeyIter writes.
func defaultKeyFileScheme(iterations int) keyFileScheme {
	return keyFileScheme{
		prf:        oidHMACWithSHA256,
		cipher:     oidAES256CBC,
		saltSize:   keyFileSaltSize,
		iterations: iterations,
	}
}

// encryptPKCS8 encrypts the PKCS #8 encoding plain with password as s says
// and returns the DER EncryptedPrivateKeyInfo.
func encryptPKCS8(plain, password []byte, s keyFileScheme) ([]byte, error) {
	c, ok := cbcCipherFor(s.cipher)
	if !ok {
		return nil, fmt.Errorf("pki: unsupported key encryption cipher %s", s.cipher)
	}
	var prf pkix.AlgorithmIdentifier
	if s.prf != nil {
		prf = algorithm(s.prf, asn1.NullBytes)
	}
	h, err := pbkdf2PRF(prf)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, s.saltSize)
	iv := make([]byte, c.ivSize)
	rand.Read(salt)
	rand.Read(iv)

	params, err := marshalPBES2Params(s, prf, salt, iv)
	if err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(h, string(password), salt, s.iterations, c.keySize)
	if err != nil {
		return nil, fmt.Errorf("deriving key: %w", err)
	}
	defer clear(dk)
	block, err := c.newBlock(dk)
	if err != nil {
		return nil, err
	}

	padded := padPKCS7(plain, block.BlockSize())
	defer clear(padded)
	sealed := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(sealed, padded)

	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     algorithm(oidPBES2, params),
		EncryptedData: sealed,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding encrypted private key: %w", err)
	}
	return der, nil
}

// marshalPBES2Params returns the DER PBES2-params for s with the given PRF,
// salt and IV. The key length is left out, as the cipher fixes it.
func marshalPBES2Params(
	s keyFileScheme, prf pkix.AlgorithmIdentifier, salt, iv []byte,
) ([]byte, error) {
	kdf, err := asn1.Marshal(pbkdf2Params{
		Salt:           asn1.RawValue{Tag: asn1.TagOctetString, Bytes: salt},
		IterationCount: s.iterations,
		PRF:            prf,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding pbkdf2 parameters: %w", err)
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, fmt.Errorf("encoding iv: %w", err)
	}

	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: algorithm(oidPBKDF2, kdf),
		EncryptionScheme:  algorithm(s.cipher, ivDER),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding pbes2 parameters: %w", err)
	}
	return params, nil
}

// algorithm returns an AlgorithmIdentifier with the DER encoded params.
func algorithm(oid asn1.ObjectIdentifier, params []byte) pkix.AlgorithmIdentifier {
	return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.RawValue{FullBytes: params}}
}

// parseEncryptedPKCS8 decrypts and parses an EncryptedPrivateKeyInfo.
func parseEncryptedPKCS8(der, password []byte) (any, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalAll(der, &info); err != nil {
		return nil, fmt.Errorf("decoding encrypted private key: %w", err)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("pki: unsupported key encryption scheme %s; only PBES2 is",
			info.Algorithm.Algorithm)
	}

	plain, err := decryptPBES2(info.Algorithm.Parameters.FullBytes, info.EncryptedData, password)
	if err != nil {
		return nil, err
	}
	defer clear(plain)

	// Garbage that decrypted with valid padding by chance fails here, while a
	// decrypted key of a type x509 cannot read still gets its own error.
	var outline pkcs8Outline
	if err := unmarshalAll(plain, &outline); err != nil {
		return nil, ErrWrongPassword
	}
	return x509.ParsePKCS8PrivateKey(plain)
}

// decryptPBES2 decrypts ciphertext with the PBES2-params in params and returns
// the plaintext with its padding removed.
func decryptPBES2(params, ciphertext, password []byte) ([]byte, error) {
	var p pbes2Params
	if err := unmarshalAll(params, &p); err != nil {
		return nil, fmt.Errorf("decoding pbes2 parameters: %w", err)
	}
	c, iv, err := parseCBCScheme(p.EncryptionScheme)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) == 0 || len(ciphertext)%len(iv) != 0 {
		return nil, fmt.Errorf("pki: encrypted key of %d bytes is not a whole number of %d-byte blocks",
			len(ciphertext), len(iv))
	}

	dk, err := deriveKey(p.KeyDerivationFunc, password, c.keySize)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	block, err := c.newBlock(dk)
	if err != nil {
		return nil, err
	}

	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	n, ok := unpadPKCS7(plain, block.BlockSize())
	if !ok {
		clear(plain)
		return nil, ErrWrongPassword
	}
	return plain[:n], nil
}

// parseCBCScheme returns the cipher and IV named by the PBES2 encryption
// scheme alg.
func parseCBCScheme(alg pkix.AlgorithmIdentifier) (cbcCipher, []byte, error) {
	c, ok := cbcCipherFor(alg.Algorithm)
	if !ok {
		return cbcCipher{}, nil, fmt.Errorf("pki: unsupported key encryption cipher %s", alg.Algorithm)
	}
	var iv []byte
	if err := unmarshalAll(alg.Parameters.FullBytes, &iv); err != nil {
		return cbcCipher{}, nil, fmt.Errorf("decoding iv: %w", err)
	}
	if len(iv) != c.ivSize {
		return cbcCipher{}, nil, fmt.Errorf("pki: iv of %d bytes for cipher %s, want %d",
			len(iv), alg.Algorithm, c.ivSize)
	}
	return c, iv, nil
}

// cbcCipherFor returns the cipher named by oid.
func cbcCipherFor(oid asn1.ObjectIdentifier) (cbcCipher, bool) {
	switch {
	case oid.Equal(oidAES128CBC):
		return cbcCipher{16, aes.BlockSize, aes.NewCipher}, true
	case oid.Equal(oidAES192CBC):
		return cbcCipher{24, aes.BlockSize, aes.NewCipher}, true
	case oid.Equal(oidAES256CBC):
		return cbcCipher{32, aes.BlockSize, aes.NewCipher}, true
	case oid.Equal(oidDESEDE3CBC):
		return cbcCipher{24, des.BlockSize, des.NewTripleDESCipher}, true
	}
	return cbcCipher{}, false
}

// deriveKey runs the PBKDF2 function described by alg and returns a key of
// keySize bytes.
func deriveKey(alg pkix.AlgorithmIdentifier, password []byte, keySize int) ([]byte, error) {
	if !alg.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("pki: unsupported key derivation function %s; only PBKDF2 is",
			alg.Algorithm)
	}
	var p pbkdf2Params
	if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
		return nil, fmt.Errorf("decoding pbkdf2 parameters: %w", err)
	}

	salt, err := pbkdf2Salt(p.Salt)
	if err != nil {
		return nil, err
	}
	if p.IterationCount < minKDFIterations || p.IterationCount > maxKDFIterations {
		return nil, fmt.Errorf("pki: kdf iteration count %d outside %d..%d",
			p.IterationCount, minKDFIterations, maxKDFIterations)
	}
	if p.KeyLength != 0 && p.KeyLength != keySize {
		return nil, fmt.Errorf("pki: kdf key length %d does not fit the %d-byte cipher key",
			p.KeyLength, keySize)
	}
	h, err := pbkdf2PRF(p.PRF)
	if err != nil {
		return nil, err
	}

	dk, err := pbkdf2.Key(h, string(password), salt, p.IterationCount, keySize)
	if err != nil {
		return nil, fmt.Errorf("deriving key: %w", err)
	}
	return dk, nil
}

// pbkdf2Salt returns the salt of a PBKDF2-params salt CHOICE.
func pbkdf2Salt(v asn1.RawValue) ([]byte, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || v.IsCompound {
		return nil, errors.New("pki: pbkdf2 salt is not an OCTET STRING")
	}
	return v.Bytes, nil
}

// pbkdf2PRF returns the hash of the HMAC named by alg; a zero alg is the
// RFC 8018 default, hmacWithSHA1.
func pbkdf2PRF(alg pkix.AlgorithmIdentifier) (func() hash.Hash, error) {
	params := alg.Parameters.FullBytes
	if len(params) != 0 && !bytes.Equal(params, asn1.NullBytes) {
		return nil, fmt.Errorf("pki: unexpected parameters for kdf prf %s", alg.Algorithm)
	}

	switch {
	case len(alg.Algorithm) == 0, alg.Algorithm.Equal(oidHMACWithSHA1):
		return sha1.New, nil
	case alg.Algorithm.Equal(oidHMACWithSHA224):
		return sha256.New224, nil
	case alg.Algorithm.Equal(oidHMACWithSHA256):
		return sha256.New, nil
	case alg.Algorithm.Equal(oidHMACWithSHA384):
		return sha512.New384, nil
	case alg.Algorithm.Equal(oidHMACWithSHA512):
		return sha512.New, nil
	}
	return nil, fmt.Errorf("pki: unsupported kdf prf %s", alg.Algorithm)
}

// unmarshalAll decodes der into v and rejects trailing bytes.
func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("pki: %d trailing bytes after DER value", len(rest))
	}
	return nil
}

// padPKCS7 returns a copy of data padded to a multiple of blockSize.
func padPKCS7(data []byte, blockSize int) []byte {
	n := blockSize - len(data)%blockSize
	padded := make([]byte, len(data)+n)
	copy(padded, data)
	for i := len(data); i < len(padded); i++ {
		padded[i] = byte(n)
	}
	return padded
}

// unpadPKCS7 returns the length of data without its padding and whether the
// padding is well formed. data is a non-empty multiple of blockSize. The check
// reads every byte of the last block whatever the pad value, so its timing
// does not tell how much of the padding was right.
func unpadPKCS7(data []byte, blockSize int) (int, bool) {
	last := data[len(data)-blockSize:]
	n := int(last[blockSize-1])

	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, blockSize)
	for i := range blockSize {
		inPad := subtle.ConstantTimeLessOrEq(blockSize-i, n)
		same := subtle.ConstantTimeByteEq(last[i], byte(n))
		good &= (inPad ^ 1) | same
	}
	if good != 1 {
		return 0, false
	}
	return len(data) - n, true
}
