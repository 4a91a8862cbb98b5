package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testPassword   = "correct horse battery staple"
	wrongPassword  = "incorrect mule battery stapler"
	testIterations = 1000
)

// Key files written by Python's cryptography 48 with BestAvailableEncryption
// and the password "byoda", with their public keys.
const (
	pythonP256Key = `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIH0MF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBBOVs1vgI2QzB0Cdg/e
Nk/aAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQoqAOEQDpPZtSjxKE
zZcVTASBkKmDkF1T0IQn6Cv8+v/RBoDzcuNtJWs4U4wV5ZfQua/TfY84BGUhRy3C
gyxwPwWJI9kWxAmzh61R2SjbMZILIaluL470qW/RR1d3tRVwpUSodDTEvKuakBzH
8If6K8aRbXsEd0IGha9suPxVYB0E/m3SmJm0zhjvgaErZImEZbfO5s2enbe7UEr/
Yjp1XZL+rA==
-----END ENCRYPTED PRIVATE KEY-----
`
	pythonP256Pub = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEg9ieFmL2TSlXeoVXYauZd31PpFJ3
THLPYPGQSaJ0FuQBKT6VjzlJN+k+wwMDoKuYD8fDzCFf2SvRBCzxWhYxnQ==
-----END PUBLIC KEY-----
`
	pythonEd25519Key = `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGjMF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBD/e7v1D0rK0C0fgAJx
p3OiAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQ0Qs/zJy3CooxF9ZJ
d/bw+ARAIJqGDxhA6B1XEpr/MdGruxZDUx2Br5ocJy8DP+ExP/hj9Cc2rgvM0oQI
miqS9ToGmuabHfg10ZZ3AHf4GZLtHA==
-----END ENCRYPTED PRIVATE KEY-----
`
	pythonEd25519Pub = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAkm+bmBoOzwbZ3Ls3edLIbxDeHYRbly2NHYPQNtJu7KQ=
-----END PUBLIC KEY-----
`
)

var keyKinds = []string{"p256", "rsa2048", "ed25519"}

// newTestKey returns a fresh key of kind, one of keyKinds.
func newTestKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatalf("generating %s key: %v", kind, err)
	}
	return key
}

// assertSameKey fails t unless got is the private key want.
func assertSameKey(t *testing.T, got, want crypto.Signer) {
	t.Helper()
	k, ok := got.(interface{ Equal(crypto.PrivateKey) bool })
	if !ok {
		t.Fatalf("key of type %T has no Equal method", got)
	}
	if !k.Equal(want) {
		t.Fatalf("parsed %T key differs from the original", got)
	}
}

// assertPublicKey fails t unless pubPEM holds the public key of key.
func assertPublicKey(t *testing.T, key crypto.Signer, pubPEM []byte) {
	t.Helper()
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("no PUBLIC KEY block in %q", pubPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("parsing public key: %v", err)
	}
	k, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(key.Public()) {
		t.Fatalf("public key %T does not belong to the private key", pub)
	}
}

// assertWrongPassword fails t unless err reports a wrong password without
// revealing it.
func assertWrongPassword(t *testing.T, err error, password string) {
	t.Helper()
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error %q contains the password", err)
	}
}

func TestEncryptedKeyRoundTrip(t *testing.T) {
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			key := newTestKey(t, kind)
			data, err := MarshalEncryptedKeyIter(key, []byte(testPassword), testIterations)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")) {
				t.Fatalf("unexpected PEM:\n%s", data)
			}
			if bytes.Contains(data, []byte(testPassword)) {
				t.Fatal("key file contains the password")
			}

			got, err := ParseKey(data, []byte(testPassword))
			if err != nil {
				t.Fatal(err)
			}
			assertSameKey(t, got, key)

			_, err = ParseKey(data, []byte(wrongPassword))
			assertWrongPassword(t, err, wrongPassword)
		})
	}
}

