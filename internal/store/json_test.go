package store

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// FuzzAppendString compares appendString and appendFloat with
// encoding/json.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "<>&", "\u2028", "\xff\xfe", "é", "\x00"} {
		f.Add(s, 1.5)
	}
	f.Add("x", 1e-7)
	f.Add("x", 1e21)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		want, _ := json.Marshal(s)
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		want, _ = json.Marshal(x)
		if got := appendFloat([]byte("prefix"), x); string(got) != "prefix"+string(want) {
			t.Errorf("appendFloat(%v) = %s, want %s", x, strings.TrimPrefix(string(got),
				"prefix"), want)
		}
	})
}
