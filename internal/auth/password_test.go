package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// cheapParams keep tests quick; HashPassword's own parameters are covered
// once in TestHashPasswordDefaults.
var cheapParams = argonParams{memory: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32}

// Vectors computed with the Argon2 reference implementation (libargon2,
// argon2id_hash_encoded and argon2id_hash_raw). The same library reproduces
// the argon2id tag of RFC 9106, section 5.3, but that vector uses a secret
// and associated data, which argon2.IDKey does not take, so it cannot be
// checked here directly.
var referenceHashes = []struct {
	password string
	phc      string
}{
	{"correct horse battery staple",
		"$argon2id$v=19$m=256,t=2,p=2$YnlvZGEtcG9kLXNhbHQtMQ$" +
			"UeZjsecz4BK1+3SncBF4cjgXqdE5NfEXbHg+y+CC1SI"},
	{"s3crét",
		"$argon2id$v=19$m=1024,t=3,p=4$MDEyMzQ1Njc4OWFiY2RlZg$" +
			"tf/gIxR9ARLpJkOL+tTkfl4nvbGHQRJ4lfnvD+RUGzc"},
}

func TestIDKeyReferenceVector(t *testing.T) {
	// Password 32 bytes of 0x01, salt 16 bytes of 0x02, t=3, m=32 KiB, p=4:
	// the inputs of RFC 9106's argon2id vector without its secret and data.
	want, _ := hex.DecodeString("03aab965c12001c9d7d0d2de33192c0494b684bb148196d73c1df1acaf6d0c2e")
	got := argon2.IDKey(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16), 3, 32, 4, 32)
	if !bytes.Equal(got, want) {
		t.Errorf("IDKey = %x, want %x", got, want)
	}
}

func TestPasswordReferenceHashes(t *testing.T) {
	for _, v := range referenceHashes {
		t.Run(v.password, func(t *testing.T) {
			p, err := ParsePassword(v.phc)
			if err != nil {
				t.Fatalf("ParsePassword: %v", err)
			}

			checks := []struct {
				given string
				want  bool
			}{
				{v.password, true},
				{v.password + " ", false},
				{strings.ToUpper(v.password), false},
				{"", false},
				{v.phc, false}, // the stored hash is not a password
			}
			for _, c := range checks {
				if got := p.Check(c.given); got != c.want {
					t.Errorf("Check(%q) = %v, want %v", c.given, got, c.want)
				}
			}
		})
	}
}

