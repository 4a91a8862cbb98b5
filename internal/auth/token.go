package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

const (
	// DefaultLifetime is how long a token from the login endpoint stays valid.
	DefaultLifetime = 8 * time.Hour

	// MaxLifetime is the furthest ahead a token's expiry may lie. Verify
	// rejects tokens beyond it even when we signed them, and Sign refuses to
	// make them.
	MaxLifetime = 7 * 24 * time.Hour

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	Leeway = 10 * time.Second

	// maxTokenLen bounds the work spent on a token before its signature is
	// known to be good; real tokens are well under 2 KiB.
	maxTokenLen = 8 << 10
)

// Errors returned by Verify and UnverifiedIssuer. The package documentation
// says which HTTP status each stands for.
var (
	ErrMalformed       = errors.New("malformed token")
	ErrBadSignature    = errors.New("token signature or algorithm not valid for the key")
	ErrExpired         = errors.New("token expired")
	ErrNotYetValid     = errors.New("token not yet valid")
	ErrLifetimeTooLong = errors.New("token expiry too far in the future")
	ErrWrongIssuer     = errors.New("token issued by someone else")
	ErrWrongAudience   = errors.New("token meant for another audience")
	ErrWrongScope      = errors.New("token scope does not cover this request")
)

// ErrUnsupportedKey is returned by Sign and Verify for keys other than
// ECDSA P-256 or P-384 and RSA of at least 2048 bits.
var ErrUnsupportedKey = errors.New("unsupported token key")

// Claims are the claims of a Byoda token.
type Claims struct {
	Issuer   Identity
	Audience string // the one element of the "aud" list
	Scope    string

	// ServiceID is the service of a member-issued token; it is zero for
	// account tokens, which carry no service_id claim.
	ServiceID uint32

	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	ID        string // "jti", a random UUID
}

// Issuer builds the claims of the tokens one pod issues, and the
// expectations it checks them against.
type Issuer struct {
	// Network is the network's domain, such as "byoda.net".
	Network string

	// Lifetime is how long new tokens stay valid; zero means DefaultLifetime.
	Lifetime time.Duration
}

// AccountClaims returns the claims of an account token, valid from now.
func (is Issuer) AccountClaims(accountID uuid.UUID, now time.Time) Claims {
	return is.claims(Identity{Account, accountID}, PodAudience(is.Network),
		AccountScope(accountID, is.Network), 0, now)
}

// MemberClaims returns the claims of a member token for the pod's own
// membership of a service, valid from now.
func (is Issuer) MemberClaims(memberID uuid.UUID, serviceID uint32, now time.Time) Claims {
	return is.claims(Identity{Member, memberID}, PodAudience(is.Network),
		MemberScope(memberID, serviceID, is.Network), serviceID, now)
}

// ServiceClaims returns the claims of a token the member presents to the
// server of its service, valid from now.
func (is Issuer) ServiceClaims(memberID uuid.UUID, serviceID uint32, now time.Time) Claims {
	return is.claims(Identity{Member, memberID}, ServiceAudience(is.Network, serviceID),
		ServiceScope(serviceID, is.Network), serviceID, now)
}

func (is Issuer) claims(iss Identity, aud, scope string, sid uint32, now time.Time) Claims {
	lifetime := is.Lifetime
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}

	// Whole seconds, as on the wire, so a verified token equals its claims.
	now = now.Truncate(time.Second)
	return Claims{
		Issuer:    iss,
		Audience:  aud,
		Scope:     scope,
		ServiceID: sid,
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(lifetime),
		ID:        uuid.NewString(),
	}
}

// ExpectAccount returns what Verify must find in a token of our account.
func (is Issuer) ExpectAccount(accountID uuid.UUID) Expect {
	return Expect{
		Issuer:   Identity{Account, accountID},
		Audience: PodAudience(is.Network),
		Scope:    AccountScope(accountID, is.Network),
	}
}