func TestUnencryptedKeyRoundTrip(t *testing.T) {
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			key := newTestKey(t, kind)
			data, err := MarshalKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
				t.Fatalf("unexpected PEM:\n%s", data)
			}

			// A password given for a plain key file is not needed and ignored.
			got, err := ParseKey(data, []byte(testPassword))
			if err != nil {
				t.Fatal(err)
			}
			assertSameKey(t, got, key)
		})
	}
}

// keyFileParts is an encrypted key file taken apart, so that tests can change
// one field and put it back together.
type keyFileParts struct {
	info  encryptedPrivateKeyInfo
	pbes2 pbes2Params
	kdf   pbkdf2Params
	iv    []byte
}

func splitKeyFile(t *testing.T, data []byte) *keyFileParts {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	var p keyFileParts
	if err := unmarshalAll(block.Bytes, &p.info); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalAll(p.info.Algorithm.Parameters.FullBytes, &p.pbes2); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalAll(p.pbes2.KeyDerivationFunc.Parameters.FullBytes, &p.kdf); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalAll(p.pbes2.EncryptionScheme.Parameters.FullBytes, &p.iv); err != nil {
		t.Fatal(err)
	}
	return &p
}

func (p *keyFileParts) join(t *testing.T) []byte {
	t.Helper()
	kdf, err := asn1.Marshal(p.kdf)
	if err != nil {
		t.Fatal(err)
	}
	p.pbes2.KeyDerivationFunc.Parameters = asn1.RawValue{FullBytes: kdf}
	iv, err := asn1.Marshal(p.iv)
	if err != nil {
		t.Fatal(err)
	}
	p.pbes2.EncryptionScheme.Parameters = asn1.RawValue{FullBytes: iv}
	params, err := asn1.Marshal(p.pbes2)
	if err != nil {
		t.Fatal(err)
	}
	p.info.Algorithm.Parameters = asn1.RawValue{FullBytes: params}
	der, err := asn1.Marshal(p.info)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

func TestMarshalEncryptedKeyParameters(t *testing.T) {
	key := newTestKey(t, "p256")
	first, err := MarshalEncryptedKey(key, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	second, err := MarshalEncryptedKey(key, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, second) {
		t.Fatal("two encryptions of one key are identical; salt and iv are not random")
	}

	p := splitKeyFile(t, first)
	checks := []struct {
		name string
		ok   bool
	}{
		{"scheme is PBES2", p.info.Algorithm.Algorithm.Equal(oidPBES2)},
		{"kdf is PBKDF2", p.pbes2.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2)},
		{"salt is a 16-byte OCTET STRING", p.kdf.Salt.Tag == asn1.TagOctetString &&
			len(p.kdf.Salt.Bytes) == 16},
		{"iterations are the default", p.kdf.IterationCount == DefaultKDFIterations},
		{"key length is left out", p.kdf.KeyLength == 0},
		{"prf is hmacWithSHA256", p.kdf.PRF.Algorithm.Equal(oidHMACWithSHA256)},
		{"prf parameters are NULL", bytes.Equal(p.kdf.PRF.Parameters.FullBytes, asn1.NullBytes)},
		{"cipher is aes-256-cbc", p.pbes2.EncryptionScheme.Algorithm.Equal(oidAES256CBC)},
		{"iv has 16 bytes", len(p.iv) == 16},
		{"ciphertext is whole blocks", len(p.info.EncryptedData)%16 == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: does not hold", c.name)
		}
	}

	got, err := ParseKey(first, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, got, key)
}

func TestMarshalKeyErrors(t *testing.T) {
	key := newTestKey(t, "p256")
	// badKey marks cases that MarshalKey must refuse as well.
	tests := []struct {
		name       string
		key        crypto.Signer
		password   string
		iterations int
		badKey     bool
	}{
		{"empty password", key, "", testIterations, false},
		{"zero iterations", key, testPassword, 0, false},
		{"negative iterations", key, testPassword, -1, false},
		{"too many iterations", key, testPassword, maxKDFIterations + 1, false},
		{"nil key", nil, testPassword, testIterations, true},
		{"nil ecdsa key", (*ecdsa.PrivateKey)(nil), testPassword, testIterations, true},
		{"nil rsa key", (*rsa.PrivateKey)(nil), testPassword, testIterations, true},
		{"short ed25519 key", ed25519.PrivateKey{1, 2, 3}, testPassword, testIterations, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := MarshalEncryptedKeyIter(tt.key, []byte(tt.password), tt.iterations)
			if err == nil {
				t.Fatalf("MarshalEncryptedKeyIter succeeded:\n%s", data)
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Fatalf("error %q contains the password", err)
			}

			data, err = MarshalKey(tt.key)
			if tt.badKey != (err != nil) {
				t.Fatalf("MarshalKey error = %v, want an error: %v", err, tt.badKey)
			}
		})
	}
}

