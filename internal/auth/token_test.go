package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSAKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSign(t testing.TB, key crypto.Signer, c Claims) string {
	t.Helper()
	tok, err := Sign(key, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

// decodeSegment returns the JSON object in part i of a compact JWS.
func decodeSegment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignVerifyRoundTrip(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	accountID, memberID := uuid.New(), uuid.New()
	const sid = 4294929430

	keys := []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"P-256", newECKey(t, elliptic.P256()), "ES256"},
		{"P-384", newECKey(t, elliptic.P384()), "ES384"},
		{"RSA-2048", newRSAKey(t, 2048), "RS256"},
	}
	tokens := []struct {
		name   string
		claims Claims
		want   Expect
	}{
		{"account", is.AccountClaims(accountID, testNow), is.ExpectAccount(accountID)},
		{"member", is.MemberClaims(memberID, sid, testNow), is.ExpectMember(memberID, sid)},
		{"service", is.ServiceClaims(memberID, sid, testNow), Expect{
			Issuer:    Identity{Member, memberID},
			Audience:  "urn:network-byoda.net:service-4294929430",
			Scope:     "urn: 4294929430.service-4294929430.byoda.net",
			ServiceID: sid,
		}},
	}

	for _, k := range keys {
		for _, tc := range tokens {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				tok := mustSign(t, k.key, tc.claims)
				if alg := decodeSegment(t, tok, 0)["alg"]; alg != k.alg {
					t.Errorf("alg = %v, want %s", alg, k.alg)
				}

				want := tc.want
				want.Now = testNow.Add(time.Hour)
				got, err := Verify(tok, k.key.Public(), want)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !sameClaims(*got, tc.claims) {
					t.Errorf("claims = %+v, want %+v", *got, tc.claims)
				}
			})
		}
	}
}

func TestClaimsWireFormat(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	key := newECKey(t, elliptic.P256())
	accountID := uuid.MustParse("3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11")
	memberID := uuid.MustParse("aa1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a22")

	acct := decodeSegment(t, mustSign(t, key, is.AccountClaims(accountID, testNow)), 1)
	member := decodeSegment(t, mustSign(t, key, is.MemberClaims(memberID, 7, testNow)), 1)

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"account iss", acct["iss"], "urn: account_id-3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11"},
		{"account aud", acct["aud"], []any{"urn: network-byoda.net"}},
		{"account scope", acct["scope"],
			"urn: 3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11.accounts.byoda.net"},
		{"account service_id", acct["service_id"], nil},
		{"account exp", acct["exp"], float64(testNow.Add(DefaultLifetime).Unix())},
		{"account iat", acct["iat"], float64(testNow.Unix())},
		{"account nbf", acct["nbf"], float64(testNow.Unix())},
		{"member iss", member["iss"], "urn: member_id-aa1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a22"},
		{"member scope", member["scope"],
			"urn: aa1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a22.members-7.byoda.net"},
		{"member service_id", member["service_id"], float64(7)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := json.Marshal(tc.got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Errorf("got %s, want %s", g, w)
			}
		})
	}

	if _, err := uuid.Parse(acct["jti"].(string)); err != nil {
		t.Errorf("jti %v is not a UUID", acct["jti"])
	}
}

func TestIssuerLifetime(t *testing.T) {
	is := Issuer{Network: "byoda.net", Lifetime: 15 * time.Second}
	c := is.AccountClaims(uuid.New(), testNow.Add(300*time.Millisecond))
	if !c.IssuedAt.Equal(testNow) || !c.ExpiresAt.Equal(testNow.Add(15*time.Second)) {
		t.Errorf("iat %v exp %v, want %v and 15s later", c.IssuedAt, c.ExpiresAt, testNow)
	}
}

func sameClaims(a, b Claims) bool {
	return a.Issuer == b.Issuer && a.Audience == b.Audience && a.Scope == b.Scope &&
		a.ServiceID == b.ServiceID && a.ID == b.ID && a.IssuedAt.Equal(b.IssuedAt) &&
		a.NotBefore.Equal(b.NotBefore) && a.ExpiresAt.Equal(b.ExpiresAt)
}