// ExpectMember returns what Verify must find in a token of our membership
// of a service.
func (is Issuer) ExpectMember(memberID uuid.UUID, serviceID uint32) Expect {
	return Expect{
		Issuer:    Identity{Member, memberID},
		Audience:  PodAudience(is.Network),
		Scope:     MemberScope(memberID, serviceID, is.Network),
		ServiceID: serviceID,
	}
}

// wireClaims is the JSON form of Claims.
type wireClaims struct {
	jwt.RegisteredClaims
	Scope     string  `json:"scope"`
	ServiceID *uint32 `json:"service_id,omitempty"`
}

func (c Claims) wire() wireClaims {
	w := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer.String(),
			Audience:  jwt.ClaimStrings{c.Audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			NotBefore: jwt.NewNumericDate(c.NotBefore),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.ID,
		},
		Scope: c.Scope,
	}
	if c.Issuer.Type == Member {
		sid := c.ServiceID
		w.ServiceID = &sid
	}
	return w
}

// check refuses claims that Verify would reject whatever the clock says.
func (c Claims) check() error {
	switch {
	case !c.Issuer.valid():
		return errors.New("claims have no valid issuer")
	case c.Audience == "" || c.Scope == "":
		return errors.New("claims lack audience or scope")
	case c.IssuedAt.IsZero() || c.NotBefore.IsZero():
		return errors.New("claims lack iat or nbf")
	case !c.ExpiresAt.After(c.NotBefore):
		return errors.New("claims expire before they become valid")
	case c.ExpiresAt.Sub(c.IssuedAt) > MaxLifetime:
		return fmt.Errorf("claims valid for more than %v", MaxLifetime)
	}
	return nil
}

// algorithm is the JWS algorithm that goes with a public key.
type algorithm struct {
	method jwt.SigningMethod
	hash   crypto.Hash
	ecSize int // bytes per ECDSA signature half; 0 for RSA
}

func algorithmFor(pub crypto.PublicKey) (algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return algorithm{jwt.SigningMethodES256, crypto.SHA256, 32}, nil
		case elliptic.P384():
			return algorithm{jwt.SigningMethodES384, crypto.SHA384, 48}, nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return algorithm{jwt.SigningMethodRS256, crypto.SHA256, 0}, nil
		}
	}
	return algorithm{}, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// Sign returns the claims as a compact JWS signed by key: ES256 for a P-256
// key, ES384 for P-384 and RS256 for RSA. Any crypto.Signer works, so the
// key may live outside the process.
func Sign(key crypto.Signer, c Claims) (string, error) {
	alg, err := algorithmFor(key.Public())
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	if err := c.check(); err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}

	signed, err := jwt.NewWithClaims(alg.method, c.wire()).SigningString()
	if err != nil {
		return "", fmt.Errorf("encoding token: %w", err)
	}

	h := alg.hash.New()
	h.Write([]byte(signed))
	sig, err := key.Sign(rand.Reader, h.Sum(nil), alg.hash)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}

	if alg.ecSize > 0 {
		if sig, err = rawECDSA(sig, alg.ecSize); err != nil {
			return "", fmt.Errorf("signing token: %w", err)
		}
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// rawECDSA converts an ASN.1 ECDSA signature, as crypto.Signer returns it,
// into the fixed-width r||s form JWS requires (RFC 7518, section 3.4).
func rawECDSA(der []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) > 0 {
		return nil, errors.New("signer returned a malformed ECDSA signature")
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("signer returned an ECDSA signature out of range")
	}

	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// Expect is what Verify requires of a token.
type Expect struct {
	Issuer   Identity
	Audience string
	Scope    string

	// ServiceID must match the service_id claim of member-issued tokens.
	ServiceID uint32

	// Now is the time to check exp, nbf and iat against; zero means the
	// current time.
	Now time.Time
}

// Verify checks a token's signature with pub, which must be the key that
// goes with want.Issuer, and its claims against want. The algorithm must be
// the one that matches the key's type, so "none", HMAC and RS256-on-EC
// tokens fail with ErrBadSignature. The expiry is required, may lie at most
// MaxLifetime ahead, and is checked, like nbf and iat, with Leeway.
func Verify(token string, pub crypto.PublicKey, want Expect) (*Claims, error) {
	alg, err := algorithmFor(pub)
	if err != nil {
		return nil, fmt.Errorf("verifying token: %w", err)
	}
	if !want.Issuer.valid() || want.Audience == "" || want.Scope == "" {
		return nil, errors.New("verifying token: incomplete expectation")
	}
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: too long", ErrMalformed)
	}

	now := want.Now
	if now.IsZero() {
		now = time.Now()
	}

	var w wireClaims
	if err := parse(token, &w, alg, pub, now); err != nil {
		return nil, err
	}
	if w.ExpiresAt.Time.After(now.Add(MaxLifetime + Leeway)) {
		return nil, ErrLifetimeTooLong
	}

	c, err := fromWire(w)
	if err != nil {
		return nil, err
	}
	if err := c.match(want); err != nil {
		return nil, err
	}
	return c, nil
}

