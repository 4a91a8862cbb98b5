package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// withProbes adds the class "probes", whose records have a field of every
// type, none required.
func withProbes(doc map[string]any) {
	str := func(format string) map[string]any {
		f := map[string]any{"type": "string"}
		if format != "" {
			f["format"] = format
		}
		return f
	}
	addClass(doc, "probes", map[string]any{
		"properties": map[string]any{
			"s": str(""),
			"u": str("uuid"),
			"d": str("date-time"),
			"i": map[string]any{"type": "integer", "#properties": []any{"counter"}},
			"n": map[string]any{"type": "number"},
			"b": map[string]any{"type": "boolean"},
			"a": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		},
	})
}

var (
	probeUUIDs = []string{
		"aaaaaaaa-0000-4000-8000-000000000000",
		"bbbbbbbb-0000-4000-8000-000000000001",
		"cccccccc-0000-4000-8000-000000000002",
	}
	probeTime = time.Date(2024, 5, 1, 12, 34, 56, 123456000, time.UTC)
)

// probes are the records the operator tests run on: three with every
// field, and two with most fields null.
func probes() []Record {
	recs := make([]Record, 0, 5)
	for i, s := range []string{"apple", "banana", "cherry"} {
		recs = append(recs, Record{
			"s": s, "u": probeUUIDs[i], "d": probeTime.Add(time.Duration(i) * time.Second),
			"i": i + 1, "n": float64(i) + 1.5, "b": i%2 == 0, "a": []any{s},
		})
	}
	return append(recs, Record{"s": "Apple pie"}, Record{"i": 10})
}

func TestFilterOperators(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withProbes))
	var cursors []string
	for _, r := range probes() {
		e, err := s.Append(ctx, "probes", r, owner)
		if err != nil {
			t.Fatal(err)
		}
		cursors = append(cursors, e.Cursor)
	}
	all := queryAll(t, s, "probes", Filter{})

	t1 := probeTime.Add(time.Second)
	tests := []struct {
		filter string
		want   []int
	}{
		{`{"s":{"eq":"apple"}}`, []int{0}},
		{`{"s":{"ne":"apple"}}`, []int{1, 2, 3}},
		{`{"s":{"regex":"b.n"}}`, []int{1}},
		{`{"s":{"regex":"an"}}`, nil},
		{`{"s":{"regex":"(?i)apple"}}`, []int{0, 3}},
		{`{"s":{"regex":".*rr"}}`, []int{2}},
		{`{"s":{"glob":"*an*"}}`, []int{1}},
		{`{"s":{"glob":"?pple"}}`, []int{0}},
		{`{"s":{"glob":"apple"}}`, []int{0}},
		{`{"s":{"glob":"app"}}`, nil},
		{`{"s":{"glob":"[ab]*"}}`, []int{0, 1}},
		{`{"s":{"glob":"[^ab]*"}}`, []int{2, 3}},
		{`{"s":{"glob":"[a-c]?????"}}`, []int{1, 2}},
		{`{"s":{"glob":"Apple*"}}`, []int{3}},
		{`{"s":{"glob":"*.*"}}`, nil},
		{`{"s":{"vin":["apple","cherry"]}}`, []int{0, 2}},
		{`{"s":{"nin":["apple","cherry"]}}`, []int{1, 3}},
		{`{"s":{"vin":[]}}`, nil},
		{`{"s":{"nin":[]}}`, []int{0, 1, 2, 3}},
		{`{"s":{"vin":"pineapple and cherry"}}`, []int{0, 2}},
		{`{"s":{"nin":"pineapple and cherry"}}`, []int{1, 3}},
		{`{"u":{"eq":"` + strings.ToUpper(probeUUIDs[1]) + `"}}`, []int{1}},
		{`{"u":{"ne":"` + probeUUIDs[1] + `"}}`, []int{0, 2}},
		{`{"d":{"at":"` + t1.Format(time.RFC3339Nano) + `"}}`, []int{1}},
		{`{"d":{"at":"2024-05-01 14:34:57.123456+02:00"}}`, []int{1}},
		{fmt.Sprintf(`{"d":{"at":%d.123456}}`, t1.Unix()), []int{1}},
		{`{"d":{"nat":"` + t1.Format(time.RFC3339Nano) + `"}}`, []int{0, 2}},
		{`{"d":{"after":"` + probeTime.Format(time.RFC3339Nano) + `"}}`, []int{1, 2}},
		{`{"d":{"before":"` + t1.Format(time.RFC3339Nano) + `"}}`, []int{0}},
		{`{"d":{"atafter":"` + t1.Format(time.RFC3339Nano) + `"}}`, []int{1, 2}},
		{`{"d":{"atbefore":"` + t1.Format(time.RFC3339Nano) + `"}}`, []int{0, 1}},
		{`{"i":{"eq":2}}`, []int{1}},
		{`{"i":{"eq":"2"}}`, []int{1}},
		{`{"i":{"ne":2}}`, []int{0, 2, 4}},
		{`{"i":{"gt":2}}`, []int{2, 4}},
		{`{"i":{"lt":2}}`, []int{0}},
		{`{"i":{"egt":2}}`, []int{1, 2, 4}},
		{`{"i":{"elt":2}}`, []int{0, 1}},
		{`{"i":{"gt":1,"lt":3}}`, []int{1}},
		{`{"n":{"eq":2.5}}`, []int{1}},
		{`{"n":{"ne":1.5}}`, []int{1, 2}},
		{`{"n":{"gt":2}}`, []int{1, 2}},
		{`{"n":{"lt":2}}`, []int{0}},
		{`{"n":{"egt":3.5}}`, []int{2}},
		{`{"n":{"elt":2.5}}`, []int{0, 1}},
		{`{"b":{"eq":true}}`, []int{0, 2}},
		{`{"b":{"eq":"false"}}`, []int{1}},
		{`{"b":{"ne":true}}`, []int{1}},
		{`{"s":{"ne":"apple"},"i":{"egt":2}}`, []int{1, 2}},
		{`{"s":{"eq":null}}`, []int{0, 1, 2, 3, 4}},
		{`{}`, []int{0, 1, 2, 3, 4}},
		{`null`, []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f := filter(t, s, "probes", tt.filter)
			want := make([]string, len(tt.want))
			for i, n := range tt.want {
				want[i] = cursors[n]
			}

			if got := queryAll(t, s, "probes", f); !sameCursors(got, want) {
				t.Errorf("Query selects %v, want %v", positions(got, cursors), tt.want)
			}
			var matched []Edge
			for _, e := range all {
				if f.Match(e.Node) {
					matched = append(matched, e)
				}
			}
			if !sameCursors(matched, want) {
				t.Errorf("Match selects %v, want %v", positions(matched, cursors), tt.want)
			}
		})
	}
}

