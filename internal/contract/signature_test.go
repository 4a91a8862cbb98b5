package contract

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The common names that testdata/gen_golden.py signs with.
const (
	serviceCN = "data.service-data-4294967040.byoda.test"
	networkCN = "network.network-data.byoda.test"
)

var (
	serviceTime = time.Date(2025, 6, 1, 14, 30, 5, 0, time.FixedZone("CEST", 2*3600))
	networkTime = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
)

func TestVerifyPythonSignatures(t *testing.T) {
	signed := readTestdata(t, "edge.signed-by-python.json")
	key := testKey(t)
	var compact bytes.Buffer
	if err := json.Compact(&compact, signed); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		doc  []byte
		by   Signer
		cert *x509.Certificate
	}{
		{"service", signed, SignerService, testCert(t, key, serviceCN)},
		{"network", signed, SignerNetwork, testCert(t, key, networkCN)},
		{"network over compact JSON", compact.Bytes(), SignerNetwork, testCert(t, key, networkCN)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.doc, tt.by, tt.cert); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestSignaturesPython(t *testing.T) {
	got, err := Signatures(readTestdata(t, "edge.signed-by-python.json"))
	if err != nil {
		t.Fatalf("Signatures: %v", err)
	}

	want := map[Signer]Signature{
		SignerService: {
			HashAlgorithm: "SHA256", Timestamp: "2025-01-02T03:04:05", Certificate: serviceCN,
		},
		SignerNetwork: {
			HashAlgorithm: "SHA256", Timestamp: "2025-01-02T03:04:06", Certificate: networkCN,
		},
	}
	for by, sig := range got {
		if raw, err := base64.StdEncoding.DecodeString(sig.Signature); err != nil || len(raw) != 256 {
			t.Errorf("%s signature is not 256 bytes of base64: %v", by, err)
		}
		sig.Signature = ""
		got[by] = sig
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Signatures = %+v, want %+v", got, want)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	doc := readTestdata(t, "sample-contract.json")
	key := testKey(t)
	serviceCert, networkCert := testCert(t, key, serviceCN), testCert(t, key, networkCN)

	once, err := Sign(doc, SignerService, key, serviceCN, serviceTime)
	if err != nil {
		t.Fatalf("Sign as service: %v", err)
	}
	if err := Verify(once, SignerService, serviceCert); err != nil {
		t.Errorf("Verify service signature: %v", err)
	}
	if err := Verify(once, SignerNetwork, networkCert); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify missing network signature = %v, want ErrSignature", err)
	}

	twice, err := Sign(once, SignerNetwork, key, networkCN, networkTime)
	if err != nil {
		t.Fatalf("Sign as network: %v", err)
	}
	if err := Verify(twice, SignerService, serviceCert); err != nil {
		t.Errorf("Verify service signature after network signing: %v", err)
	}
	if err := Verify(twice, SignerNetwork, networkCert); err != nil {
		t.Errorf("Verify network signature: %v", err)
	}

	checkCanonical(t, twice)
	checkSameContent(t, doc, twice)
	checkSignatures(t, twice, map[Signer][2]string{
		SignerService: {serviceCN, "2025-06-01T12:30:05"},
		SignerNetwork: {networkCN, "2025-06-02T09:00:00"},
	})
}

func TestSignReplacesSignatures(t *testing.T) {
	const (
		otherService = "data.service-data-1.byoda.test"
		otherNetwork = "network.network-data.other.test"
	)
	key := testKey(t)
	pythonSigned := readTestdata(t, "edge.signed-by-python.json")

	service, err := Sign(pythonSigned, SignerService, key, otherService, serviceTime)
	if err != nil {
		t.Fatalf("Sign as service: %v", err)
	}
	checkSignatures(t, service, map[Signer][2]string{
		SignerService: {otherService, "2025-06-01T12:30:05"},
	})

	network, err := Sign(pythonSigned, SignerNetwork, key, otherNetwork, networkTime)
	if err != nil {
		t.Fatalf("Sign as network: %v", err)
	}
	checkSignatures(t, network, map[Signer][2]string{
		SignerService: {serviceCN, "2025-01-02T03:04:05"},
		SignerNetwork: {otherNetwork, "2025-06-02T09:00:00"},
	})
	if err := Verify(network, SignerNetwork, testCert(t, key, otherNetwork)); err != nil {
		t.Errorf("Verify replaced network signature: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	rsaKey := testKey(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	contract := []byte(`{"name": "x", "signatures": {}}`)

	tests := []struct {
		name    string
		doc     string
		by      Signer
		key     crypto.Signer
		cn      string
		wantErr error // nil: any error
	}{
		{"ECDSA key", string(contract), SignerService, ecKey, serviceCN, ErrNotRSA},
		{"Ed25519 key", string(contract), SignerService, edKey, serviceCN, ErrNotRSA},
		{"no key", string(contract), SignerService, nil, serviceCN, ErrNotRSA},
		{"network before service", string(contract), SignerNetwork, rsaKey, networkCN, nil},
		{"network without signatures", `{"name": "x"}`, SignerNetwork, rsaKey, networkCN, nil},
		{"network over a broken service entry", `{"signatures": {"service": {"signature": "x"}}}`,
			SignerNetwork, rsaKey, networkCN, nil},
		{"unknown signer", string(contract), Signer("member"), rsaKey, serviceCN, nil},
		{"empty common name", string(contract), SignerService, rsaKey, "", nil},
		{"common name not UTF-8", string(contract), SignerService, rsaKey, "data.\xff", nil},
		{"not an object", `["name"]`, SignerService, rsaKey, serviceCN, ErrMalformed},
		{"malformed", `{"name": "x",}`, SignerService, rsaKey, serviceCN, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Sign([]byte(tt.doc), tt.by, tt.key, tt.cn, serviceTime)
			if err == nil {
				t.Fatalf("Sign = %q, want an error", out)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Sign error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	key := testKey(t)
	serviceCert, networkCert := testCert(t, key, serviceCN), testCert(t, key, networkCN)
	signed := signTwice(t, readTestdata(t, "sample-contract.json"), key)
	sigs, err := Signatures(signed)
	if err != nil {
		t.Fatal(err)
	}
	service, network := sigs[SignerService], sigs[SignerNetwork]

	tests := []struct {
		name                      string
		old, new                  string
		serviceFails, networkFail bool
	}{
		{"field value", `"name": "recipebox"`, `"name": "recipebot"`, true, true},
		{"integer", `"version": 3`, `"version": 4`, true, true},
		{"extra member", `"version": 3`, `"version": 3, "x": null`, true, true},
		{"service signature", service.Signature, flipSignature(t, service.Signature), true, true},
		{"network signature", network.Signature, flipSignature(t, network.Signature), false, true},
		{"network padding bits", network.Signature, setPaddingBit(t, network.Signature), false, true},
		{"service certificate", serviceCN, "data.service-data-4294967041.byoda.test", true, true},
		{"network certificate", networkCN, "network.network-data.byoda.tesu", false, true},
		{"hash algorithm", `"hash_algorithm": "SHA256",
      "signature": "` + service.Signature, `"hash_algorithm": "SHA512",
      "signature": "` + service.Signature, true, true},
		{"extra signatures entry", `"signatures": {`, `"signatures": {"other": {},`, true, true},
		{"network entry renamed", `"network": {
      "certificate"`, `"removed": {
      "certificate"`, true, true},
		// Only the network signature covers the service timestamp.
		{"service timestamp", service.Timestamp, "2025-06-01T12:30:06", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Count(signed, []byte(tt.old)) != 1 {
				t.Fatalf("%q is not in the signed contract exactly once", tt.old)
			}
			doc := bytes.Replace(signed, []byte(tt.old), []byte(tt.new), 1)

			checkVerify(t, doc, SignerService, serviceCert, tt.serviceFails)
			checkVerify(t, doc, SignerNetwork, networkCert, tt.networkFail)
		})
	}
}

// TestVerifyEveryByteFlip flips the lowest bit of each byte of a signed
// contract in turn. Only the network's own timestamp is covered by no
// signature; every other change must make one of the signatures fail.
func TestVerifyEveryByteFlip(t *testing.T) {
	key := testKey(t)
	serviceCert, networkCert := testCert(t, key, serviceCN), testCert(t, key, networkCN)
	signed := signTwice(t, []byte(`{"name": "tiny", "service_id": 7, "version": 1,
		"jsonschema": {"a": [1.5, "é", true, null, {}]}, "signatures": {}}`), key)

	stamp := []byte(`"timestamp": "2025-06-02T09:00:00"`)
	from := bytes.Index(signed, stamp) + len(`"timestamp": "`)
	to := from + len("2025-06-02T09:00:00")

	for i := range signed {
		doc := bytes.Clone(signed)
		doc[i] ^= 1

		err := Verify(doc, SignerService, serviceCert)
		if err == nil {
			err = Verify(doc, SignerNetwork, networkCert)
		}
		unsigned := from <= i && i < to
		if unsigned && err != nil {
			t.Errorf("byte %d of the network timestamp flipped: %v", i, err)
		}
		if !unsigned && !errors.Is(err, ErrSignature) {
			t.Errorf("byte %d (%q) flipped: Verify = %v, want ErrSignature", i, signed[i], err)
		}
	}
}

func TestVerifyNetworkAfterServiceChange(t *testing.T) {
	key := testKey(t)
	doc := readTestdata(t, "sample-contract.json")
	signed := signTwice(t, doc, key)

	// A second, equally valid service signature of the same contract.
	resigned, err := Sign(doc, SignerService, key, serviceCN, serviceTime.Add(time.Hour))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	before, after := signatureOf(t, signed, SignerService), signatureOf(t, resigned, SignerService)
	swapped := bytes.Replace(signed, []byte(before.Signature), []byte(after.Signature), 1)
	swapped = bytes.Replace(swapped, []byte(before.Timestamp), []byte(after.Timestamp), 1)

	checkVerify(t, swapped, SignerService, testCert(t, key, serviceCN), false)
	checkVerify(t, swapped, SignerNetwork, testCert(t, key, networkCN), true)
}

func TestVerifyWrongCertificate(t *testing.T) {
	key := testKey(t)
	signed := signTwice(t, readTestdata(t, "sample-contract.json"), key)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		by   Signer
		cert *x509.Certificate
	}{
		{"other key, same name", SignerService, testCert(t, otherKey, serviceCN)},
		{"same key, other name", SignerService, testCert(t, key, "data.service-data-1.byoda.test")},
		{"service certificate for network", SignerNetwork, testCert(t, key, serviceCN)},
		{"ECDSA certificate", SignerNetwork, testCert(t, ecKey, networkCN)},
		{"no certificate", SignerService, nil},
		{"unknown signer", Signer("member"), testCert(t, key, serviceCN)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerify(t, signed, tt.by, tt.cert, true)
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	cert := testCert(t, testKey(t), serviceCN)
	for _, doc := range []string{`{"signatures": {}`, `[]`, `{"a": 1, "a": 1}`} {
		err := Verify([]byte(doc), SignerService, cert)
		if !errors.Is(err, ErrSignature) || !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q) = %v, want ErrSignature and ErrMalformed", doc, err)
		}
	}
}

func TestSignaturesErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		want      int // entries; -1 for an error
	}{
		{"no signatures", `{"name": "x"}`, 0},
		{"empty signatures", `{"signatures": {}}`, 0},
		{"other entries left out", `{"signatures": {"member": 1}}`, 0},
		{"signatures not an object", `{"signatures": []}`, -1},
		{"entry not an object", `{"signatures": {"service": "x"}}`, -1},
		{"field missing", `{"signatures": {"network": {"signature": "", "hash_algorithm": "SHA256",
			"certificate": "x"}}}`, -1},
		{"field not a string", `{"signatures": {"network": {"signature": "", "hash_algorithm": "SHA256",
			"certificate": "x", "timestamp": 1}}}`, -1},
		{"not an object", `"signatures"`, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Signatures([]byte(tt.doc))
			switch {
			case tt.want < 0 && err == nil:
				t.Errorf("Signatures = %+v, want an error", got)
			case tt.want >= 0 && (err != nil || len(got) != tt.want):
				t.Errorf("Signatures = %+v, %v; want %d entries", got, err, tt.want)
			}
		})
	}
}

// TestSignaturesLegacyContract reads the signatures of an old contract signed
// by the reference.
func TestSignaturesLegacyContract(t *testing.T) {
	got, err := Signatures(readShared(t, "contracts", "dummy-service-schema.json"))
	if err != nil {
		t.Fatalf("Signatures: %v", err)
	}

	for by, cn := range map[Signer]string{
		SignerService: "data.service-data-0.byoda.net",
		SignerNetwork: "network.network-data.byoda.net",
	} {
		sig := got[by]
		raw, err := base64.StdEncoding.Strict().DecodeString(sig.Signature)
		if err != nil || len(raw) != 384 {
			t.Errorf("%s signature is not 384 bytes of base64: %v", by, err)
		}
		if _, err := time.Parse(TimestampLayout, sig.Timestamp); err != nil {
			t.Errorf("%s timestamp: %v", by, err)
		}
		if sig.HashAlgorithm != HashSHA256 || sig.Certificate != cn {
			t.Errorf("%s signature = %+v, want SHA256 by %s", by, sig, cn)
		}
	}
}

func checkVerify(t *testing.T, doc []byte, by Signer, cert *x509.Certificate, wantFail bool) {
	t.Helper()
	err := Verify(doc, by, cert)
	if wantFail && !errors.Is(err, ErrSignature) {
		t.Errorf("Verify %s signature = %v, want ErrSignature", by, err)
	}
	if !wantFail && err != nil {
		t.Errorf("Verify %s signature: %v", by, err)
	}
}

func checkCanonical(t *testing.T, doc []byte) {
	t.Helper()
	again, err := Canonical(doc)
	if err != nil {
		t.Fatalf("Canonical: %v", err)
	}
	if !bytes.Equal(again, doc) {
		t.Errorf("signed contract is not canonical: %s", firstDiff(doc, again))
	}
}

// checkSameContent checks that signing changed nothing but the signatures.
func checkSameContent(t *testing.T, doc, signed []byte) {
	t.Helper()
	var before, after map[string]any
	if err := json.Unmarshal(doc, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(signed, &after); err != nil {
		t.Fatal(err)
	}
	delete(before, "signatures")
	delete(after, "signatures")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("signing changed the contract beyond its signatures")
	}
}

// checkSignatures checks the certificate name and timestamp of each entry.
func checkSignatures(t *testing.T, doc []byte, want map[Signer][2]string) {
	t.Helper()
	got, err := Signatures(doc)
	if err != nil {
		t.Fatalf("Signatures: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("Signatures = %+v, want entries for %v", got, want)
	}
	for by, w := range want {
		sig := got[by]
		if sig.Certificate != w[0] || sig.Timestamp != w[1] || sig.HashAlgorithm != HashSHA256 {
			t.Errorf("%s signature = %+v, want SHA256 by %s at %s", by, sig, w[0], w[1])
		}
	}
}

func signatureOf(t *testing.T, doc []byte, by Signer) Signature {
	t.Helper()
	sigs, err := Signatures(doc)
	if err != nil {
		t.Fatal(err)
	}
	return sigs[by]
}

// signTwice signs doc as service and then as network, both with key.
func signTwice(t *testing.T, doc []byte, key crypto.Signer) []byte {
	t.Helper()
	once, err := Sign(doc, SignerService, key, serviceCN, serviceTime)
	if err != nil {
		t.Fatalf("Sign as service: %v", err)
	}
	twice, err := Sign(once, SignerNetwork, key, networkCN, networkTime)
	if err != nil {
		t.Fatalf("Sign as network: %v", err)
	}
	return twice
}

// flipSignature returns the base64 signature sig with one bit of its middle
// byte flipped.
func flipSignature(t *testing.T, sig string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x10
	return base64.StdEncoding.EncodeToString(raw)
}

// setPaddingBit returns the base64 signature sig with a bit set that decoders
// may ignore: a 256-byte signature ends in two characters and "==", and the
// second of them carries four unused bits.
func setPaddingBit(t *testing.T, sig string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if !strings.HasSuffix(sig, "==") {
		t.Fatalf("signature %q does not end in ==", sig)
	}
	last := len(sig) - 3
	c := alphabet[strings.IndexByte(alphabet, sig[last])^1]
	return sig[:last] + string(c) + "=="
}

// testKey reads the throwaway RSA key that testdata/gen_golden.py made.
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, "test-only-rsa2048-key.pem"))
	if block == nil {
		t.Fatal("no PEM block in the test key file")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parsing the test key: %v", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("test key is a %T", key)
	}
	return rsaKey
}

// testCert returns a self-signed certificate for key with common name cn.
func testCert(t *testing.T, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("creating test certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing test certificate: %v", err)
	}
	return cert
}
