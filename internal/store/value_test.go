package store

import (
	"math"
	"testing"

	"github.com/byoda/byoda-go/internal/contract"
)

func TestPythonFloat(t *testing.T) {
	tests := map[float64]string{
		1:       "1.0",
		2.5:     "2.5",
		0.1:     "0.1",
		-3:      "-3.0",
		0:       "0.0",
		1e15:    "1000000000000000.0",
		1e16:    "1e+16",
		1.5e20:  "1.5e+20",
		0.0001:  "0.0001",
		1.5e-05: "1.5e-05",
	}
	for f, want := range tests {
		if got := pythonFloat(f); got != want {
			t.Errorf("pythonFloat(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestInstantRoundTrip(t *testing.T) {
	for _, s := range []string{
		"2024-05-01T12:34:56.123456Z",
		"2024-05-01T12:34:56Z",
		"1970-01-01T00:00:00.000001Z",
		"1969-12-31T23:59:59.999999Z",
		"0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999Z",
	} {
		t1, ok := toInstant(s)
		if !ok {
			t.Errorf("toInstant(%q) failed", s)
			continue
		}
		if got := t1.String(); got != s {
			t.Errorf("toInstant(%q).String() = %q", s, got)
		}
		// Seconds in a float64 hold microseconds exactly up to 2^53 of them.
		if back := fromSeconds(t1.seconds()); math.Abs(float64(t1)) < 1<<53 && back != t1 {
			t.Errorf("%s: through seconds %d, want %d", s, back, t1)
		}
	}
	if got := instant(1714566896123456).python(); got != "2024-05-01 12:34:56.123456+00:00" {
		t.Errorf("python() = %q", got)
	}
}

// TestFromSQLScalars checks the shortcuts of fromSQL against convert.
func TestFromSQLScalars(t *testing.T) {
	uuidField := &contract.Field{Name: "id", Type: contract.TypeUUID}
	for _, s := range []string{"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		"0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", "{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}",
		"0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g",
		"0a1b2c3d+4e5f-4a6b-8c7d-9e0f1a2b3c4d", " 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4"} {
		want := any(s)
		if canon, err := convert(uuidField, s); err == nil {
			want = output(canon)
		}
		if got := fromSQL(uuidField, s); got != want {
			t.Errorf("fromSQL(uuid %q) = %q, want %q", s, got, want)
		}
	}
}