// legacySign signs wire claims with the jwt library directly, to make tokens
// that Sign refuses to make.
func legacySign(t *testing.T, m jwt.SigningMethod, w wireClaims, key any) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, w).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyRejects(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	ecKey := newECKey(t, elliptic.P256())
	otherEC := newECKey(t, elliptic.P256())
	p384 := newECKey(t, elliptic.P384())
	rsaKey := newRSAKey(t, 2048)
	accountID, memberID := uuid.New(), uuid.New()

	acct := is.AccountClaims(accountID, testNow)
	wantAcct := is.ExpectAccount(accountID)
	member := is.MemberClaims(memberID, 3, testNow)

	der, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	expired := acct
	expired.IssuedAt, expired.NotBefore = testNow.Add(-9*time.Hour), testNow.Add(-9*time.Hour)
	expired.ExpiresAt = testNow.Add(-time.Minute)

	early := acct
	early.NotBefore = testNow.Add(time.Minute)
	early.ExpiresAt = testNow.Add(time.Hour)

	futureIAT := acct
	futureIAT.IssuedAt, futureIAT.NotBefore = testNow.Add(time.Hour), testNow.Add(time.Hour)
	futureIAT.ExpiresAt = testNow.Add(2 * time.Hour)

	otherScope := acct
	otherScope.Scope = AccountScope(uuid.New(), "byoda.net")

	longLived := acct.wire()
	longLived.ExpiresAt = jwt.NewNumericDate(testNow.Add(30 * 24 * time.Hour))

	noExp := acct.wire()
	noExp.ExpiresAt = nil

	twoAud := acct.wire()
	twoAud.Audience = jwt.ClaimStrings{PodAudience("byoda.net"), "urn: network-other.net"}

	memberNoSID := member.wire()
	memberNoSID.ServiceID = nil

	accountSID := acct.wire()
	sid := uint32(3)
	accountSID.ServiceID = &sid

	upperIss := acct.wire()
	upperIss.Issuer = "urn: account_id-" + strings.ToUpper(accountID.String())

	good := mustSign(t, ecKey, acct)
	parts := strings.Split(good, ".")
	tamperedClaims := otherScope.wire()
	tamperedClaims.Scope = wantAcct.Scope + "x"
	tamperedPayload, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) +
		"." + parts[2]

	tests := []struct {
		name    string
		token   string
		pub     crypto.PublicKey
		want    Expect
		wantErr error
	}{
		{"expired", mustSign(t, ecKey, expired), &ecKey.PublicKey, wantAcct, ErrExpired},
		{"not yet valid", mustSign(t, ecKey, early), &ecKey.PublicKey, wantAcct, ErrNotYetValid},
		{"issued in the future", mustSign(t, ecKey, futureIAT), &ecKey.PublicKey, wantAcct,
			ErrNotYetValid},
		{"wrong audience", mustSign(t, ecKey, is.ServiceClaims(memberID, 3, testNow)),
			&ecKey.PublicKey, is.ExpectMember(memberID, 3), ErrWrongAudience},
		{"other network", mustSign(t, ecKey, acct), &ecKey.PublicKey,
			Issuer{Network: "example.org"}.ExpectAccount(accountID), ErrWrongAudience},
		{"wrong issuer", mustSign(t, ecKey, acct), &ecKey.PublicKey,
			is.ExpectAccount(uuid.New()), ErrWrongIssuer},
		{"member token for account", mustSign(t, ecKey, member), &ecKey.PublicKey,
			wantAcct, ErrWrongIssuer},
		{"wrong scope", mustSign(t, ecKey, otherScope), &ecKey.PublicKey, wantAcct,
			ErrWrongScope},
		{"wrong service", mustSign(t, ecKey, member), &ecKey.PublicKey,
			func() Expect { e := is.ExpectMember(memberID, 3); e.ServiceID = 4; return e }(),
			ErrWrongScope},
		{"signed by another key", mustSign(t, otherEC, acct), &ecKey.PublicKey, wantAcct,
			ErrBadSignature},
		{"tampered payload", tampered, &ecKey.PublicKey, wantAcct, ErrBadSignature},
		{"alg none", legacySign(t, jwt.SigningMethodNone, acct.wire(),
			jwt.UnsafeAllowNoneSignatureType), &ecKey.PublicKey, wantAcct, ErrBadSignature},
		{"HS256 keyed with public key DER", legacySign(t, jwt.SigningMethodHS256, acct.wire(),
			der), &ecKey.PublicKey, wantAcct, ErrBadSignature},
		{"HS256 keyed with public key PEM", legacySign(t, jwt.SigningMethodHS256, acct.wire(),
			pemBytes), &ecKey.PublicKey, wantAcct, ErrBadSignature},
		{"RS256 token on EC key", mustSign(t, rsaKey, acct), &ecKey.PublicKey, wantAcct,
			ErrBadSignature},
		{"ES256 token on RSA key", mustSign(t, ecKey, acct), &rsaKey.PublicKey, wantAcct,
			ErrBadSignature},
		{"ES384 token on P-256 key", mustSign(t, p384, acct), &ecKey.PublicKey, wantAcct,
			ErrBadSignature},
		{"lifetime too long", legacySign(t, jwt.SigningMethodES256, longLived, ecKey),
			&ecKey.PublicKey, wantAcct, ErrLifetimeTooLong},
		{"no exp", legacySign(t, jwt.SigningMethodES256, noExp, ecKey), &ecKey.PublicKey,
			wantAcct, ErrMalformed},
		{"two audiences", legacySign(t, jwt.SigningMethodES256, twoAud, ecKey),
			&ecKey.PublicKey, wantAcct, ErrMalformed},
		{"member token without service_id", legacySign(t, jwt.SigningMethodES256,
			memberNoSID, ecKey), &ecKey.PublicKey, is.ExpectMember(memberID, 3), ErrMalformed},
		{"account token with service_id", legacySign(t, jwt.SigningMethodES256,
			accountSID, ecKey), &ecKey.PublicKey, wantAcct, ErrMalformed},
		{"upper-case issuer id", legacySign(t, jwt.SigningMethodES256, upperIss, ecKey),
			&ecKey.PublicKey, wantAcct, ErrMalformed},
		{"empty", "", &ecKey.PublicKey, wantAcct, ErrMalformed},
		{"garbage", "not a token", &ecKey.PublicKey, wantAcct, ErrMalformed},
		{"three dots of garbage", "a.b.c", &ecKey.PublicKey, wantAcct, ErrMalformed},
		{"four parts", good + ".x", &ecKey.PublicKey, wantAcct, ErrMalformed},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], &ecKey.PublicKey,
			wantAcct, ErrMalformed},
		{"huge", strings.Repeat("A", 10000) + "." + parts[1] + "." + parts[2],
			&ecKey.PublicKey, wantAcct, ErrMalformed},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Now = testNow
			got, err := Verify(tc.token, tc.pub, tc.want)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %+v, %v; want %v", got, err, tc.wantErr)
			}
			assertNoTokenText(t, err, tc.token)
		})
	}
}