// TestParseKeySchemes reads files with every PRF and cipher a key file may
// use, and checks that many wrong passwords are all reported as such, which
// also covers the wrong passwords that happen to leave valid padding.
func TestParseKeySchemes(t *testing.T) {
	key := newTestKey(t, "p256")
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	prfs := []struct {
		name string
		oid  asn1.ObjectIdentifier
	}{
		{"default", nil},
		{"sha1", oidHMACWithSHA1},
		{"sha224", oidHMACWithSHA224},
		{"sha256", oidHMACWithSHA256},
		{"sha384", oidHMACWithSHA384},
		{"sha512", oidHMACWithSHA512},
	}
	ciphers := []struct {
		name string
		oid  asn1.ObjectIdentifier
	}{
		{"aes128", oidAES128CBC},
		{"aes192", oidAES192CBC},
		{"aes256", oidAES256CBC},
		{"des3", oidDESEDE3CBC},
	}

	for _, prf := range prfs {
		for _, c := range ciphers {
			t.Run(prf.name+"-"+c.name, func(t *testing.T) {
				s := keyFileScheme{prf: prf.oid, cipher: c.oid, saltSize: 8, iterations: 1}
				data := encryptForTest(t, plain, testPassword, s)
				got, err := ParseKey(data, []byte(testPassword))
				if err != nil {
					t.Fatal(err)
				}
				assertSameKey(t, got, key)

				for i := range 100 {
					pw := fmt.Sprintf("%s-%d", wrongPassword, i)
					_, err := ParseKey(data, []byte(pw))
					assertWrongPassword(t, err, pw)
				}
			})
		}
	}
}

// encryptForTest returns plain as an encrypted key file written as s says.
func encryptForTest(t *testing.T, plain []byte, password string, s keyFileScheme) []byte {
	t.Helper()
	der, err := encryptPKCS8(plain, []byte(password), s)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

func TestParseKeyPlainFormats(t *testing.T) {
	ecKey := newTestKey(t, "p256").(*ecdsa.PrivateKey)
	rsaKey := newTestKey(t, "rsa2048").(*rsa.PrivateKey)
	edKey := newTestKey(t, "ed25519")
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	pkcs8 := func(key crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	encode := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	comments := "# Issuer <Name(CN=members-ca.members-ca-1.byoda.test)>\n" +
		"# Subject <Name(CN=x.members-1.byoda.test)>\n"

	tests := []struct {
		name string
		data string
		want crypto.Signer
	}{
		{"sec1", encode("EC PRIVATE KEY", sec1), ecKey},
		{"pkcs1", encode("RSA PRIVATE KEY", pkcs1), rsaKey},
		{"pkcs8 ec", encode("PRIVATE KEY", pkcs8(ecKey)), ecKey},
		{"pkcs8 rsa", encode("PRIVATE KEY", pkcs8(rsaKey)), rsaKey},
		{"pkcs8 ed25519", encode("PRIVATE KEY", pkcs8(edKey)), edKey},
		{"after comments", comments + encode("PRIVATE KEY", pkcs8(ecKey)), ecKey},
		{"after other blocks", encode("EC PARAMETERS", []byte{6, 1, 0}) + comments +
			encode("CERTIFICATE", []byte{1, 2, 3}) + encode("EC PRIVATE KEY", sec1), ecKey},
		{"first of two keys", encode("PRIVATE KEY", pkcs8(edKey)) +
			encode("EC PRIVATE KEY", sec1), edKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey([]byte(tt.data), nil)
			if err != nil {
				t.Fatal(err)
			}
			assertSameKey(t, got, tt.want)
		})
	}
}

func TestParseKeyRejects(t *testing.T) {
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xDER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	s := defaultKeyFileScheme(1)
	legacy := &pem.Block{
		Type:    "EC PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"},
		Bytes:   []byte{1, 2, 3},
	}

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no private key"},
		{"certificate only", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
			"no private key"},
		{"legacy encryption", pem.EncodeToMemory(legacy), "legacy"},
		{"x25519 key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: xDER}),
			"unsupported private key type"},
		{"encrypted x25519 key", encryptForTest(t, xDER, testPassword, s),
			"unsupported private key type"},
		{"garbage sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{0x30, 0}}),
			"EC PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKey(tt.data, []byte(testPassword))
			if err == nil {
				t.Fatalf("ParseKey returned a %T key", key)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.want)
			}
			if errors.Is(err, ErrWrongPassword) {
				t.Fatalf("err = %q reports a wrong password", err)
			}
		})
	}
}

