package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden files in testdata are written by testdata/gen_golden.py with the
// reference's serializer; the tests only read them.

func TestCanonicalGolden(t *testing.T) {
	tests := []struct {
		name, input, golden string
	}{
		{"edge cases", "edge.json", "edge.golden"},
		{"sample contract", "sample-contract.json", "sample-contract.golden"},
		{"floats", "floats.json", "floats.golden"},
		{"python signed", "edge.signed-by-python.json", "edge.signed-by-python.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(readTestdata(t, tt.input))
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			if want := readTestdata(t, tt.golden); !bytes.Equal(got, want) {
				t.Errorf("Canonical(%s) differs from %s: %s", tt.input, tt.golden,
					firstDiff(got, want))
			}
		})
	}
}

func TestCanonicalAddressBook(t *testing.T) {
	doc := readShared(t, "contracts", "addressbook.json")
	want := strings.TrimSpace(string(readTestdata(t, "addressbook.sha256")))

	got, err := Canonical(doc)
	if err != nil {
		t.Fatalf("Canonical: %v", err)
	}
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != want {
		t.Errorf("SHA-256 of the canonical address book is %x, want %s", sum, want)
	}
}

func TestCanonicalSmall(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"scalar", ` 42 `, `42`},
		{"negative zero integer", `-0`, `0`},
		{"negative zero float", `-0.0`, `-0.0`},
		{"whitespace", "{\r\n\t\"a\" :\t[ 1 , 2 ] }", "{\n  \"a\": [\n    1,\n    2\n  ]\n}"},
		{"escaped name sorts by its character", `{"\u00e9":1,"f":2}`, "{\n  \"f\": 2,\n  \"é\": 1\n}"},
		{"upper case hex escape", `"\u00C9\u00e9"`, `"Éé"`},
		{"surrogate pair", `"\uD83D\uDE00"`, `"😀"`},
		{"escaped control", `"\u001F\u0020"`, `"\u001f "`},
		{"empty string name", `{"":{}}`, "{\n  \"\": {}\n}"},
		{"depth 255", strings.Repeat("[", 255) + strings.Repeat("]", 255),
			nested(255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if err != nil {
				t.Fatalf("Canonical(%q): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// nested returns the canonical form of depth nested arrays.
func nested(depth int) string {
	var b strings.Builder
	for i := range depth - 1 {
		b.WriteString("[\n" + strings.Repeat(" ", 2*(i+1)))
	}
	b.WriteString("[]")
	for i := depth - 2; i >= 0; i-- {
		b.WriteString("\n" + strings.Repeat(" ", 2*i) + "]")
	}
	return b.String()
}

func TestCanonicalRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ``},
		{"only space", ` `},
		{"duplicate name", `{"a":1,"a":1}`},
		{"duplicate name by escape", `{"é":1,"\u00e9":2}`},
		{"nested duplicate", `{"a":[{"b":1,"c":2,"b":3}]}`},
		{"invalid UTF-8 in string", "\"\xff\""},
		{"invalid UTF-8 in name", "{\"\xc3\":1}"},
		{"overlong UTF-8", "\"\xc0\xaf\""},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\""},
		{"byte order mark", "\xef\xbb\xbf{}"},
		{"lone high surrogate", `"\ud800"`},
		{"lone low surrogate", `"\udc00x"`},
		{"high surrogate then letter", `"\ud800\u0041"`},
		{"two high surrogates", `"\ud800\ud800"`},
		{"raw control character", "\"a\tb\""},
		{"raw newline", "\"a\nb\""},
		{"unknown escape", `"\x41"`},
		{"short unicode escape", `"\u12"`},
		{"bad hex", `"\u12g4"`},
		{"unterminated string", `"abc`},
		{"unterminated escape", `"\`},
		{"integer above uint64", `18446744073709551616`},
		{"integer below int64", `-9223372036854775809`},
		{"float overflow", `1e400`},
		{"negative float overflow", `[-1.8e308]`},
		{"NaN", `NaN`},
		{"Infinity", `[Infinity]`},
		{"leading zero", `[01]`},
		{"leading plus", `+1`},
		{"bare fraction", `.5`},
		{"empty fraction", `1.`},
		{"empty exponent", `1e`},
		{"hex number", `0x10`},
		{"trailing comma in array", `[1,]`},
		{"trailing comma in object", `{"a":1,}`},
		{"missing colon", `{"a" 1}`},
		{"unquoted name", `{a:1}`},
		{"single quotes", `'a'`},
		{"unclosed array", `[1`},
		{"unclosed object", `{"a":1`},
		{"data after document", `{} {}`},
		{"comment", `{} // x`},
		{"misspelled literal", `tru`},
		{"literal with tail", `nullx`},
		{"depth 256", strings.Repeat("[", 256) + strings.Repeat("]", 256)},
		{"depth 256 in objects", strings.Repeat(`{"a":`, 255) + "[]" + strings.Repeat("}", 255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Canonical(%q) = %q, %v; want an error wrapping ErrMalformed",
					tt.in, got, err)
			}
		})
	}
}

func FuzzCanonical(f *testing.F) {
	for _, name := range []string{"edge.json", "sample-contract.json"} {
		f.Add(readTestdata(f, name))
	}
	seeds := []string{`{}`, `[1.5e-7, -0, "\u2028"]`, `{"b":{"a":[]}}`, `"\ud83d\ude00"`}
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, doc []byte) {
		once, err := Canonical(doc)
		if err != nil {
			return
		}
		if !json.Valid(once) {
			t.Fatalf("Canonical(%q) = %q, which is not valid JSON", doc, once)
		}
		twice, err := Canonical(once)
		if err != nil {
			t.Fatalf("Canonical of canonical %q: %v", once, err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("Canonical is not idempotent:\nonce:  %q\ntwice: %q", once, twice)
		}
	})
}

func BenchmarkCanonical(b *testing.B) {
	doc := readShared(b, "contracts", "addressbook.json")
	b.SetBytes(int64(len(doc)))

	for b.Loop() {
		if _, err := Canonical(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// readShared reads a file of the shared test data beside the repository,
// which holds reference files that are not ours to ship.
func readShared(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	path := filepath.Join(append([]string{"..", "..", "..", "shared", "testdata"}, elem...)...)
	data, err := os.ReadFile(path)
	if err == nil {
		return data
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("reading shared test data: %v", err)
	}
	tb.Skipf("shared test data not found beside the repository: %v", err)
	return nil
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}