// assertNoTokenText fails if err quotes the token or any part of it.
func assertNoTokenText(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error %q quotes the token", msg)
		}
	}
}

func TestVerifyLeeway(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	key := newECKey(t, elliptic.P256())
	id := uuid.New()

	justExpired := is.AccountClaims(id, testNow.Add(-DefaultLifetime-5*time.Second))
	nearlyValid := is.AccountClaims(id, testNow.Add(5*time.Second))
	maxLived := is.AccountClaims(id, testNow)
	maxLived.ExpiresAt = testNow.Add(MaxLifetime)

	for name, c := range map[string]Claims{
		"expired 5s ago": justExpired, "valid in 5s": nearlyValid, "max lifetime": maxLived,
	} {
		t.Run(name, func(t *testing.T) {
			want := is.ExpectAccount(id)
			want.Now = testNow
			if _, err := Verify(mustSign(t, key, c), &key.PublicKey, want); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyUnsupported(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	key := newECKey(t, elliptic.P256())
	id := uuid.New()
	tok := mustSign(t, key, is.AccountClaims(id, testNow))
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		pub     crypto.PublicKey
		want    Expect
		wantErr error
	}{
		{"ed25519 key", edPub, is.ExpectAccount(id), ErrUnsupportedKey},
		{"P-224 key", &newECKey(t, elliptic.P224()).PublicKey, is.ExpectAccount(id),
			ErrUnsupportedKey},
		{"RSA-1024 key", &newRSAKey(t, 1024).PublicKey, is.ExpectAccount(id),
			ErrUnsupportedKey},
		{"no expectation", &key.PublicKey, Expect{}, nil},
		{"no scope", &key.PublicKey,
			Expect{Issuer: Identity{Account, id}, Audience: PodAudience("byoda.net")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Now = testNow
			_, err := Verify(tok, tc.pub, tc.want)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("Verify error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	ecKey := newECKey(t, elliptic.P256())
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := is.AccountClaims(uuid.New(), testNow)

	tooLong := good
	tooLong.ExpiresAt = good.IssuedAt.Add(MaxLifetime + time.Second)
	backwards := good
	backwards.ExpiresAt = good.NotBefore
	noIssuer := good
	noIssuer.Issuer = Identity{}
	nilID := good
	nilID.Issuer.ID = uuid.Nil
	noAudience := good
	noAudience.Audience = ""
	noScope := good
	noScope.Scope = ""
	noIAT := good
	noIAT.IssuedAt = time.Time{}

	tests := []struct {
		name   string
		key    crypto.Signer
		claims Claims
	}{
		{"ed25519 key", edKey, good},
		{"P-224 key", newECKey(t, elliptic.P224()), good},
		{"RSA-1024 key", newRSAKey(t, 1024), good},
		{"lifetime over the maximum", ecKey, tooLong},
		{"expires when it starts", ecKey, backwards},
		{"no issuer", ecKey, noIssuer},
		{"nil issuer id", ecKey, nilID},
		{"no audience", ecKey, noAudience},
		{"no scope", ecKey, noScope},
		{"no iat", ecKey, noIAT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := Sign(tc.key, tc.claims); err == nil {
				t.Errorf("Sign = %q, want an error", tok)
			}
		})
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	is := Issuer{Network: "byoda.net"}
	key := newECKey(t, elliptic.P256())
	accountID, memberID := uuid.New(), uuid.New()
	other := newECKey(t, elliptic.P256())

	tests := []struct {
		name    string
		token   string
		want    Identity
		wantErr error
	}{
		{"account", mustSign(t, key, is.AccountClaims(accountID, testNow)),
			Identity{Account, accountID}, nil},
		{"member", mustSign(t, key, is.MemberClaims(memberID, 9, testNow)),
			Identity{Member, memberID}, nil},
		// The signature is not checked: that is Verify's work.
		{"foreign signature", mustSign(t, other, is.AccountClaims(accountID, testNow)),
			Identity{Account, accountID}, nil},
		{"garbage", "x.y.z", Identity{}, ErrMalformed},
		{"empty", "", Identity{}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnverifiedIssuer(tc.token)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("UnverifiedIssuer = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseIdentity(t *testing.T) {
	id := uuid.MustParse("3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11")
	tests := []struct {
		iss  string
		want Identity
		ok   bool
	}{
		{"urn: account_id-3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11", Identity{Account, id}, true},
		{"urn: member_id-3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11", Identity{Member, id}, true},
		{"urn:account_id-3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11", Identity{}, false},
		{"urn: account_id-3F1E6E8C-7A6E-4A4B-9D0E-7B4B0F6C2A11", Identity{}, false},
		{"urn: account_id-3f1e6e8c7a6e4a4b9d0e7b4b0f6c2a11", Identity{}, false},
		{"urn: account_id-00000000-0000-0000-0000-000000000000", Identity{}, false},
		{"urn: service_id-3f1e6e8c-7a6e-4a4b-9d0e-7b4b0f6c2a11", Identity{}, false},
		{"", Identity{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.iss, func(t *testing.T) {
			got, err := ParseIdentity(tc.iss)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseIdentity = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
			if tc.ok && got.String() != tc.iss {
				t.Errorf("String = %q, want %q", got.String(), tc.iss)
			}
		})
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	is := Issuer{Network: "byoda.net"}
	key := newECKey(b, elliptic.P256())
	id := uuid.New()
	tok := mustSign(b, key, is.AccountClaims(id, time.Now()))
	want := is.ExpectAccount(id)

	for b.Loop() {
		if _, err := Verify(tok, &key.PublicKey, want); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignES256(b *testing.B) {
	is := Issuer{Network: "byoda.net"}
	key := newECKey(b, elliptic.P256())
	c := is.AccountClaims(uuid.New(), time.Now())

	for b.Loop() {
		if _, err := Sign(key, c); err != nil {
			b.Fatal(err)
		}
	}
}