// parse checks the signature and the time claims and decodes the claims
// into w.
func parse(token string, w *wireClaims, alg algorithm, pub crypto.PublicKey, now time.Time) error {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{alg.method.Alg()}),
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)

	// The key is handed out only for the algorithm chosen from its type,
	// even though WithValidMethods already checked the header.
	keyFor := func(t *jwt.Token) (any, error) {
		if t.Method.Alg() != alg.method.Alg() {
			return nil, errors.New("algorithm does not match the key")
		}
		return pub, nil
	}

	_, err := p.ParseWithClaims(token, w, keyFor)
	return classify(err)
}

// classify turns the parser's error into one of ours. The parser's own
// text is dropped: some of it quotes pieces of the token.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid),
		errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet),
		errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	}
	return fmt.Errorf("%w: invalid claims", ErrMalformed)
}

func fromWire(w wireClaims) (*Claims, error) {
	iss, err := ParseIdentity(w.Issuer)
	if err != nil {
		return nil, err
	}
	if len(w.Audience) != 1 {
		return nil, fmt.Errorf("%w: audience must have one element", ErrMalformed)
	}
	if (iss.Type == Member) != (w.ServiceID != nil) {
		return nil, fmt.Errorf("%w: service_id goes with member tokens only", ErrMalformed)
	}

	c := &Claims{
		Issuer:    iss,
		Audience:  w.Audience[0],
		Scope:     w.Scope,
		ExpiresAt: w.ExpiresAt.UTC(),
		ID:        w.ID,
	}
	if w.ServiceID != nil {
		c.ServiceID = *w.ServiceID
	}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.UTC()
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.UTC()
	}
	return c, nil
}

func (c *Claims) match(want Expect) error {
	switch {
	case c.Issuer != want.Issuer:
		return ErrWrongIssuer
	case c.Audience != want.Audience:
		return ErrWrongAudience
	case c.Scope != want.Scope:
		return ErrWrongScope
	case c.Issuer.Type == Member && c.ServiceID != want.ServiceID:
		return fmt.Errorf("%w: token is for another service", ErrWrongScope)
	}
	return nil
}

// UnverifiedIssuer returns the issuer a token claims, without checking
// anything else, so the caller can pick the key to verify it with. Nothing
// else about the token may be trusted until Verify has passed.
func UnverifiedIssuer(token string) (Identity, error) {
	if len(token) > maxTokenLen {
		return Identity{}, fmt.Errorf("%w: too long", ErrMalformed)
	}

	var w wireClaims
	p := jwt.NewParser(jwt.WithStrictDecoding())
	if _, _, err := p.ParseUnverified(token, &w); err != nil {
		return Identity{}, ErrMalformed
	}
	return ParseIdentity(w.Issuer)
}