// positions returns the positions in cursors of the edges' cursors.
func positions(edges []Edge, cursors []string) []int {
	var out []int
	for _, e := range edges {
		out = append(out, slices.Index(cursors, e.Cursor))
	}
	return out
}

func TestParseFilterErrors(t *testing.T) {
	s := openStore(t, addressBook(t, withProbes))
	cl, _ := s.Contract().Class("probes")

	tests := []struct {
		filter, wantIn string
	}{
		{`[]`, "not a JSON object"},
		{`{"s":{"eq":"a"}} x`, "after the JSON object"},
		{`{"nope":{"eq":"a"}}`, `"nope" is not a field`},
		{`{"a":{"eq":"x"}}`, `field "a" is an array`},
		{`{"s":null}`, `field "s" has null`},
		{`{"s":5}`, `field "s": not a JSON object`},
		{`{"s":{"blah":null}}`, `"blah" is not an operator`},
		{`{"s":{"blah":"blah"}}`, `"blah" is not an operator`},
		{`{"s":{"eq":"a"},"s":{"ne":"b"}}`, `"s" appears twice`},
		{`{"s":{"eq":"a","eq":"b"}}`, `"eq" appears twice`},
		{`{"s":{"eq":5}}`, `operator "eq": 5 is not a valid string`},
		{`{"s":{"regex":"("}}`, `invalid pattern`},
		{`{"s":{"regex":5}}`, `is not a string`},
		{`{"s":{"glob":"[abc"}}`, `no closing`},
		{`{"s":{"vin":[1,2]}}`, `is not a string`},
		{`{"s":{"vin":{}}}`, `neither a list`},
		{`{"s":{"gt":"a"}}`, `"gt" is not an operator for a string field`},
		{`{"u":{"eq":"blah"}}`, `"blah" is not a valid uuid`},
		{`{"u":{"gt":"` + probeUUIDs[0] + `"}}`, `"gt" is not an operator`},
		{`{"d":{"eq":"2024-05-01"}}`, `"eq" is not an operator for a date-time field`},
		{`{"d":{"at":"yesterday"}}`, `is not a valid date-time`},
		{`{"i":{"eq":"x"}}`, `is not a valid integer`},
		{`{"i":{"gt":2.5}}`, `is not a valid integer`},
		{`{"n":{"eq":"abc"}}`, `is not a valid number`},
		{`{"n":{"eq":true}}`, `is not a valid number`},
		{`{"b":{"eq":"maybe"}}`, `is not a valid boolean`},
		{`{"b":{"gt":true}}`, `"gt" is not an operator`},
		{`{"s":{"regex":"` + strings.Repeat("a", MaxPatternLength+1) + `"}}`, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.filter[:min(len(tt.filter), 40)], func(t *testing.T) {
			_, err := ParseFilter(cl, json.RawMessage(tt.filter))
			if !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("ParseFilter: %v, want an ErrInvalidFilter", err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("ParseFilter: %q does not say %q", err, tt.wantIn)
			}
		})
	}
}

