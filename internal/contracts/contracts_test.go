package contracts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/byoda/byoda-go/internal/contract"
)

// apiClasses are the data classes the address book serves: it must have
// these and no others.
var apiClasses = []string{
	"datalogs", "member", "network_assets", "network_invites", "network_links",
	"network_links_inbound", "person", "public_assets",
}

// referencePath is the address book that other Byoda pods serve. It lives
// in the shared test data beside the repository and is not ours to ship.
var referencePath = filepath.Join("..", "..", "..", "shared", "testdata", "contracts",
	"addressbook.json")

// TestAddressBookParses checks the embedded contract on its own. The
// "byoda contract check" command accepts exactly the contracts that
// contract.Parse accepts.
func TestAddressBookParses(t *testing.T) {
	c, err := contract.Parse(AddressBook())
	if err != nil {
		t.Fatalf("contract.Parse: %v", err)
	}

	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"service_id", c.ServiceID, uint32(4294929430)},
		{"version", c.Version, 1},
		{"name", c.Name, "addressbook"},
		{"owner", c.Owner, "byoda-go"},
		{"website", c.Website, "https://github.com/byoda"},
		{"supportemail", c.SupportEmail, "support@byoda.test"},
		{"max_query_depth", c.MaxQueryDepth, 3},
		{"listen_relations", len(c.ListenRelations), 0},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if c.Description == "" || c.SchemaID == "" || len(c.CORSOrigins) == 0 {
		t.Errorf("description %q, $id %q, cors_origins %q: want all set",
			c.Description, c.SchemaID, c.CORSOrigins)
	}

	if got := c.ClassNames(); !slices.Equal(got, apiClasses) {
		t.Errorf("data classes %q, want %q", got, apiClasses)
	}
	want := reachedRecords(c, apiClasses)
	if got := slices.Sorted(maps.Keys(c.Defined)); !slices.Equal(got, want) {
		t.Errorf("record classes %q, want only those the data classes use: %q", got, want)
	}
}

// TestAddressBookMatchesReference checks that every data class of the
// embedded contract, and every record class it reaches, parses to the same
// model as in the reference address book, descriptions and $id aside.
func TestAddressBookMatchesReference(t *testing.T) {
	ref, err := os.ReadFile(referencePath)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("reading the reference address book: %v", err)
		}
		t.Skipf("reference address book not found beside the repository: %v", err)
	}
	want, err := contract.Parse(ref)
	if err != nil {
		t.Fatalf("parsing the reference address book: %v", err)
	}
	got, err := contract.Parse(AddressBook())
	if err != nil {
		t.Fatalf("contract.Parse: %v", err)
	}

	for _, name := range apiClasses {
		t.Run(name, func(t *testing.T) {
			g, ok := got.Class(name)
			if !ok {
				t.Fatalf("embedded contract has no class %q", name)
			}
			w, ok := want.Class(name)
			if !ok {
				t.Fatalf("reference has no class %q", name)
			}
			missing, extra := diffLines(describeClass(g), describeClass(w))
			if len(missing)+len(extra) > 0 {
				t.Errorf("differs from the reference:\nmissing:\n\t%s\nextra:\n\t%s",
					strings.Join(missing, "\n\t"), strings.Join(extra, "\n\t"))
			}
		})
	}
}

// TestDescribeClassSeesChanges guards the comparison above: each change to
// the embedded contract must show in the description of the class it
// touches.
func TestDescribeClassSeesChanges(t *testing.T) {
	orig, err := contract.Parse(AddressBook())
	if err != nil {
		t.Fatalf("contract.Parse: %v", err)
	}

	defs := []any{"jsonschema", "$defs"}
	props := []any{"jsonschema", "properties"}
	for _, tt := range []struct {
		name  string
		class string
		path  []any
		value any
	}{
		{"field type", "person", keys(props, "person", "properties", "homepage_url", "type"),
			"integer"},
		{"format", "person", keys(props, "person", "properties", "email", "format"), "email"},
		{"required order", "person", keys(props, "person", "required"),
			[]any{"family_name", "given_name", "email"}},
		{"index", "public_assets", keys(defs, "asset", "properties", "creator", "#properties"),
			[]any{}},
		{"counter", "network_links",
			keys(defs, "network_link", "properties", "relation", "#properties"), []any{}},
		{"primary key", "network_assets",
			keys(defs, "video_chapter", "properties", "chapter_id", "#properties"),
			[]any{"index", "counter"}},
		{"item type", "public_assets",
			keys(defs, "asset", "properties", "copyright_years", "items", "type"), "string"},
		{"class right", "public_assets",
			keys(props, "public_assets", "#accesscontrol", "anonymous", "permissions"),
			[]any{"read"}},
		{"right condition", "person",
			keys(props, "person", "#accesscontrol", "network", "permissions", 0, "distance"), 2},
		{"field right", "member", keys(props, "member", "properties", "schema_versions",
			"#accesscontrol", "any_member", "permissions"), []any{"persist"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			changed, err := contract.Parse(withValue(t, AddressBook(), tt.path, tt.value))
			if err != nil {
				t.Fatalf("parsing the changed contract: %v", err)
			}

			before := describeClass(mustClass(t, orig, tt.class))
			after := describeClass(mustClass(t, changed, tt.class))
			if missing, extra := diffLines(after, before); len(missing)+len(extra) == 0 {
				t.Errorf("setting %v to %v leaves the description of %s as it was",
					tt.path, tt.value, tt.class)
			}
		})
	}
}

