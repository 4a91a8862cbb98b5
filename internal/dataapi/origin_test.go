package dataapi

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"
)

func rawFilter(t *testing.T, s string) map[string]map[string]json.RawMessage {
	t.Helper()
	var f map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPlaintextVectors checks the signature plaintext against the vectors
// of the reference.
func TestPlaintextVectors(t *testing.T) {
	const ts = "2024-05-01T12:34:56.123456+00:00"
	tests := []struct {
		name string
		q    OriginQuery
		want string
	}{
		{"relations, no filter", OriginQuery{ServiceID: 4294929430,
			Relations: []string{"friend", "family"}, Timestamp: ts,
			OriginMemberID: "b1c2d3e4-0000-4000-8000-000000000001"},
			"4294929430friend family2024-05-01T12:34:56.123456+00:00" +
				"b1c2d3e4-0000-4000-8000-000000000001"},
		{"filter, no relations", OriginQuery{ServiceID: 4294929430, Timestamp: ts,
			OriginMemberID: "b1c2", Filter: rawFilter(t, `{"asset_id":{"eq":"x"}}`)},
			`4294929430b1c2,{asset_id:{eq:"x"},4294929430b1c2,{asset_id:{eq:"x"}}`},
		{"two fields, int and float", OriginQuery{ServiceID: 16384,
			Relations: []string{"friend"}, Timestamp: ts, OriginMemberID: "m",
			Filter: rawFilter(t, `{"a":{"eq":1,"ne":2.5},"b":{"glob":"x*"}}`)},
			`16384friend2024-05-01T12:34:56.123456+00:00m,{a:{eq:"1"},{ne:"2.5"},` +
				`16384friend2024-05-01T12:34:56.123456+00:00m,{a:{eq:"1"},{ne:"2.5"}}` +
				`b:{glob:"x*"},16384friend2024-05-01T12:34:56.123456+00:00m,{a:{eq:"1"},` +
				`{ne:"2.5"},16384friend2024-05-01T12:34:56.123456+00:00m,{a:{eq:"1"},` +
				`{ne:"2.5"}}b:{glob:"x*"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Plaintext()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("plaintext\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestPythonRendering(t *testing.T) {
	tests := map[string]string{
		`1`: "1", `-3`: "-3", `1.0`: "1.0", `2.5`: "2.5", `1e16`: "1e+16",
		`0.0001`: "0.0001", `0.00001`: "1e-05", `123456789.5`: "123456789.5",
		`true`: "True", `false`: "False", `"x y"`: "x y", `1.5e-7`: "1.5e-07",
	}
	for in, want := range tests {
		got, err := pythonStr(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("pythonStr(%s) = %q, %v; want %q", in, got, err, want)
		}
	}

	ts := time.Date(2024, 5, 1, 12, 34, 56, 123456000, time.UTC)
	if got := PythonISOTime(ts); got != "2024-05-01T12:34:56.123456+00:00" {
		t.Errorf("PythonISOTime = %s", got)
	}
	if got := PythonISOTime(ts.Truncate(time.Second)); got != "2024-05-01T12:34:56+00:00" {
		t.Errorf("PythonISOTime without microseconds = %s", got)
	}
}

func TestOriginSignature(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:   pkix.Name{CommonName: "x"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)

	q := OriginQuery{ServiceID: 7, Relations: []string{"friend"},
		Timestamp: PythonISOTime(time.Now()), OriginMemberID: "m",
		Filter: rawFilter(t, `{"a":{"eq":1}}`)}
	sig, err := SignOrigin(q, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyOrigin(q, sig, cert); err != nil {
		t.Fatalf("VerifyOrigin: %v", err)
	}

	changed := q
	changed.Filter = rawFilter(t, `{"a":{"eq":1.0}}`)
	if err := VerifyOrigin(changed, sig, cert); !errors.Is(err, ErrOriginSignature) {
		t.Fatalf("a filter of 1.0 instead of 1 verified: %v", err)
	}
	changed = q
	changed.Relations = []string{"family"}
	if err := VerifyOrigin(changed, sig, cert); !errors.Is(err, ErrOriginSignature) {
		t.Fatalf("other relations verified: %v", err)
	}
	if err := VerifyOrigin(q, "!!", cert); !errors.Is(err, ErrOriginSignature) {
		t.Fatalf("garbage signature: %v", err)
	}
}