func TestParseFilterLimits(t *testing.T) {
	s := openStore(t, addressBook(t, withProbes))
	cl, _ := s.Contract().Class("probes")

	list, _ := json.Marshal(make([]string, MaxListLength+1))
	if _, err := ParseFilter(cl, json.RawMessage(`{"s":{"vin":`+string(list)+`}}`)); !errors.Is(
		err, ErrInvalidFilter) {
		t.Errorf("a vin list of %d values: %v", MaxListLength+1, err)
	}

	var conds []string
	for range MaxConditions + 1 {
		conds = append(conds, `"eq":"x"`)
	}
	_, err := ParseFilter(cl, json.RawMessage(`{"s":{`+strings.Join(conds, ",")+`}}`))
	if !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("%d conditions: %v", MaxConditions+1, err)
	}
}

func TestFilterString(t *testing.T) {
	s := openStore(t, addressBook(t, withProbes))
	f := filter(t, s, "probes",
		`{"s":{"vin":["a","b"]},"i":{"gt":3},"n":{"eq":2.0,"ne":1e20},"b":{"eq":true},`+
			`"d":{"at":"2023-10-29T05:15:39Z"},"u":{"eq":"`+strings.ToUpper(probeUUIDs[0])+`"}}`)
	want := "s vin ['a', 'b'] and i gt 3 and n eq 2.0 and n ne 1e+20 and b eq True and " +
		"d at '2023-10-29 05:15:39+00:00' and u eq '" + probeUUIDs[0] + "'"
	if got := f.String(); got != want {
		t.Errorf("String() = %q\nwant        %q", got, want)
	}
}

// TestRecordFilter checks the filter string form of §5.13 of the Data API.
func TestRecordFilter(t *testing.T) {
	s := openStore(t, addressBook(t))
	cl, _ := s.Contract().Class("network_assets")
	f, err := RecordFilter(cl, Record{
		"asset_id":          "aaaaaaaa-8fd6-4673-afa1-d3129e61faf3",
		"created_timestamp": "2023-10-29T05:15:39.495695+00:00",
		"asset_type":        "video",
		"title":             "not required, so not in the filter",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "created_timestamp at '2023-10-29 05:15:39.495695+00:00' and " +
		"asset_id eq 'aaaaaaaa-8fd6-4673-afa1-d3129e61faf3' and asset_type eq 'video'"
	if got := f.String(); got != want {
		t.Errorf("String() = %q\nwant        %q", got, want)
	}

	if _, err := RecordFilter(cl, Record{"asset_id": uuid.NewString()}); !errors.Is(err,
		ErrInvalidRecord) {
		t.Errorf("RecordFilter without the required fields: %v", err)
	}
}

func TestFilterForAnotherClass(t *testing.T) {
	s := openStore(t, addressBook(t))
	f := filter(t, s, "public_assets", `{"asset_type":{"eq":"video"}}`)
	if _, err := s.Query(context.Background(), "network_assets",
		QueryOptions{Filter: f}); !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("a filter of public_assets on network_assets: %v", err)
	}
}

func TestGlobRegexp(t *testing.T) {
	tests := []struct {
		glob, match, noMatch string
	}{
		{"a.b", "a.b", "axb"},
		{"a*", "abc", "ba"},
		{"*", "", ""},
		{"?", "ü", ""},
		{"[]]", "]", "a"},
		{"[^]]", "a", "]"},
		{"[a-]", "-", "b"},
		{"[\\]", "\\", "a"},
		{"(a|b)", "(a|b)", "a"},
		{"a\nb*", "a\nbc", "a\n"},
		{"ü*", "über", "uber"},
	}
	for _, tt := range tests {
		src, err := globRegexp(tt.glob)
		if err != nil {
			t.Errorf("globRegexp(%q): %v", tt.glob, err)
			continue
		}
		re, err := compilePattern(src)
		if err != nil {
			t.Errorf("globRegexp(%q) = %q, which does not compile: %v", tt.glob, src, err)
			continue
		}
		if !re.MatchString(tt.match) {
			t.Errorf("glob %q (%s) does not match %q", tt.glob, src, tt.match)
		}
		if tt.noMatch != "" && re.MatchString(tt.noMatch) {
			t.Errorf("glob %q (%s) matches %q", tt.glob, src, tt.noMatch)
		}
	}
}
