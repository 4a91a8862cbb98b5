package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// arrayFields returns the array fields of the classes of c and of the
// classes of the records they embed, each once.
func arrayFields(c *contract.Contract) []*contract.Field {
	var out []*contract.Field
	seen := map[*contract.Class]bool{}
	var walk func(cl *contract.Class)
	walk = func(cl *contract.Class) {
		if cl == nil || seen[cl] {
			return
		}
		seen[cl] = true
		for _, f := range cl.Fields {
			if f.Type == contract.TypeArray {
				out = append(out, f)
				walk(f.ItemClass)
			}
		}
	}
	for _, name := range c.ClassNames() {
		walk(c.Classes[name].Record())
	}
	return out
}

// storedArrays returns the stored text of the arrays of asset n, by field.
func storedArrays(tb testing.TB, cl *contract.Class, n int) map[string][]byte {
	tb.Helper()
	r := asset(n, time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC))
	r["copyright_years"] = []any{2020, 2021.0}
	vals, err := normalize(cl.Items, r)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for name, v := range vals {
		if a, ok := v.([]any); ok {
			if out[name], err = marshalArray(a); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}

// TestReadArray checks that readArray reads what the store writes, and
// gives up on what it must leave to the long way.
func TestReadArray(t *testing.T) {
	c := addressBook(t)
	cl, _ := c.Class("network_assets")
	for name, b := range storedArrays(t, cl, 1) {
		f, _ := cl.Items.Field(name)
		got, ok := readArray(f, b)
		if !ok {
			t.Errorf("%s: readArray gave up on %s", name, b)
			continue
		}
		if want := storedArray(f, b); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: readArray(%s) = %#v, want %#v", name, b, got, want)
		}
	}

	keywords, _ := cl.Items.Field("keywords")
	thumbnails, _ := cl.Items.Field("video_thumbnails")
	years, _ := cl.Items.Field("copyright_years")
	for _, tt := range []struct {
		f    *contract.Field
		text string
	}{
		{keywords, `["a", null]`},
		{keywords, `["a"] trailing`},
		{keywords, `["a\u0001"`},
		{keywords, "[\"tab\tinside\"]"},
		{years, `[1.5]`},
		{years, `[01]`},
		{thumbnails, `[{"url": "u", "not_a_field": 1}]`},
		{thumbnails, `[{}]`},
		{thumbnails, `{"url": "u"}`},
	} {
		if got, ok := readArray(tt.f, []byte(tt.text)); ok {
			t.Errorf("readArray(%s) = %#v, want it to give up", tt.text, got)
		}
	}
}

// FuzzReadArray checks that readArray, where it does not give up, reads
// stored arrays as the long way does.
func FuzzReadArray(f *testing.F) {
	c := addressBook(f)
	fields := arrayFields(c)
	cl, _ := c.Class("network_assets")
	for _, b := range storedArrays(f, cl, 2) {
		for i := range fields {
			f.Add(b, uint8(i))
		}
	}
	for _, s := range []string{`[]`, ` [ "x\"y" , "\u00e9\ud83d\ude00" ] `, `["\xff"]`,
		`[1, -0, 2e3, 1E-2, 4.5]`, `[true, false, "yes", 1, "0"]`,
		`["2024-05-01T12:00:00Z", "2024-05-01 12:00:00+02:00", 1714564800.5]`,
		`[{"url": "u", "width": 3, "url": null}]`} {
		for i := range fields {
			f.Add([]byte(s), uint8(i))
		}
	}

	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		field := fields[int(which)%len(fields)]
		got, ok := readArray(field, b)
		if !ok {
			return
		}
		if want := storedArray(field, b); !reflect.DeepEqual(got, want) {
			t.Errorf("field %s: readArray(%q) = %#v, want %#v", field.Name, b, got, want)
		}
	})
}