func TestParseKeyCorrupted(t *testing.T) {
	key := newTestKey(t, "p256")
	good, err := MarshalEncryptedKeyIter(key, []byte(testPassword), 10)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(good)
	reencode := func(der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
	}
	modified := func(change func(p *keyFileParts)) []byte {
		p := splitKeyFile(t, good)
		change(p)
		return p.join(t)
	}
	oid := func(s string) asn1.ObjectIdentifier {
		var o asn1.ObjectIdentifier
		for part := range strings.SplitSeq(s, ".") {
			var n int
			if _, err := fmt.Sscan(part, &n); err != nil {
				t.Fatalf("bad oid %q: %v", s, err)
			}
			o = append(o, n)
		}
		return o
	}
	const (
		pbeSHA1DES   = "1.2.840.113549.1.5.10"
		pkcs12SHA3DE = "1.2.840.113549.1.12.1.3"
		scrypt       = "1.3.6.1.4.1.11591.4.11"
		hmacMD5      = "1.2.840.113549.2.6"
		aes256GCM    = "2.16.840.1.101.3.4.1.46"
		rc2CBC       = "1.2.840.113549.3.2"
	)

	// wrongPW marks corruptions that must read as a wrong password; the
	// others must give some other error, which want names.
	tests := []struct {
		name    string
		data    []byte
		wrongPW bool
		want    string
	}{
		{"truncated pem", good[:len(good)/2], false, "no private key"},
		{"truncated der", reencode(block.Bytes[:len(block.Bytes)-7]), false, "decoding"},
		{"der header only", reencode(block.Bytes[:4]), false, "decoding"},
		{"trailing der", reencode(append(bytes.Clone(block.Bytes), 5, 0)), false, "trailing"},
		{"salt bit flip", modified(func(p *keyFileParts) { p.kdf.Salt.Bytes[3] ^= 0x10 }), true, ""},
		{"iv bit flip", modified(func(p *keyFileParts) { p.iv[0] ^= 0x01 }), true, ""},
		{"padding bit flip", modified(func(p *keyFileParts) {
			ct := p.info.EncryptedData
			ct[len(ct)-17] ^= 0x01
		}), true, ""},
		{"first block bit flip", modified(func(p *keyFileParts) {
			p.info.EncryptedData[0] ^= 0x80
		}), true, ""},
		{"short ciphertext", modified(func(p *keyFileParts) {
			p.info.EncryptedData = p.info.EncryptedData[:len(p.info.EncryptedData)-1]
		}), false, "blocks"},
		{"empty ciphertext", modified(func(p *keyFileParts) { p.info.EncryptedData = nil }),
			false, "blocks"},
		{"short iv", modified(func(p *keyFileParts) { p.iv = p.iv[:8] }), false, "iv of 8 bytes"},
		{"zero iterations", modified(func(p *keyFileParts) { p.kdf.IterationCount = 0 }),
			false, "iteration count 0"},
		{"negative iterations", modified(func(p *keyFileParts) { p.kdf.IterationCount = -5 }),
			false, "iteration count -5"},
		{"too many iterations", modified(func(p *keyFileParts) {
			p.kdf.IterationCount = maxKDFIterations + 1
		}), false, "iteration count 10000001"},
		{"key length mismatch", modified(func(p *keyFileParts) { p.kdf.KeyLength = 16 }),
			false, "key length 16"},
		{"salt from other source", modified(func(p *keyFileParts) {
			p.kdf.Salt = asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true}
		}), false, "salt"},
		{"prf with parameters", modified(func(p *keyFileParts) {
			p.kdf.PRF.Parameters = asn1.RawValue{FullBytes: []byte{4, 1, 0}}
		}), false, "parameters"},
		{"pbes1", modified(func(p *keyFileParts) { p.info.Algorithm.Algorithm = oid(pbeSHA1DES) }),
			false, pbeSHA1DES},
		{"pkcs12 pbe", modified(func(p *keyFileParts) {
			p.info.Algorithm.Algorithm = oid(pkcs12SHA3DE)
		}), false, pkcs12SHA3DE},
		{"scrypt", modified(func(p *keyFileParts) {
			p.pbes2.KeyDerivationFunc.Algorithm = oid(scrypt)
		}), false, scrypt},
		{"hmac md5", modified(func(p *keyFileParts) { p.kdf.PRF.Algorithm = oid(hmacMD5) }),
			false, hmacMD5},
		{"aes gcm", modified(func(p *keyFileParts) {
			p.pbes2.EncryptionScheme.Algorithm = oid(aes256GCM)
		}), false, aes256GCM},
		{"rc2", modified(func(p *keyFileParts) {
			p.pbes2.EncryptionScheme.Algorithm = oid(rc2CBC)
		}), false, rc2CBC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKey(tt.data, []byte(testPassword))
			if err == nil {
				t.Fatalf("ParseKey returned a %T key", key)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Fatalf("error %q contains the password", err)
			}
			if errors.Is(err, ErrWrongPassword) != tt.wrongPW {
				t.Fatalf("err = %q; want ErrWrongPassword: %v", err, tt.wrongPW)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUnpadPKCS7(t *testing.T) {
	block := func(tail ...byte) []byte {
		b := bytes.Repeat([]byte{0xaa}, 16-len(tail))
		return append(b, tail...)
	}
	full := bytes.Repeat([]byte{16}, 16)
	tests := []struct {
		name string
		data []byte
		n    int
		ok   bool
	}{
		{"one byte", block(1), 15, true},
		{"three bytes", block(3, 3, 3), 13, true},
		{"whole block", full, 0, true},
		{"two blocks", append(bytes.Repeat([]byte{7}, 16), block(2, 2)...), 30, true},
		{"zero", block(0), 0, false},
		{"above block size", block(17), 0, false},
		{"high byte", block(0xff), 0, false},
		{"short run", block(2, 3, 3), 0, false},
		{"first pad byte wrong", append([]byte{15}, full[1:]...), 0, false},
		{"pad byte past data", block(0xaa, 3, 3), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := unpadPKCS7(tt.data, 16)
			if n != tt.n || ok != tt.ok {
				t.Fatalf("unpadPKCS7 = %d, %v; want %d, %v", n, ok, tt.n, tt.ok)
			}
		})
	}
}

func TestParsePythonKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
		pub  string
	}{
		{"p256", pythonP256Key, pythonP256Pub},
		{"ed25519", pythonEd25519Key, pythonEd25519Pub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKey([]byte(tt.key), []byte("byoda"))
			if err != nil {
				t.Fatal(err)
			}
			assertPublicKey(t, key, []byte(tt.pub))

			_, err = ParseKey([]byte(tt.key), []byte("not-byoda"))
			assertWrongPassword(t, err, "not-byoda")
		})
	}
}

