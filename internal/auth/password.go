package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrBadHash is returned by ParsePassword for an ACCOUNT_SECRET that looks
// like an argon2 hash but is not one this package accepts.
var ErrBadHash = errors.New("invalid argon2 password hash")

// argonPrefix marks a secret as a hash. A plaintext password that happens
// to start with it is refused rather than guessed at.
const argonPrefix = "$argon2"

// Limits on hashes read from ACCOUNT_SECRET, so that a crafted secret cannot
// make every login attempt stall the pod or exhaust its memory.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 10
	maxThreads   = 16
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// argonParams are the cost settings of an argon2id hash.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	saltLen int
	keyLen  int
}

// defaultParams are the second recommended setting of RFC 9106, section 4:
// 64 MiB, three passes, four lanes; about 0.1 s on one modern core, and
// bearable on the small machines a pod runs on.
var defaultParams = argonParams{memory: 64 << 10, time: 3, threads: 4, saltLen: 16, keyLen: 32}

// Password is the owner's login secret, ACCOUNT_SECRET, kept either as the
// SHA-256 digest of a plaintext password or as an argon2id hash. The zero
// Password accepts nothing.
type Password struct {
	plain *[sha256.Size]byte
	hash  *argonHash
}

type argonHash struct {
	params argonParams
	salt   []byte
	key    []byte
}

// ParsePassword reads an ACCOUNT_SECRET. One that starts with "$argon2"
// must be an argon2id hash in the PHC string format,
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> with unpadded
// base64, within the package's cost limits; anything else is a plaintext
// password.
func ParsePassword(secret string) (Password, error) {
	if secret == "" {
		return Password{}, errors.New("empty password")
	}

	if !strings.HasPrefix(secret, argonPrefix) {
		digest := sha256.Sum256([]byte(secret))
		return Password{plain: &digest}, nil
	}

	h, err := parseArgon2id(secret)
	if err != nil {
		return Password{}, err
	}
	return Password{hash: h}, nil
}

// parseArgon2id parses a PHC string. Its errors never quote the string.
func parseArgon2id(s string) (*argonHash, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=..,t=..,p=..$salt$hash", ErrBadHash)
	}
	if f[1] != "argon2id" {
		return nil, fmt.Errorf("%w: only argon2id is supported", ErrBadHash)
	}
	if f[2] != "v=19" {
		return nil, fmt.Errorf("%w: only version 19 is supported", ErrBadHash)
	}

	p, err := parseArgonParams(f[3])
	if err != nil {
		return nil, err
	}

	salt, err := base64.RawStdEncoding.Strict().DecodeString(f[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return nil, fmt.Errorf("%w: salt must be %d to %d bytes of unpadded base64",
			ErrBadHash, minSaltLen, maxSaltLen)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(f[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return nil, fmt.Errorf("%w: hash must be %d to %d bytes of unpadded base64",
			ErrBadHash, minKeyLen, maxKeyLen)
	}

	p.saltLen, p.keyLen = len(salt), len(key)
	return &argonHash{params: p, salt: salt, key: key}, nil
}

// parseArgonParams parses "m=<KiB>,t=<passes>,p=<lanes>" in that order.
func parseArgonParams(s string) (argonParams, error) {
	var vals [3]uint64
	parts := strings.Split(s, ",")
	if len(parts) != len(vals) {
		return argonParams{}, fmt.Errorf("%w: want parameters m=..,t=..,p=..", ErrBadHash)
	}
	for i, name := range []string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(parts[i], name)
		v, err := strconv.ParseUint(digits, 10, 32)
		if !ok || err != nil {
			return argonParams{}, fmt.Errorf("%w: want parameters m=..,t=..,p=..", ErrBadHash)
		}
		vals[i] = v
	}

	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p < 1 || p > maxThreads:
		return argonParams{}, fmt.Errorf("%w: p must be 1 to %d", ErrBadHash, maxThreads)
	case t < 1 || t > maxTime:
		return argonParams{}, fmt.Errorf("%w: t must be 1 to %d", ErrBadHash, maxTime)
	case m < 8*p || m > maxMemoryKiB:
		return argonParams{}, fmt.Errorf("%w: m must be 8*p to %d KiB", ErrBadHash, maxMemoryKiB)
	}
	return argonParams{memory: uint32(m), time: uint32(t), threads: uint8(p)}, nil
}

// Check reports whether given is the password, in time that does not
// depend on how much of it is right. Plaintext secrets are compared by
// their SHA-256 digests so that the length does not show either. The
// stored hash string is not accepted as the password.
func (p Password) Check(given string) bool {
	switch {
	case given == "":
		return false
	case p.plain != nil:
		digest := sha256.Sum256([]byte(given))
		return subtle.ConstantTimeCompare(digest[:], p.plain[:]) == 1
	case p.hash != nil:
		key := p.hash.params.derive(given, p.hash.salt)
		return subtle.ConstantTimeCompare(key, p.hash.key) == 1
	}
	return false
}

// String describes the kind of secret without revealing it, so that a
// Password printed by mistake leaks nothing.
func (p Password) String() string {
	switch {
	case p.plain != nil:
		return "plaintext password"
	case p.hash != nil:
		return "argon2id password hash"
	}
	return "no password"
}

// GoString is String, for %#v.
func (p Password) GoString() string { return p.String() }

func (ap argonParams) derive(password string, salt []byte) []byte {
	return argon2.IDKey([]byte(password), salt, ap.time, ap.memory, ap.threads,
		uint32(ap.keyLen))
}

// HashPassword returns an argon2id hash of plain in the PHC string format,
// for use as ACCOUNT_SECRET, with RFC 9106's second recommended parameters
// (m=65536 KiB, t=3, p=4), a 16-byte random salt and a 32-byte hash.
func HashPassword(plain string) (string, error) {
	return hashPassword(plain, defaultParams)
}

func hashPassword(plain string, ap argonParams) (string, error) {
	if plain == "" {
		return "", errors.New("hashing password: empty password")
	}

	salt := make([]byte, ap.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}

	key := ap.derive(plain, salt)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s",
		ap.memory, ap.time, ap.threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key)), nil
}