// reachedRecords returns, sorted, the names of the record classes that the
// named data classes hold or embed, directly or through other records.
func reachedRecords(c *contract.Contract, names []string) []string {
	seen := map[string]bool{}
	for _, name := range names {
		cl, ok := c.Class(name)
		if !ok {
			continue
		}
		if cl.Kind == contract.ArrayClass {
			markRecords(cl.Items, seen)
		}
		for _, f := range cl.Record().Fields {
			markRecords(f.ItemClass, seen)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func markRecords(cl *contract.Class, seen map[string]bool) {
	if cl == nil || seen[cl.Name] {
		return
	}
	seen[cl.Name] = true
	for _, f := range cl.Fields {
		markRecords(f.ItemClass, seen)
	}
}

// describeClass puts into lines, sorted, everything about a data class
// that a pod acts on: its kind and access rights, and for its records and
// the records they embed, the fields with their types, formats, flags and
// rights, and the required fields in order. Descriptions and $id are left
// out, and rights are compared regardless of the order the contract lists
// them in.
func describeClass(cl *contract.Class) []string {
	lines := []string{fmt.Sprintf("class %s: kind %s", cl.Name, cl.Kind)}
	for _, r := range cl.Access {
		lines = append(lines, fmt.Sprintf("class %s: right %s", cl.Name, describeRight(r)))
	}

	seen := map[string]bool{}
	if cl.Kind == contract.ArrayClass {
		lines = append(lines, fmt.Sprintf("class %s: items %s", cl.Name, cl.Items.Name))
	}
	lines = describeRecord(lines, cl.Record(), seen)
	slices.Sort(lines)
	return lines
}

// describeRecord appends the lines of the record class rec, and of the
// records its fields embed, to lines.
func describeRecord(lines []string, rec *contract.Class, seen map[string]bool) []string {
	if rec == nil || seen[rec.Name] {
		return lines
	}
	seen[rec.Name] = true

	lines = append(lines, fmt.Sprintf("record %s: required %q", rec.Name, rec.Required))
	for _, f := range rec.Fields {
		at := fmt.Sprintf("record %s: field %s", rec.Name, f.Name)
		lines = append(lines, at+": "+describeField(f))
		for _, r := range f.Access {
			lines = append(lines, at+": right "+describeRight(r))
		}
		lines = describeRecord(lines, f.ItemClass, seen)
	}
	return lines
}

func describeField(f *contract.Field) string {
	item := ""
	switch {
	case f.ItemClass != nil:
		item = " of " + f.ItemClass.Name
	case f.Type == contract.TypeArray:
		item = " of " + f.ItemType.String()
	}
	return fmt.Sprintf("%s%s format=%q required=%t index=%t counter=%t primary_key=%t",
		f.Type, item, f.Format, f.Required, f.Index, f.Counter, f.PrimaryKey)
}

func describeRight(r contract.Right) string {
	return fmt.Sprintf("%s %s distance=%d relations=%q source_signature_required=%t "+
		"anonymized_responses=%t match=%q casesensitive=%t",
		r.Entity, r.Permission, r.Distance, slices.Sorted(slices.Values(r.Relations)),
		r.SourceSignatureRequired, r.AnonymizedResponses, r.Match, r.CaseSensitive)
}

// diffLines returns the lines of want that got lacks and the lines of got
// that want lacks, counting repeated lines.
func diffLines(got, want []string) (missing, extra []string) {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	for _, l := range slices.Sorted(maps.Keys(count)) {
		for n := count[l]; n > 0; n-- {
			missing = append(missing, l)
		}
		for n := count[l]; n < 0; n++ {
			extra = append(extra, l)
		}
	}
	return missing, extra
}

func mustClass(t *testing.T, c *contract.Contract, name string) *contract.Class {
	t.Helper()
	cl, ok := c.Class(name)
	if !ok {
		t.Fatalf("no class %q", name)
	}
	return cl
}

// keys joins a base path with more object keys and list indexes.
func keys(base []any, more ...any) []any {
	return append(slices.Clone(base), more...)
}

// withValue returns doc with the value at path, a list of object keys and
// list indexes, replaced by v.
func withValue(t *testing.T, doc []byte, path []any, v any) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("decoding the contract: %v", err)
	}

	parent := root
	for i, step := range path {
		last := i == len(path)-1
		switch node := parent.(type) {
		case map[string]any:
			key, _ := step.(string)
			if _, ok := node[key]; !ok {
				t.Fatalf("no key %q at step %d of %v", key, i, path)
			}
			if last {
				node[key] = v
			}
			parent = node[key]
		case []any:
			idx, ok := step.(int)
			if !ok || idx < 0 || idx >= len(node) {
				t.Fatalf("no element %v at step %d of %v", step, i, path)
			}
			if last {
				node[idx] = v
			}
			parent = node[idx]
		default:
			t.Fatalf("step %d of %v goes into a %T", i, path, node)
		}
	}

	out, err := json.Marshal(root)
	if err != nil {
		t.Fatalf("encoding the changed contract: %v", err)
	}
	return out
}