// openSSL runs the openssl binary in a directory holding the password files
// "pw" (testPassword) and "wrong-pw", so that no password is on a command line.
type openSSL struct {
	bin string
	dir string
}

func newOpenSSL(t *testing.T) *openSSL {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("openssl not installed: %v", err)
	}
	o := &openSSL{bin: bin, dir: t.TempDir()}
	o.write(t, "pw", []byte(testPassword+"\n"))
	o.write(t, "wrong-pw", []byte(wrongPassword+"\n"))
	return o
}

// write stores data in the file name of o's directory and returns its path.
func (o *openSSL) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(o.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs openssl with args in o's directory and returns its standard output.
func (o *openSSL) run(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(o.bin, args...)
	cmd.Dir = o.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("openssl %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// must is run that fails t on error.
func (o *openSSL) must(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := o.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenSSLReadsOurKeys(t *testing.T) {
	o := newOpenSSL(t)
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			key := newTestKey(t, kind)
			encrypted, err := MarshalEncryptedKey(key, []byte(testPassword))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := MarshalKey(key)
			if err != nil {
				t.Fatal(err)
			}
			o.write(t, kind+"-enc.pem", encrypted)
			o.write(t, kind+"-plain.pem", plain)

			pub := o.must(t, "pkey", "-in", kind+"-enc.pem", "-passin", "file:pw", "-pubout")
			assertPublicKey(t, key, pub)
			pub = o.must(t, "pkey", "-in", kind+"-plain.pem", "-pubout")
			assertPublicKey(t, key, pub)

			// openssl pkcs8 without -topk8 writes the decrypted key back out,
			// in the traditional format where the key type has one.
			out := o.must(t, "pkcs8", "-in", kind+"-enc.pem", "-passin", "file:pw")
			got, err := ParseKey(out, nil)
			if err != nil {
				t.Fatalf("parsing key decrypted by openssl: %v", err)
			}
			assertSameKey(t, got, key)

			_, err = o.run(t, "pkey", "-in", kind+"-enc.pem", "-passin", "file:wrong-pw")
			if err == nil {
				t.Fatal("openssl decrypted our key file with a wrong password")
			}

			dump := string(o.must(t, "asn1parse", "-in", kind+"-enc.pem"))
			for _, want := range []string{"PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"} {
				if !strings.Contains(dump, want) {
					t.Errorf("asn1parse output lacks %s:\n%s", want, dump)
				}
			}
		})
	}
}

func TestParseOpenSSLKeys(t *testing.T) {
	o := newOpenSSL(t)
	genArgs := map[string][]string{
		"p256":    {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"rsa2048": {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"},
		"ed25519": {"-algorithm", "ED25519"},
	}
	schemes := []struct {
		name string
		args []string
	}{
		{"aes256-sha256", []string{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"}},
		{"aes128-default-prf", []string{"-v2", "aes-128-cbc"}},
		{"aes128-sha1", []string{"-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"}},
		{"aes192-sha512", []string{"-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512"}},
		{"aes256-sha384", []string{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA384"}},
		{"aes256-sha224", []string{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA224"}},
		{"des3", []string{"-v2", "des3"}},
	}

	for _, kind := range keyKinds {
		plainFile := kind + ".pem"
		o.must(t, append([]string{"genpkey", "-out", plainFile}, genArgs[kind]...)...)
		pub := o.must(t, "pkey", "-in", plainFile, "-pubout")

		for _, s := range schemes {
			t.Run(kind+"-"+s.name, func(t *testing.T) {
				file := kind + "-" + s.name + ".pem"
				args := []string{"pkcs8", "-topk8", "-in", plainFile, "-out", file,
					"-passout", "file:pw"}
				o.must(t, append(args, s.args...)...)
				data, err := os.ReadFile(filepath.Join(o.dir, file))
				if err != nil {
					t.Fatal(err)
				}

				key, err := ParseKey(data, []byte(testPassword))
				if err != nil {
					t.Fatal(err)
				}
				assertPublicKey(t, key, pub)

				_, err = ParseKey(data, []byte(wrongPassword))
				assertWrongPassword(t, err, wrongPassword)
			})
		}
	}
}

func TestParseOpenSSLTraditionalKeys(t *testing.T) {
	o := newOpenSSL(t)
	o.must(t, "ecparam", "-name", "prime256v1", "-genkey", "-out", "ec.pem")
	o.must(t, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
		"-out", "rsa8.pem")
	o.must(t, "rsa", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem")

	for _, file := range []string{"ec.pem", "rsa1.pem"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(o.dir, file))
			if err != nil {
				t.Fatal(err)
			}
			key, err := ParseKey(data, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			assertPublicKey(t, key, o.must(t, "pkey", "-in", file, "-pubout"))
		})
	}
}

func TestParseOpenSSLUnsupportedSchemes(t *testing.T) {
	o := newOpenSSL(t)
	o.must(t, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-out", "key.pem")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"scrypt", []string{"pkcs8", "-topk8", "-scrypt"}, "1.3.6.1.4.1.11591.4.11"},
		{"pkcs12 pbe", []string{"pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES"},
			"1.2.840.113549.1.12.1.3"},
		{"legacy pem", []string{"ec", "-aes256"}, "legacy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := strings.ReplaceAll(tt.name, " ", "-") + ".pem"
			args := append(tt.args, "-in", "key.pem", "-out", file, "-passout", "file:pw")
			o.must(t, args...)
			data, err := os.ReadFile(filepath.Join(o.dir, file))
			if err != nil {
				t.Fatal(err)
			}

			key, err := ParseKey(data, []byte(testPassword))
			if err == nil {
				t.Fatalf("ParseKey returned a %T key", key)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	password := []byte(testPassword)
	for _, kind := range keyKinds {
		key := newTestKey(f, kind)
		plain, err := MarshalKey(key)
		if err != nil {
			f.Fatal(err)
		}
		encrypted, err := MarshalEncryptedKeyIter(key, password, 2)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
		f.Add(encrypted)
	}
	ecKey := newTestKey(f, "p256").(*ecdsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add([]byte(pythonEd25519Key))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		// Counts up to the 10 million ParseKey allows are valid but take
		// seconds each, which would stall the fuzzer.
		if kdfIterations(data) > 4096 {
			t.Skip("iteration count too slow for fuzzing")
		}
		key, err := ParseKey(data, password)
		if err != nil {
			return
		}
		again, err := MarshalKey(key)
		if err != nil {
			t.Fatalf("parsed %T key does not marshal: %v", key, err)
		}
		back, err := ParseKey(again, nil)
		if err != nil {
			t.Fatalf("re-marshalled key does not parse: %v", err)
		}
		assertSameKey(t, back, key)
	})
}

// kdfIterations returns the PBKDF2 iteration count of the first encrypted key
// block in data, or 0 if it has none.
func kdfIterations(data []byte) int {
	block := firstKeyBlock(data)
	if block == nil || block.Type != "ENCRYPTED PRIVATE KEY" {
		return 0
	}
	var info encryptedPrivateKeyInfo
	var p pbes2Params
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(block.Bytes, &info); err != nil {
		return 0
	}
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &p); err != nil {
		return 0
	}
	if _, err := asn1.Unmarshal(p.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		return 0
	}
	return kdf.IterationCount
}

func BenchmarkParseEncryptedKey(b *testing.B) {
	key := newTestKey(b, "p256")
	data, err := MarshalEncryptedKey(key, []byte(testPassword))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ParseKey(data, []byte(testPassword)); err != nil {
			b.Fatal(err)
		}
	}
}
