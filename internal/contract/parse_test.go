package contract

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// badContracts are the broken contracts in testdata/contracts, each with the
// one problem Parse must report for it.
var badContracts = []struct {
	file, path, message string
}{
	{"unknown-type", "jsonschema.properties.person.properties.email", `unknown type "strin"`},
	{"dangling-ref", "jsonschema.properties.notes.items.$ref", `unknown class "nothing"`},
	{"ref-cycle", "jsonschema.$defs.page.properties.folders.items.$ref",
		"circular reference: folder -> page -> folder"},
	{"ref-form", "jsonschema.properties.notes.items.$ref", `"#/definitions/note" is not of the form`},
	{"scalar-class", "jsonschema.properties.nickname", "must be an object or an array, not a string"},
	{"array-of-scalars", "jsonschema.properties.keywords.items", "scalars cannot be stored"},
	{"nested-object", "jsonschema.properties.person.properties.address",
		"nested objects are not supported"},
	{"class-name-sql", `jsonschema.properties["person; drop table"]`,
		`class name "person; drop table" must start with a letter`},
	{"class-name-underscore", "jsonschema.properties._person",
		`class name "_person" must start with a letter`},
	{"class-name-byoda", "jsonschema.properties.byoda_person", `must not start with "byoda"`},
	{"field-name", "jsonschema.properties.person.properties.e-mail",
		`field name "e-mail" must start with a letter`},
	{"field-name-case", "jsonschema.properties.person.properties.email",
		`differs from "Email" only in case`},
	{"acl-entity", "jsonschema.properties.notes.#accesscontrol.friends", `unknown entity "friends"`},
	{"acl-permission", "jsonschema.properties.notes.#accesscontrol.member.permissions[1]",
		`unknown permission "raed"`},
	{"acl-distance", "jsonschema.properties.notes.#accesscontrol.network.permissions[0].distance",
		"-1 is out of range"},
	{"acl-distance-entity", "jsonschema.properties.notes.#accesscontrol.network.distance",
		"unknown key"},
	{"acl-relations-typo",
		"jsonschema.properties.notes.#accesscontrol.network.permissions[0].relations", "unknown key"},
	{"acl-old-syntax", "jsonschema.properties.person.#accesscontrol", "the list form"},
	{"counter-boolean", "jsonschema.$defs.note.properties.done.#properties[0]",
		"counter needs a uuid, string, date-time or integer field, not a boolean"},
	{"primary-key-string", "jsonschema.$defs.note.properties.title.#properties[0]",
		"primary_key needs a uuid field, not a string"},
	{"index-array", "jsonschema.$defs.note.properties.tags.#properties[0]",
		"index needs a scalar field, not an array"},
	{"unknown-property", "jsonschema.$defs.note.properties.title.#properties[1]",
		`unknown property "unique"`},
	{"cache-only-timespec", "jsonschema.properties.incoming.#properties[0]",
		`time span "3 days" must be`},
	{"unknown-top-level-key", "colour", "unknown top-level key"},
	{"missing-top-level-key", "owner", "required key is missing"},
	{"service-id-range", "service_id", "4294967296 is out of range"},
	{"service-id-string", "service_id", "must be an integer, not a string"},
	{"version-zero", "version", "0 is out of range: must be from 1"},
	{"max-query-depth", "max_query_depth", "11 is out of range: must be from 0 to 10"},
	{"pod-class-missing", "jsonschema.properties.datalogs", `needs the array class "datalogs"`},
	{"listen-relation", "listen_relations[0].class_name", `"person" is not an array class`},
	{"not-json", "", "malformed contract JSON"},
	{"not-object", "", "a contract is a JSON object, not a list"},
}

func TestParseBadContracts(t *testing.T) {
	for _, tt := range badContracts {
		t.Run(tt.file, func(t *testing.T) {
			problems := problemsOf(t, readTestdata(t, filepath.Join("contracts", "bad-"+tt.file+".json")))
			if len(problems) != 1 {
				t.Fatalf("got %d problems, want 1:\n%s", len(problems), listProblems(problems))
			}
			p := problems[0]
			if p.Path != tt.path || !strings.Contains(p.Message, tt.message) {
				t.Errorf("problem %q,\nwant path %q and a message with %q", p, tt.path, tt.message)
			}
		})
	}
}

// TestBadContractsListed keeps the table above and the files in step.
func TestBadContractsListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "contracts", "bad-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "bad-"), ".json")
		if name != "many" && !slices.ContainsFunc(badContracts, func(c struct {
			file, path, message string
		}) bool {
			return c.file == name
		}) {
			t.Errorf("%s is not in badContracts", f)
		}
	}
}