func TestPasswordPlaintext(t *testing.T) {
	p, err := ParsePassword("hunter2-but-longer")
	if err != nil {
		t.Fatal(err)
	}
	dollar, err := ParsePassword("$ecret$")
	if err != nil {
		t.Fatal(err)
	}
	hashed, err := hashPassword("hunter2-but-longer", cheapParams)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		p     Password
		given string
		want  bool
	}{
		{"right", p, "hunter2-but-longer", true},
		{"wrong", p, "hunter3-but-longer", false},
		{"prefix", p, "hunter2", false},
		{"longer", p, "hunter2-but-longerr", false},
		{"empty", p, "", false},
		{"hash of it", p, hashed, false},
		{"leading dollar right", dollar, "$ecret$", true},
		{"leading dollar wrong", dollar, "secret", false},
		{"zero password", Password{}, "", false},
		{"zero password with text", Password{}, "anything", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Check(tc.given); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	const plain = "pod owner's passphrase"
	h1, err := hashPassword(plain, cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := hashPassword(plain, cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal; the salt is not random")
	}

	p, err := ParsePassword(h1)
	if err != nil {
		t.Fatalf("ParsePassword(own hash): %v", err)
	}
	if !p.Check(plain) || p.Check(plain+"x") || p.Check(h1) || p.Check(h2) {
		t.Error("own hash does not check as expected")
	}

	if _, err := hashPassword("", cheapParams); err == nil {
		t.Error("hashing an empty password succeeded")
	}
}

func TestHashPasswordDefaults(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Errorf("hash %q lacks the default parameters", h)
	}

	p, err := ParsePassword(h)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Check("correct horse") || p.Check("correct horsE") {
		t.Error("default hash does not check as expected")
	}
}

func TestParsePasswordRejects(t *testing.T) {
	const salt = "MDEyMzQ1Njc4OWFiY2RlZg"                     // 16 bytes
	const key = "tf/gIxR9ARLpJkOL+tTkfl4nvbGHQRJ4lfnvD+RUGzc" // 32 bytes
	phc := func(head, params, salt, key string) string {
		return head + "$" + params + "$" + salt + "$" + key
	}
	const id = "$argon2id$v=19"

	tests := []struct {
		name   string
		secret string
	}{
		{"argon2i", phc("$argon2i$v=19", "m=1024,t=3,p=4", salt, key)},
		{"argon2d", phc("$argon2d$v=19", "m=1024,t=3,p=4", salt, key)},
		{"version 16", phc("$argon2id$v=16", "m=1024,t=3,p=4", salt, key)},
		{"no version", "$argon2id$m=1024,t=3,p=4$" + salt + "$" + key},
		{"memory over 1 GiB", phc(id, "m=1048577,t=3,p=4", salt, key)},
		{"memory over 32 bits", phc(id, "m=4294967296,t=3,p=4", salt, key)},
		{"memory below 8p", phc(id, "m=31,t=3,p=4", salt, key)},
		{"time 0", phc(id, "m=1024,t=0,p=4", salt, key)},
		{"time 11", phc(id, "m=1024,t=11,p=4", salt, key)},
		{"lanes 0", phc(id, "m=1024,t=3,p=0", salt, key)},
		{"lanes 17", phc(id, "m=1024,t=3,p=17", salt, key)},
		{"negative", phc(id, "m=1024,t=-3,p=4", salt, key)},
		{"reordered", phc(id, "t=3,m=1024,p=4", salt, key)},
		{"extra parameter", phc(id, "m=1024,t=3,p=4,keyid=x", salt, key)},
		{"missing parameter", phc(id, "m=1024,t=3", salt, key)},
		{"salt too short", phc(id, "m=1024,t=3,p=4", "MDEyMzQ1Ng", key)},
		{"salt too long", phc(id, "m=1024,t=3,p=4", strings.Repeat("QUFB", 22), key)},
		{"padded salt", phc(id, "m=1024,t=3,p=4", salt+"==", key)},
		{"salt not base64", phc(id, "m=1024,t=3,p=4", "not*base64*at*all", key)},
		{"hash too short", phc(id, "m=1024,t=3,p=4", salt, "MDEyMzQ1Njc4OQ")},
		{"hash too long", phc(id, "m=1024,t=3,p=4", salt, strings.Repeat("QUFB", 22))},
		{"no hash", id + "$m=1024,t=3,p=4$" + salt},
		{"extra field", phc(id, "m=1024,t=3,p=4", salt, key) + "$x"},
		{"prefix only", "$argon2id$"},
		{"plaintext that looks like a hash", "$argon2 is my password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePassword(tc.secret)
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("ParsePassword = %v, %v; want ErrBadHash", p, err)
			}
			if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}

	if _, err := ParsePassword(""); err == nil {
		t.Error("ParsePassword accepted an empty secret")
	}
}

func TestPasswordPrintsNoSecret(t *testing.T) {
	for _, secret := range []string{"plain-secret-words", referenceHashes[0].phc} {
		p, err := ParsePassword(secret)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(format, p)
			if strings.Contains(out, secret) || strings.Contains(out, "UeZjsecz") {
				t.Errorf("%s prints the secret: %q", format, out)
			}
		}
	}
}

func BenchmarkCheckArgon2id(b *testing.B) {
	h, err := HashPassword("benchmark password")
	if err != nil {
		b.Fatal(err)
	}
	p, err := ParsePassword(h)
	if err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		if !p.Check("benchmark password") {
			b.Fatal("password refused")
		}
	}
}