func TestParseCollectsEveryProblem(t *testing.T) {
	doc := readTestdata(t, filepath.Join("contracts", "bad-many.json"))
	_, err := Parse(doc)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse: %v, want a *ValidationError", err)
	}

	want := []string{
		"jsonschema.$defs.note.properties.done.#properties[0]",
		"jsonschema.properties.notes.#accesscontrol.anybody",
		"jsonschema.properties.person.properties.email",
		"signatures",
		"version",
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Path)
		if !strings.Contains(err.Error(), p.String()) {
			t.Errorf("Error() lacks %q:\n%s", p, err)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("problem paths:\n%q\nwant\n%q", got, want)
	}
	if !strings.HasPrefix(err.Error(), "invalid contract: jsonschema.$defs.note") {
		t.Errorf("Error() = %q", err)
	}
}

func TestParseAddressBook(t *testing.T) {
	doc := readShared(t, "contracts", "addressbook.json")
	c, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse(addressbook.json): %v", err)
	}

	// Compute the classes from the document itself, independently of Parse.
	var raw struct {
		JSONSchema struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Defs       map[string]struct {
				ID *string `json:"$id"`
			} `json:"$defs"`
		} `json:"jsonschema"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatal(err)
	}
	wantClasses := slices.Collect(maps.Keys(raw.JSONSchema.Properties))
	var wantDefined []string
	for name, def := range raw.JSONSchema.Defs {
		if def.ID == nil {
			wantClasses = append(wantClasses, name)
		} else {
			wantDefined = append(wantDefined, name)
		}
	}
	slices.Sort(wantClasses)
	slices.Sort(wantDefined)
	if got := c.ClassNames(); !slices.Equal(got, wantClasses) {
		t.Errorf("ClassNames() = %q,\nwant %q", got, wantClasses)
	}
	if got := slices.Sorted(maps.Keys(c.Defined)); !slices.Equal(got, wantDefined) {
		t.Errorf("Defined = %q,\nwant %q", got, wantDefined)
	}
	if len(wantClasses) < 20 || len(wantDefined) < 20 {
		t.Fatalf("the address book has %d classes and %d defined classes; too few to be it",
			len(wantClasses), len(wantDefined))
	}

	checkAddressBookTop(t, c, doc)
	checkAddressBookClasses(t, c)
	checkAddressBookFields(t, c)
	checkAddressBookAccess(t, c)
}

func checkAddressBookTop(t *testing.T, c *Contract, doc []byte) {
	t.Helper()
	if c.ServiceID != 4294929430 || c.Version < 1 || c.Name != "addressbook" ||
		c.MaxQueryDepth != 5 {
		t.Errorf("service %d %q version %d depth %d", c.ServiceID, c.Name, c.Version,
			c.MaxQueryDepth)
	}
	if string(c.Raw) != string(doc) {
		t.Error("Raw is not the parsed document")
	}
	for _, o := range c.CORSOrigins {
		if !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") && o != "*" {
			t.Errorf("CORS origin %q has no scheme", o)
		}
	}
	want := []ListenRelation{{ClassName: "public_assets", Relations: []string{"follow", "subscribe"},
		DestinationClass: "incoming_assets", FeedClass: "feed_assets"}}
	if !equalListenRelations(c.ListenRelations, want) {
		t.Errorf("ListenRelations = %+v, want %+v", c.ListenRelations, want)
	}
}

func checkAddressBookClasses(t *testing.T, c *Contract) {
	t.Helper()
	for _, tt := range []struct {
		class     string
		kind      ClassKind
		items     string
		cacheOnly time.Duration
	}{
		{"member", ObjectClass, "", 0},
		{"person", ObjectClass, "", 0},
		{"twitter_account", ObjectClass, "", 0}, // $defs without $id
		{"messages", ArrayClass, "message", 0},  // $defs without $id, refers forward
		{"network_links_inbound", ArrayClass, "network_link_inbound", 0},
		{"network_assets", ArrayClass, "asset", 0},
		{"incoming_assets", ArrayClass, "asset", 3 * 24 * time.Hour},
		{"feed_assets", ArrayClass, "asset", 7 * 24 * time.Hour},
	} {
		cl, ok := c.Class(tt.class)
		if !ok {
			t.Errorf("no class %q", tt.class)
			continue
		}
		if cl.Kind != tt.kind || cl.CacheOnly != tt.cacheOnly || cl.ID != "" {
			t.Errorf("%s: kind %v, cache-only %v, $id %q", tt.class, cl.Kind, cl.CacheOnly, cl.ID)
		}
		if tt.items != "" && (cl.Items == nil || cl.Items.Name != tt.items ||
			cl.Items != c.Defined[tt.items]) {
			t.Errorf("%s: items %+v, want the defined class %q", tt.class, cl.Items, tt.items)
		}
		if cl.Record() == nil || cl.Record().Kind != ObjectClass {
			t.Errorf("%s: Record() = %+v", tt.class, cl.Record())
		}
	}
	if id := c.Defined["network_link_inbound"].ID; id != "/schemas/network_inbound" {
		t.Errorf("network_link_inbound has $id %q", id)
	}
}

func checkAddressBookFields(t *testing.T, c *Contract) {
	t.Helper()
	asset := c.Defined["asset"]
	f := mustField(t, asset, "asset_id")
	if f.Type != TypeUUID || !f.PrimaryKey || !f.Index || !f.Counter || !f.Required ||
		!f.Indexed() {
		t.Errorf("asset_id: %+v", f)
	}
	if f := mustField(t, asset, "video_thumbnails"); f.Type != TypeArray ||
		f.ItemClass != c.Defined["video_thumbnail"] || f.ItemType != 0 || f.Indexed() {
		t.Errorf("video_thumbnails: %+v", f)
	}
	if f := mustField(t, asset, "copyright_years"); f.ItemType != TypeInteger {
		t.Errorf("copyright_years: %+v", f)
	}
	if f := mustField(t, asset, "encoding_profiles"); f.Type != TypeArray {
		t.Errorf("encoding_profiles, an obsolete array, should stay: %+v", f)
	}
	if f := mustField(t, asset, "created_timestamp"); f.Type != TypeDateTime || f.Indexed() {
		t.Errorf("created_timestamp: %+v", f)
	}
	if _, ok := c.Defined["channel"].Field("name"); ok {
		t.Error("channel.name is an obsolete scalar and should be gone")
	}
	if !slices.IsSortedFunc(asset.Fields, func(a, b *Field) int {
		return strings.Compare(a.Name, b.Name)
	}) {
		t.Error("asset fields are not sorted by name")
	}

	for class, want := range map[string][]string{
		"person":     {"given_name", "family_name", "email"},
		"annotation": {"annotation_id", "asset_id"}, // "value" is no field
		"asset":      {"created_timestamp", "asset_id", "asset_type"},
	} {
		cl := c.Classes[class]
		if cl == nil {
			cl = c.Defined[class]
		}
		if !slices.Equal(cl.Required, want) {
			t.Errorf("%s.Required = %q, want %q", class, cl.Required, want)
		}
	}
}

func checkAddressBookAccess(t *testing.T, c *Contract) {
	t.Helper()
	want := AccessControl{
		{Entity: EntityMember, Permission: PermissionRead},
		{Entity: EntityMember, Permission: PermissionUpdate},
		{Entity: EntityMember, Permission: PermissionDelete},
		{Entity: EntityNetwork, Permission: PermissionRead, Distance: 1,
			Relations: []string{"friend", "family"}, SourceSignatureRequired: true},
		{Entity: EntityService, Permission: PermissionRead},
	}
	if got := c.Classes["person"].Access; !equalAccess(got, want) {
		t.Errorf("person access:\n%+v\nwant\n%+v", got, want)
	}

	email := mustField(t, c.Classes["person"], "email")
	wantEmail := AccessControl{{Entity: EntityService, Permission: PermissionSearch,
		Match: MatchExact, CaseSensitive: false}}
	if !equalAccess(email.Access, wantEmail) {
		t.Errorf("person.email access: %+v", email.Access)
	}
}

func TestParseLegacyContract(t *testing.T) {
	problems := problemsOf(t, readShared(t, "contracts", "dummy-service-schema.json"))
	for _, want := range []Problem{
		{"cors_origins", "required key is missing"},
		{"listen_relations", "required key is missing"},
		{"version", "0 is out of range: must be from 1 to 2147483647"},
	} {
		if !slices.Contains(problems, want) {
			t.Errorf("no problem %q in\n%s", want, listProblems(problems))
		}
	}
	if !slices.ContainsFunc(problems, func(p Problem) bool {
		return p.Path == "jsonschema.properties.member.#accesscontrol" &&
			strings.Contains(p.Message, "list form")
	}) {
		t.Errorf("the old access control syntax is not named:\n%s", listProblems(problems))
	}
}

func TestParseGoodNotes(t *testing.T) {
	c := parseGoodNotes(t, nil)

	wantClasses := []string{"datalogs", "incoming_notes", "member", "network_links",
		"note_feed", "notes", "public_notes", "settings"}
	if got := c.ClassNames(); !slices.Equal(got, wantClasses) {
		t.Errorf("ClassNames() = %q, want %q", got, wantClasses)
	}
	if c.ServiceID != 4294967100 || c.Version != 2 || c.MaxQueryDepth != 2 ||
		c.SchemaID != "https://service.service-4294967100.byoda.test/service/notes" {
		t.Errorf("contract %+v", c)
	}
	wantOrigins := []string{"https://notes.example.test", "http://localhost:8080", "*"}
	if !slices.Equal(c.CORSOrigins, wantOrigins) {
		t.Errorf("CORSOrigins = %q, want %q", c.CORSOrigins, wantOrigins)
	}
	wantListen := []ListenRelation{{ClassName: "notes", Relations: []string{"friend", "family"},
		DestinationClass: "incoming_notes", FeedClass: "note_feed"}}
	if !equalListenRelations(c.ListenRelations, wantListen) {
		t.Errorf("ListenRelations = %+v", c.ListenRelations)
	}

	checkNotesClasses(t, c)
	checkNotesFields(t, c)
	checkNotesAccess(t, c)
}

func checkNotesClasses(t *testing.T, c *Contract) {
	t.Helper()
	note := c.Defined["note"]
	for _, name := range []string{"notes", "incoming_notes", "note_feed", "public_notes"} {
		if cl := c.Classes[name]; cl.Kind != ArrayClass || cl.Items != note {
			t.Errorf("%s: %+v", name, cl)
		}
	}
	if d := c.Classes["incoming_notes"].CacheOnly; d != 72*time.Hour {
		t.Errorf("incoming_notes is cache-only for %v, want 72h", d)
	}
	if d := c.Classes["note_feed"].CacheOnly; d != DefaultCacheOnly {
		t.Errorf("note_feed is cache-only for %v, want the default week", d)
	}
	if d := c.Classes["notes"].CacheOnly; d != 0 {
		t.Errorf("notes is cache-only for %v", d)
	}

	settings := c.Classes["settings"]
	if settings.Kind != ObjectClass || settings.Description == "" || settings.Record() != settings {
		t.Errorf("settings: %+v", settings)
	}
	if got := fieldNames(settings); !slices.Equal(got, []string{"font_scale", "last_seen",
		"nick", "notes_per_page", "show_shared", "theme"}) {
		t.Errorf("settings fields %q (old_theme is obsolete)", got)
	}
	if note.ID != "/schemas/note" || c.Defined["attachment"].ID != "/schemas/note-attachment" {
		t.Errorf("$ids %q %q", note.ID, c.Defined["attachment"].ID)
	}
}

func checkNotesFields(t *testing.T, c *Contract) {
	t.Helper()
	note := c.Defined["note"]
	for _, tt := range []struct {
		field                             string
		typ                               FieldType
		required, index, counter, primary bool
	}{
		{"note_id", TypeUUID, true, true, false, true},
		{"created_timestamp", TypeDateTime, true, true, false, false},
		{"title", TypeString, true, false, false, false},
		{"body", TypeString, false, false, false, false},
		{"notebook", TypeString, false, false, true, false},
		{"author_id", TypeUUID, false, false, true, false}, // uuid by its regex
		{"stars", TypeInteger, false, true, true, false},
		{"tags", TypeArray, false, false, false, false},
		{"attachments", TypeArray, false, false, false, false},
	} {
		f := mustField(t, note, tt.field)
		if f.Type != tt.typ || f.Required != tt.required || f.Index != tt.index ||
			f.Counter != tt.counter || f.PrimaryKey != tt.primary {
			t.Errorf("note.%s = %+v", tt.field, f)
		}
	}
	if f := mustField(t, note, "tags"); f.ItemType != TypeString || f.ItemClass != nil {
		t.Errorf("tags: item type %v (a uuid format on items changes nothing)", f.ItemType)
	}
	if f := mustField(t, note, "attachments"); f.ItemClass != c.Defined["attachment"] {
		t.Errorf("attachments: item class %+v", f.ItemClass)
	}
	if got := note.Required; !slices.Equal(got, []string{"note_id", "created_timestamp", "title"}) {
		t.Errorf("note.Required = %q", got)
	}
	if f := mustField(t, c.Defined["datalog"], "remote_addr"); f.Format != "ipv4" ||
		f.Type != TypeString {
		t.Errorf("remote_addr: %+v", f)
	}
}

func checkNotesAccess(t *testing.T, c *Contract) {
	t.Helper()
	want := AccessControl{
		{Entity: EntityMember, Permission: PermissionRead},
		{Entity: EntityMember, Permission: PermissionUpdate},
		{Entity: EntityMember, Permission: PermissionDelete},
		{Entity: EntityMember, Permission: PermissionAppend},
		{Entity: EntityMember, Permission: PermissionSubscribe},
		{Entity: EntityAnyMember, Permission: PermissionAppend},
		{Entity: EntityNetwork, Permission: PermissionRead, Distance: 1,
			Relations: []string{"friend", "family"}},
		{Entity: EntityNetwork, Permission: PermissionSubscribe, Relations: []string{"friend"}},
	}
	if got := c.Classes["notes"].Access; !equalAccess(got, want) {
		t.Errorf("notes access:\n%+v\nwant\n%+v", got, want)
	}

	nick := mustField(t, c.Classes["settings"], "nick")
	wantNick := AccessControl{{Entity: EntityService, Permission: PermissionSearch,
		Match: MatchStartsWith}}
	if !equalAccess(nick.Access, wantNick) {
		t.Errorf("settings.nick access: %+v", nick.Access)
	}
	if !c.Classes["settings"].Access.Has(EntityService, PermissionRead) ||
		c.Classes["settings"].Access.Has(EntityService, PermissionUpdate) {
		t.Errorf("settings access: %+v", c.Classes["settings"].Access)
	}
}

// TestParseVariants changes good-notes.json in one place and checks the
// outcome.
func TestParseVariants(t *testing.T) {
	tests := []struct {
		name    string
		change  func(doc map[string]any)
		path    string // of the one problem; none when empty
		message string
		check   func(t *testing.T, c *Contract)
	}{
		{name: "cache_only in seconds", change: setClassProps("incoming_notes", "cache_only:90"),
			check: wantCacheOnly("incoming_notes", 90*time.Second)},
		{name: "cache_only in minutes", change: setClassProps("incoming_notes", "cache_only:15m"),
			check: wantCacheOnly("incoming_notes", 15*time.Minute)},
		{name: "cache_only in hours", change: setClassProps("incoming_notes", []any{"cache_only", "2h"}),
			check: wantCacheOnly("incoming_notes", 2*time.Hour)},
		{name: "cache_only in weeks", change: setClassProps("incoming_notes", "cache_only:2w"),
			check: wantCacheOnly("incoming_notes", 14*24*time.Hour)},
		{name: "cache_only zero", change: setClassProps("incoming_notes", "cache_only:0"),
			path: "jsonschema.properties.incoming_notes.#properties[0]", message: "positive"},
		{name: "cache_only without digits", change: setClassProps("incoming_notes", "cache_only:d"),
			path: "jsonschema.properties.incoming_notes.#properties[0]", message: "whole number"},
		{name: "cache_only empty", change: setClassProps("incoming_notes", "cache_only:"),
			path: "jsonschema.properties.incoming_notes.#properties[0]", message: "whole number"},
		{name: "cache_only too long",
			change: setClassProps("incoming_notes", "cache_only:99999999999999w"),
			path:   "jsonschema.properties.incoming_notes.#properties[0]", message: "ten years"},
		{name: "cache_only on an object", change: setClassProps("settings", "cache_only"),
			path: "jsonschema.properties.settings.#properties[0]", message: "array classes only"},
		{name: "cache_only on a field", change: setFieldProps("note", "title", "cache_only"),
			path:    "jsonschema.$defs.note.properties.title.#properties[0]",
			message: "not to fields"},
		{name: "index on a class", change: setClassProps("notes", "index"),
			path: "jsonschema.properties.notes.#properties[0]", message: "not to classes"},
		{name: "index with a value", change: setFieldProps("note", "title", "index:yes"),
			path:    "jsonschema.$defs.note.properties.title.#properties[0]",
			message: "index takes no value"},
		{name: "property of three", change: setFieldProps("note", "title", []any{"a", "b", "c"}),
			path:    "jsonschema.$defs.note.properties.title.#properties[0]",
			message: `"name:value"`},
		{name: "counter on an integer", change: setFieldProps("note", "stars", "counter"),
			check: func(t *testing.T, c *Contract) {}},
		{name: "counter on a real number", change: func(doc map[string]any) {
			field(doc, "note", "stars")["type"] = "number"
		}, path: "jsonschema.$defs.note.properties.stars.#properties[1]", message: "not a number"},
		{name: "hash key unknown", change: func(doc map[string]any) {
			field(doc, "note", "title")["#index"] = true
		}, path: "jsonschema.$defs.note.properties.title.#index", message: "unknown key"},
		{name: "obsolete not a boolean", change: func(doc map[string]any) {
			field(doc, "note", "title")["#obsolete"] = "yes"
		}, path: "jsonschema.$defs.note.properties.title.#obsolete", message: "true or false"},
		{name: "obsolete array stays", change: func(doc map[string]any) {
			field(doc, "note", "tags")["#obsolete"] = true
		}, check: func(t *testing.T, c *Contract) {
			mustField(t, c.Defined["note"], "tags")
		}},
		{name: "field without type", change: func(doc map[string]any) {
			delete(field(doc, "note", "title"), "type")
		}, path: "jsonschema.$defs.note.properties.title", message: `"type" is missing`},
		{name: "items with $ref and type", change: func(doc map[string]any) {
			field(doc, "note", "tags")["items"] = map[string]any{"type": "string",
				"$ref": "#/schemas/attachment"}
		}, path: "jsonschema.$defs.note.properties.tags.items", message: "both"},
		{name: "array of arrays", change: func(doc map[string]any) {
			field(doc, "note", "tags")["items"] = map[string]any{"type": "array"}
		}, path: "jsonschema.$defs.note.properties.tags.items", message: `unknown type "array"`},
		{name: "ref to an array class", change: func(doc map[string]any) {
			defs(doc)["more_notes"] = map[string]any{"type": "array",
				"items": map[string]any{"$ref": "#/schemas/note"}}
			class(doc, "notes")["items"] = map[string]any{"$ref": "#/schemas/more_notes"}
		}, path: "jsonschema.properties.notes.items.$ref", message: "is an array class"},
		{name: "self reference", change: func(doc map[string]any) {
			field(doc, "attachment", "size")["type"] = "array"
			field(doc, "attachment", "size")["items"] = map[string]any{"$ref": "/schemas/attachment"}
		}, path: "jsonschema.$defs.attachment.properties.size.items.$ref",
			message: "circular reference: attachment -> attachment"},
		{name: "defs without $id are served", change: func(doc map[string]any) {
			defs(doc)["archive"] = map[string]any{"type": "array",
				"items": map[string]any{"$ref": "#/schemas/note"}}
		}, check: func(t *testing.T, c *Contract) {
			if cl, ok := c.Class("archive"); !ok || cl.Items != c.Defined["note"] {
				t.Errorf("archive: %+v", cl)
			}
		}},
		{name: "defs without $id clashes", change: func(doc map[string]any) {
			defs(doc)["notes"] = map[string]any{"type": "array",
				"items": map[string]any{"$ref": "#/schemas/note"}}
		}, path: "jsonschema.$defs.notes", message: "defined twice"},
		{name: "array with $id", change: func(doc map[string]any) {
			defs(doc)["archive"] = map[string]any{"$id": "/schemas/archive", "type": "array",
				"items": map[string]any{"$ref": "#/schemas/note"}}
		}, path: "jsonschema.$defs.archive.$id", message: "must be an object"},
		{name: "class names differ in case", change: func(doc map[string]any) {
			props(doc)["Notes"] = class(doc, "public_notes")
		}, path: "jsonschema.properties.notes", message: `differs from "Notes" only in case`},
		{name: "long class name", change: func(doc map[string]any) {
			props(doc)[strings.Repeat("n", 64)] = class(doc, "public_notes")
		}, path: "jsonschema.properties." + strings.Repeat("n", 64), message: "longer than 63"},
		{name: "object class without fields", change: func(doc map[string]any) {
			class(doc, "settings")["properties"] = map[string]any{}
		}, path: "jsonschema.properties.settings.properties", message: "at least one field"},
		{name: "required names no field", change: func(doc map[string]any) {
			class(doc, "settings")["required"] = []any{"nick", "colour", "nick"}
		}, check: func(t *testing.T, c *Contract) {
			if got := c.Classes["settings"].Required; !slices.Equal(got, []string{"nick"}) {
				t.Errorf("Required = %q", got)
			}
		}},
		{name: "required not a list", change: func(doc map[string]any) {
			class(doc, "settings")["required"] = "nick"
		}, path: "jsonschema.properties.settings.required", message: "must be a list"},
		{name: "relation on a member right", change: func(doc map[string]any) {
			access(doc, "notes")["member"] = map[string]any{"permissions": []any{
				map[string]any{"permission": "read", "relation": "friend"}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.member.permissions[0].relation",
			message: "network rights only"},
		{name: "search with distance", change: func(doc map[string]any) {
			access(doc, "notes")["network"] = map[string]any{"permissions": []any{
				map[string]any{"permission": "search", "distance": 1}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.network.permissions[0].distance",
			message: "search right takes no distance"},
		{name: "match on read", change: func(doc map[string]any) {
			access(doc, "notes")["service"] = map[string]any{"permissions": []any{
				map[string]any{"permission": "read", "match": "exact"}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.service.permissions[0].match",
			message: "search rights only"},
		{name: "unknown match", change: func(doc map[string]any) {
			access(doc, "notes")["service"] = map[string]any{"permissions": []any{
				map[string]any{"permission": "search", "match": "fuzzy"}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.service.permissions[0].match",
			message: `unknown match "fuzzy"`},
		{name: "distance not whole", change: func(doc map[string]any) {
			access(doc, "notes")["network"] = map[string]any{"permissions": []any{
				map[string]any{"permission": "read", "distance": 1.5}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.network.permissions[0].distance",
			message: "must be an integer, not 1.5"},
		{name: "distance too far", change: func(doc map[string]any) {
			access(doc, "notes")["network"] = map[string]any{"permissions": []any{
				map[string]any{"permission": "read", "distance": 11}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.network.permissions[0].distance",
			message: "out of range"},
		{name: "permission object without permission", change: func(doc map[string]any) {
			access(doc, "notes")["network"] = map[string]any{"permissions": []any{
				map[string]any{"distance": 1}}}
		}, path: "jsonschema.properties.notes.#accesscontrol.network.permissions[0].permission",
			message: "required key is missing"},
		{name: "entity without permissions", change: func(doc map[string]any) {
			access(doc, "notes")["network"] = map[string]any{}
		}, path: "jsonschema.properties.notes.#accesscontrol.network.permissions",
			message: "required key is missing"},
		{name: "old entity syntax", change: func(doc map[string]any) {
			access(doc, "notes")["network"] = []any{"read"}
		}, path: "jsonschema.properties.notes.#accesscontrol.network",
			message: `{"permissions": ["read"]}`},
		{name: "max_query_depth defaults to 1", change: func(doc map[string]any) {
			delete(doc, "max_query_depth")
		}, check: func(t *testing.T, c *Contract) {
			if c.MaxQueryDepth != 1 {
				t.Errorf("MaxQueryDepth = %d", c.MaxQueryDepth)
			}
		}},
		{name: "max_query_depth zero", change: func(doc map[string]any) {
			doc["max_query_depth"] = 0
		}, check: func(t *testing.T, c *Contract) {
			if c.MaxQueryDepth != 0 {
				t.Errorf("MaxQueryDepth = %d", c.MaxQueryDepth)
			}
		}},
		{name: "empty name", change: func(doc map[string]any) { doc["name"] = " " },
			path: "name", message: "must not be empty"},
		{name: "no cors origins", change: func(doc map[string]any) { doc["cors_origins"] = []any{} },
			path: "cors_origins", message: "at least one"},
		{name: "cors origin with space", change: func(doc map[string]any) {
			doc["cors_origins"] = []any{"a b"}
		}, path: "cors_origins[0]", message: "white space"},
		{name: "schema without $id", change: func(doc map[string]any) {
			delete(doc["jsonschema"].(map[string]any), "$id")
		}, path: "jsonschema.$id", message: "required key is missing"},
		{name: "listen relation destination too small", change: func(doc map[string]any) {
			doc["listen_relations"].([]any)[0].(map[string]any)["destination_class"] = "datalogs"
		}, path: "listen_relations[0].destination_class",
			message: `"datalogs" has no field attachments, author_id, body,`},
		{name: "listen relation without feed", change: func(doc map[string]any) {
			delete(doc["listen_relations"].([]any)[0].(map[string]any), "feed_class")
		}, path: "listen_relations[0].feed_class", message: "required key is missing"},
		{name: "listen relation typo", change: func(doc map[string]any) {
			doc["listen_relations"].([]any)[0].(map[string]any)["relation"] = []any{"friend"}
		}, path: "listen_relations[0].relation", message: "unknown key"},
		{name: "member_id of the wrong type", change: func(doc map[string]any) {
			field(doc, "network_link", "member_id")["type"] = "integer"
		}, path: "jsonschema.properties.network_links",
			message: `field "member_id" of the records of "network_links" must be of type uuid`},
		{name: "member is an array", change: func(doc map[string]any) {
			props(doc)["member"] = class(doc, "public_notes")
		}, path: "jsonschema.properties.member", message: `"member" must be an object class`},
		{name: "key not in the signed set", change: func(doc map[string]any) {
			doc["Name"] = "notes"
		}, path: "Name", message: "unknown top-level key"},
		{name: "odd key quoted", change: func(doc map[string]any) {
			doc["a.b"] = 1
		}, path: `["a.b"]`, message: "unknown top-level key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseChanged(t, tt.change)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				tt.check(t, c)
				return
			}
			problems := problemsFromError(t, err)
			if len(problems) != 1 || problems[0].Path != tt.path ||
				!strings.Contains(problems[0].Message, tt.message) {
				t.Errorf("problems:\n%s\nwant one at %s with %q", listProblems(problems),
					tt.path, tt.message)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	doc := make([]byte, MaxSize+1)
	problems := problemsOf(t, doc)
	if len(problems) != 1 || problems[0].Path != "" ||
		!strings.Contains(problems[0].Message, "larger than") {
		t.Errorf("problems: %s", listProblems(problems))
	}
}

func TestParseDuplicateKey(t *testing.T) {
	// A duplicate key would make what is signed differ from what is loaded.
	doc := []byte(`{"name": "a", "name": "b"}`)
	problems := problemsOf(t, doc)
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "duplicate") {
		t.Errorf("problems: %s", listProblems(problems))
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "contracts", "*.json"))
	files = append(files, filepath.Join("..", "..", "..", "shared", "testdata", "contracts",
		"addressbook.json"))
	for _, name := range files {
		if doc, err := os.ReadFile(name); err == nil {
			f.Add(doc)
		}
	}

	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error %v is not a *ValidationError with problems", err)
			}
			return
		}
		checkConsistent(t, c)
	})
}

// FuzzParseEdit replaces one value of good-notes.json, the one at position at
// in depth-first order, with the JSON value replacement: this reaches the
// checks behind the JSON syntax far more often than changing bytes does.
func FuzzParseEdit(f *testing.F) {
	base := readTestdata(f, filepath.Join("contracts", "good-notes.json"))
	for _, seed := range []struct {
		at          uint16
		replacement string
	}{
		{0, `null`},
		{40, `{"type": "array"}`},
		{80, `"#/schemas/note"`},
		{120, `["cache_only", "1x"]`},
		{200, `{"$ref": "#/schemas/settings"}`},
		{300, `{"member": {"permissions": [{"permission": "search", "distance": 2}]}}`},
	} {
		f.Add(seed.at, seed.replacement)
	}

	f.Fuzz(func(t *testing.T, at uint16, replacement string) {
		var repl, doc any
		if json.Unmarshal([]byte(replacement), &repl) != nil {
			return
		}
		if err := json.Unmarshal(base, &doc); err != nil {
			t.Fatal(err)
		}
		n := int(at)
		edited, err := json.Marshal(replaceNth(doc, &n, repl))
		if err != nil {
			t.Fatal(err)
		}

		c, err := Parse(edited)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error %v is not a *ValidationError with problems", err)
			}
			return
		}
		checkConsistent(t, c)
	})
}

// replaceNth returns v with its n-th value in depth-first order, counting v
// itself as the 0th and object members in key order, replaced by repl.
func replaceNth(v any, n *int, repl any) any {
	if *n == 0 {
		*n = -1
		return repl
	}
	*n--
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if *n < 0 {
				break
			}
			v[k] = replaceNth(v[k], n, repl)
		}
	case []any:
		for i := range v {
			if *n < 0 {
				break
			}
			v[i] = replaceNth(v[i], n, repl)
		}
	}
	return v
}

// checkConsistent checks what callers of Parse rely on.
func checkConsistent(t *testing.T, c *Contract) {
	for _, name := range c.ClassNames() {
		cl := c.Classes[name]
		if cl == nil || cl.Name != name || cl.ID != "" {
			t.Fatalf("class %q: %+v", name, cl)
		}
		rec := cl.Record()
		if rec == nil || rec.Kind != ObjectClass {
			t.Fatalf("class %q has no record class", name)
		}
		for _, f := range rec.Fields {
			if f.Type == TypeArray && (f.ItemClass == nil) == (f.ItemType == 0) {
				t.Fatalf("%s.%s: array field with item type %v and item class %v",
					name, f.Name, f.ItemType, f.ItemClass)
			}
		}
	}
	for _, lr := range c.ListenRelations {
		for _, name := range []string{lr.ClassName, lr.DestinationClass, lr.FeedClass} {
			if cl, ok := c.Class(name); !ok || cl.Kind != ArrayClass {
				t.Fatalf("listen relation %+v names %q, which is no array class", lr, name)
			}
		}
	}
}

// parseGoodNotes parses testdata/contracts/good-notes.json after change.
func parseGoodNotes(t *testing.T, change func(map[string]any)) *Contract {
	t.Helper()
	c, err := parseChanged(t, change)
	if err != nil {
		t.Fatalf("Parse(good-notes.json): %v", err)
	}
	return c
}

func parseChanged(t *testing.T, change func(map[string]any)) (*Contract, error) {
	t.Helper()
	doc := readTestdata(t, filepath.Join("contracts", "good-notes.json"))
	if change != nil {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		var err error
		if doc, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	return Parse(doc)
}

func props(doc map[string]any) map[string]any {
	return doc["jsonschema"].(map[string]any)["properties"].(map[string]any)
}

func defs(doc map[string]any) map[string]any {
	return doc["jsonschema"].(map[string]any)["$defs"].(map[string]any)
}

func class(doc map[string]any, name string) map[string]any {
	if cl, ok := props(doc)[name]; ok {
		return cl.(map[string]any)
	}
	return defs(doc)[name].(map[string]any)
}

func field(doc map[string]any, className, name string) map[string]any {
	return class(doc, className)["properties"].(map[string]any)[name].(map[string]any)
}

func access(doc map[string]any, className string) map[string]any {
	return class(doc, className)["#accesscontrol"].(map[string]any)
}

func setClassProps(className string, specs ...any) func(map[string]any) {
	return func(doc map[string]any) { class(doc, className)["#properties"] = specs }
}

func setFieldProps(className, name string, specs ...any) func(map[string]any) {
	return func(doc map[string]any) { field(doc, className, name)["#properties"] = specs }
}

func wantCacheOnly(className string, d time.Duration) func(*testing.T, *Contract) {
	return func(t *testing.T, c *Contract) {
		if got := c.Classes[className].CacheOnly; got != d {
			t.Errorf("%s is cache-only for %v, want %v", className, got, d)
		}
	}
}

// problemsOf returns the problems Parse finds in doc, which must be some.
func problemsOf(t *testing.T, doc []byte) []Problem {
	t.Helper()
	_, err := Parse(doc)
	return problemsFromError(t, err)
}

func problemsFromError(t *testing.T, err error) []Problem {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse: %v, want a *ValidationError", err)
	}
	return ve.Problems
}

func listProblems(problems []Problem) string {
	var b strings.Builder
	for _, p := range problems {
		b.WriteString("\t" + p.String() + "\n")
	}
	return b.String()
}

func mustField(t *testing.T, cl *Class, name string) *Field {
	t.Helper()
	f, ok := cl.Field(name)
	if !ok {
		t.Fatalf("class %s has no field %q", cl.Name, name)
	}
	return f
}

func fieldNames(cl *Class) []string {
	var names []string
	for _, f := range cl.Fields {
		names = append(names, f.Name)
	}
	return names
}

func equalAccess(a, b AccessControl) bool {
	return slices.EqualFunc(a, b, func(x, y Right) bool {
		return x.Entity == y.Entity && x.Permission == y.Permission &&
			x.Distance == y.Distance && slices.Equal(x.Relations, y.Relations) &&
			x.SourceSignatureRequired == y.SourceSignatureRequired &&
			x.AnonymizedResponses == y.AnonymizedResponses && x.Match == y.Match &&
			x.CaseSensitive == y.CaseSensitive
	})
}

func equalListenRelations(a, b []ListenRelation) bool {
	return slices.EqualFunc(a, b, func(x, y ListenRelation) bool {
		return x.ClassName == y.ClassName && slices.Equal(x.Relations, y.Relations) &&
			x.DestinationClass == y.DestinationClass && x.FeedClass == y.FeedClass
	})
}
