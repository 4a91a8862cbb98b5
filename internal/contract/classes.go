package contract

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// uuidPattern is the "regex" that, like format "uuid", makes a string field a
// uuid field.
const uuidPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`

// maxCacheOnly bounds the time span of cache_only, far beyond any sensible
// cache, so that the arithmetic cannot overflow.
const maxCacheOnly = 10 * 365 * 24 * time.Hour

var namePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// The keys starting with '#' that a class or a field may have. Keys without
// '#' that Byoda does not use are JSON Schema keywords and are ignored.
var (
	classHashKeys = []string{"#accesscontrol", "#properties"}
	fieldHashKeys = []string{"#accesscontrol", "#properties", "#obsolete"}
)

// schema reads the jsonschema object and the classes in it.
func (l *loader) schema(v any, at jsonPath, c *Contract) {
	obj, ok := l.object(v, at)
	if !ok {
		return
	}
	l.required(obj, at, "$id", "properties")
	c.SchemaID = l.text(obj, "$id", at)

	props := map[string]any{}
	if pv, ok := obj["properties"]; ok {
		props, _ = l.object(pv, at.key("properties"))
	}
	l.defs, l.defsAt = map[string]any{}, at.key("$defs")
	if dv, ok := obj["$defs"]; ok {
		l.defs, _ = l.object(dv, l.defsAt)
	}

	l.loadDefs(c, props)
	propsAt := at.key("properties")
	for _, name := range slices.Sorted(maps.Keys(props)) {
		c.Classes[name] = l.class(name, props[name], propsAt.key(name), false)
	}

	l.checkCaseClash(slices.Collect(maps.Keys(c.Classes)), func(name string) jsonPath {
		if isKey(props, name) {
			return propsAt.key(name)
		}
		return l.defsAt.key(name)
	}, "class")
	l.checkPodClasses(c, propsAt)
}

// loadDefs builds every $defs entry, in sorted order so that problems come
// out the same on every run. Entries may refer to entries after them.
func (l *loader) loadDefs(c *Contract, props map[string]any) {
	for _, name := range slices.Sorted(maps.Keys(l.defs)) {
		cl := l.def(name, l.defsAt.key(name))
		switch {
		case cl == nil:
			// Already reported. Keep the name, so that it does not also
			// show up as missing.
			c.Classes[name] = nil
		case cl.ID != "":
			c.Defined[name] = cl
		case isKey(props, name):
			l.fail(l.defsAt.key(name), "class %q is defined twice: here without $id, "+
				"which the Data API serves, and in jsonschema.properties", name)
		default:
			c.Classes[name] = cl
		}
	}
}

// def returns the $defs entry name, building it on first use. from is where
// the reference to it stands, for the messages about cycles and unknown names.
func (l *loader) def(name string, from jsonPath) *Class {
	if cl, ok := l.resolved[name]; ok {
		return cl
	}
	if i := slices.Index(l.resolving, name); i >= 0 {
		cycle := append(slices.Clone(l.resolving[i:]), name)
		l.fail(from, "circular reference: %s", strings.Join(cycle, " -> "))
		return nil
	}
	raw, ok := l.defs[name]
	if !ok {
		l.fail(from, "unknown class %q: $ref must name a key of jsonschema.$defs", name)
		return nil
	}

	l.resolving = append(l.resolving, name)
	cl := l.class(name, raw, l.defsAt.key(name), true)
	l.resolving = l.resolving[:len(l.resolving)-1]
	l.resolved[name] = cl
	return cl
}

// class builds the class name from raw, found at path at; inDefs says whether
// it is a $defs entry. It returns nil for a class too broken to use.
func (l *loader) class(name string, raw any, at jsonPath, inDefs bool) *Class {
	l.checkName(name, at, "class")
	obj, ok := l.object(raw, at)
	if !ok {
		return nil
	}
	l.rejectUnknownHashKeys(obj, at, classHashKeys)

	cl := &Class{Name: name, Description: l.optionalString(obj, "description", at), at: at}
	if inDefs {
		if _, ok := obj["$id"]; ok {
			cl.ID = l.text(obj, "$id", at)
		}
	}
	l.classKind(cl, obj, at)
	if cl.ID != "" && cl.Kind == ArrayClass {
		l.fail(at.key("$id"), "a $defs entry with an $id is a record type, so it must be "+
			"an object; leave out $id to serve an array class from $defs")
	}

	if av, ok := obj["#accesscontrol"]; ok {
		cl.Access = l.access(av, at.key("#accesscontrol"))
	}
	if pv, ok := obj["#properties"]; ok {
		l.classProperties(cl, l.propSpecs(pv, at.key("#properties")))
	}
	if cl.Kind == 0 {
		return nil
	}
	return cl
}

// classKind reads the type of a class and what goes with it: the fields of
// an object class, the items of an array class.
func (l *loader) classKind(cl *Class, obj map[string]any, at jsonPath) {
	typ, ok := l.typeName(obj, at)
	if !ok {
		return
	}

	switch typ {
	case "object":
		cl.Kind = ObjectClass
		l.objectFields(cl, obj, at)
	case "array":
		cl.Kind = ArrayClass
		cl.Items = l.arrayItems(obj, at)
	case "string", "integer", "number", "boolean":
		l.fail(at, "a data class must be an object or an array, not a %s: "+
			"a scalar gets no table", typ)
	default:
		l.fail(at, "unknown type %q", typ)
	}
}

// typeName returns the "type" of a class or field, which is required.
func (l *loader) typeName(obj map[string]any, at jsonPath) (string, bool) {
	v, ok := obj["type"]
	if !ok {
		l.fail(at, `"type" is missing`)
		return "", false
	}
	return l.str(v, at.key("type"))
}

// objectFields reads the fields and required list of an object class.
func (l *loader) objectFields(cl *Class, obj map[string]any, at jsonPath) {
	cl.byName = map[string]*Field{}
	pv, ok := obj["properties"]
	if !ok {
		l.fail(at.key("properties"), "an object class needs its fields under properties")
		return
	}
	props, ok := l.object(pv, at.key("properties"))
	if !ok {
		return
	}
	if len(props) == 0 {
		l.fail(at.key("properties"), "an object class needs at least one field")
	}

	propsAt := at.key("properties")
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if f := l.field(name, props[name], propsAt.key(name)); f != nil {
			cl.Fields = append(cl.Fields, f)
			cl.byName[name] = f
		}
	}
	l.checkCaseClash(slices.Collect(maps.Keys(props)), propsAt.key, "field")

	if rv, ok := obj["required"]; ok {
		l.requiredFields(cl, rv, at.key("required"))
	}
}

// requiredFields reads the required list of an object class. Names that are
// not fields of the class are ignored, as the reference does; the address
// book contract has one.
func (l *loader) requiredFields(cl *Class, v any, at jsonPath) {
	names, _ := l.stringList(v, at)
	for _, name := range names {
		f, ok := cl.byName[name]
		if ok && !slices.Contains(cl.Required, name) {
			cl.Required = append(cl.Required, name)
			f.Required = true
		}
	}
}

// arrayItems returns the object class that the items of an array class
// refer to.
func (l *loader) arrayItems(obj map[string]any, at jsonPath) *Class {
	at = at.key("items")
	iv, ok := obj["items"]
	if !ok {
		l.fail(at, `required key is missing; an array class needs {"$ref": "#/schemas/<class>"}`)
		return nil
	}
	items, ok := l.object(iv, at)
	if !ok {
		return nil
	}

	ref, ok := items["$ref"]
	if !ok {
		l.fail(at, "an array class holds records: items must be a $ref to an object "+
			"class; scalars cannot be stored in an array class")
		return nil
	}
	return l.ref(ref, at.key("$ref"))
}

// ref resolves a $ref to an object class. The reference strips a leading '#',
// wants "/schemas/<name>" and looks name up as a key of $defs, never as an
// $id.
func (l *loader) ref(v any, at jsonPath) *Class {
	s, ok := l.str(v, at)
	if !ok {
		return nil
	}
	rest := strings.TrimPrefix(s, "#")
	name := strings.TrimPrefix(rest, "/schemas/")
	if name == rest || name == "" || strings.Contains(name, "/") {
		l.fail(at, `%q is not of the form "#/schemas/<name>"`, s)
		return nil
	}

	cl := l.def(name, at)
	if cl != nil && cl.Kind != ObjectClass {
		l.fail(at, "%q is an array class; records must be of an object class", name)
		return nil
	}
	return cl
}

// field builds a field of an object class. It returns nil for an obsolete
// scalar field, which the class no longer has, and for a broken field.
func (l *loader) field(name string, raw any, at jsonPath) *Field {
	l.checkName(name, at, "field")
	obj, ok := l.object(raw, at)
	if !ok {
		return nil
	}
	l.rejectUnknownHashKeys(obj, at, fieldHashKeys)

	f := &Field{
		Name:        name,
		Description: l.optionalString(obj, "description", at),
		Format:      l.optionalString(obj, "format", at),
	}
	l.fieldType(f, obj, at)
	if av, ok := obj["#accesscontrol"]; ok {
		f.Access = l.access(av, at.key("#accesscontrol"))
	}
	if pv, ok := obj["#properties"]; ok {
		l.fieldProperties(f, l.propSpecs(pv, at.key("#properties")))
	}

	obsolete := false
	if ov, ok := obj["#obsolete"]; ok {
		obsolete = l.boolean(ov, at.key("#obsolete"))
	}
	if f.Type == 0 || obsolete && f.Scalar() {
		return nil
	}
	return f
}

// fieldType sets the type of f from its "type", "format", "regex" and
// "items".
func (l *loader) fieldType(f *Field, obj map[string]any, at jsonPath) {
	typ, ok := l.typeName(obj, at)
	if !ok {
		return
	}

	switch typ {
	case "string":
		f.Type = TypeString
		regex := l.optionalString(obj, "regex", at)
		switch {
		case f.Format == "uuid", regex == uuidPattern:
			f.Type = TypeUUID
		case f.Format == "date-time":
			f.Type = TypeDateTime
		}
	case "integer", "number", "boolean":
		f.Type = scalarType(typ)
	case "array":
		f.Type = TypeArray
		l.fieldItems(f, obj, at)
	case "object":
		l.fail(at, "nested objects are not supported; "+
			"use an array whose items are a $ref to an object class")
	default:
		l.fail(at, "unknown type %q", typ)
	}
}

// scalarType maps the JSON Schema scalar types to field types.
func scalarType(typ string) FieldType {
	switch typ {
	case "string":
		return TypeString
	case "integer":
		return TypeInteger
	case "number":
		return TypeNumber
	case "boolean":
		return TypeBoolean
	}
	return 0
}

// fieldItems reads the items of an array field: a scalar type or a $ref.
func (l *loader) fieldItems(f *Field, obj map[string]any, at jsonPath) {
	at = at.key("items")
	iv, ok := obj["items"]
	if !ok {
		l.fail(at, "required key is missing")
		return
	}
	items, ok := l.object(iv, at)
	if !ok {
		return
	}

	ref, hasRef := items["$ref"]
	tv, hasType := items["type"]
	switch {
	case hasRef && hasType:
		l.fail(at, "items has both $ref and type; give one")
	case hasRef:
		f.ItemClass = l.ref(ref, at.key("$ref"))
	case hasType:
		typ, ok := l.str(tv, at.key("type"))
		if ok {
			f.ItemType = scalarType(typ)
		}
		if ok && f.ItemType == 0 {
			l.fail(at, "unknown type %q; an array field holds scalars (string, integer, "+
				"number, boolean) or records ($ref)", typ)
		}
	default:
		l.fail(at, `items needs a "type" or a "$ref"`)
	}
}

// propSpec is one entry of a #properties list.
type propSpec struct {
	name, value string
	hasValue    bool
	at          jsonPath
}

// propSpecs reads a #properties list, whose entries are "name",
// "name:value" or ["name", "value"].
func (l *loader) propSpecs(v any, at jsonPath) []propSpec {
	list, ok := l.list(v, at)
	if !ok {
		return nil
	}

	specs := make([]propSpec, 0, len(list))
	for i, elem := range list {
		p := propSpec{at: at.index(i)}
		switch e := elem.(type) {
		case string:
			p.name, p.value, p.hasValue = strings.Cut(e, ":")
		case []any:
			var nameOK, valueOK bool
			if len(e) == 2 {
				p.name, nameOK = e[0].(string)
				p.value, valueOK = e[1].(string)
				p.hasValue = true
			}
			if !nameOK || !valueOK {
				p.name = ""
			}
		}
		if p.name == "" {
			l.fail(p.at, `a property is "name", "name:value" or ["name", "value"]`)
			continue
		}
		specs = append(specs, p)
	}
	return specs
}

// fieldProperties applies the #properties of a field.
func (l *loader) fieldProperties(f *Field, specs []propSpec) {
	for _, p := range specs {
		switch p.name {
		case "primary_key":
			if l.noValue(p) && l.fieldTypeIn(f, p, "a uuid", TypeUUID) {
				f.PrimaryKey, f.Required = true, true
			}
		case "index":
			if l.noValue(p) && l.fieldTypeIn(f, p, "a scalar", TypeString, TypeUUID,
				TypeDateTime, TypeInteger, TypeNumber, TypeBoolean) {
				f.Index = true
			}
		case "counter":
			if l.noValue(p) && l.fieldTypeIn(f, p, "a uuid, string, date-time or integer",
				TypeUUID, TypeString, TypeDateTime, TypeInteger) {
				f.Counter = true
			}
		case "cache_only":
			l.fail(p.at, "cache_only applies to array classes, not to fields")
		default:
			l.fail(p.at, "unknown property %q; expected primary_key, index, counter "+
				"or cache_only", p.name)
		}
	}
}

// fieldTypeIn reports whether f has one of types, reporting a problem if not.
// A field whose type is itself broken passes, to keep to one problem.
func (l *loader) fieldTypeIn(f *Field, p propSpec, want string, types ...FieldType) bool {
	if f.Type == 0 || slices.Contains(types, f.Type) {
		return true
	}
	l.fail(p.at, "%s needs %s field, not %s", p.name, want, describeType(f))
	return false
}

// describeType names the type of f for messages.
func describeType(f *Field) string {
	if f.Type == TypeArray {
		return "an array"
	}
	return "a " + f.Type.String()
}

func (l *loader) noValue(p propSpec) bool {
	if p.hasValue {
		l.fail(p.at, "%s takes no value", p.name)
	}
	return !p.hasValue
}

// classProperties applies the #properties of a class.
func (l *loader) classProperties(cl *Class, specs []propSpec) {
	for _, p := range specs {
		switch p.name {
		case "cache_only":
			if cl.Kind != ArrayClass || cl.ID != "" {
				l.fail(p.at, "cache_only applies to array classes only")
				continue
			}
			if d, ok := l.timeSpan(p); ok {
				cl.CacheOnly = d
			}
		case "index", "counter", "primary_key":
			l.fail(p.at, "%s applies to scalar fields, not to classes", p.name)
		default:
			l.fail(p.at, "unknown property %q; a class takes only cache_only", p.name)
		}
	}
}

// timeSpan reads the value of cache_only: a whole number of seconds, or of
// the unit after it (s, m, h, d or w); a week without a value.
func (l *loader) timeSpan(p propSpec) (time.Duration, bool) {
	if !p.hasValue {
		return DefaultCacheOnly, true
	}

	digits, unit := p.value, time.Second
	if n := len(digits); n > 0 {
		if u, ok := timeUnits[digits[n-1]]; ok {
			digits, unit = digits[:n-1], u
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		l.fail(p.at, "time span %q must be a positive whole number followed by "+
			"s, m, h, d or w, such as 3d", p.value)
		return 0, false
	}
	if n > uint64(maxCacheOnly/unit) {
		l.fail(p.at, "time span %q is longer than ten years", p.value)
		return 0, false
	}
	return time.Duration(n) * unit, true
}

var timeUnits = map[byte]time.Duration{
	's': time.Second,
	'm': time.Minute,
	'h': time.Hour,
	'd': 24 * time.Hour,
	'w': 7 * 24 * time.Hour,
}

// checkName reports a class or field name that is not safe as (part of) an
// SQL identifier and a Go or JSON name.
func (l *loader) checkName(name string, at jsonPath, what string) {
	switch {
	case len(name) > MaxNameLength:
		l.fail(at, "%s name is longer than %d characters", what, MaxNameLength)
	case !namePattern.MatchString(name):
		l.fail(at, "%s name %q must start with a letter and hold only letters, digits "+
			"and underscores", what, name)
	case strings.HasPrefix(strings.ToLower(name), "byoda"):
		l.fail(at, "%s name %q must not start with %q, which the pod reserves",
			what, name, name[:len("byoda")])
	}
}

// checkCaseClash reports names that differ only in case: SQL identifiers
// ignore case, so their tables or columns would be one and the same.
func (l *loader) checkCaseClash(names []string, at func(string) jsonPath, what string) {
	slices.Sort(names)
	first := map[string]string{}
	for _, name := range names {
		folded := strings.ToLower(name)
		if other, ok := first[folded]; ok {
			l.fail(at(name), "%s name %q differs from %q only in case", what, name, other)
			continue
		}
		first[folded] = name
	}
}

// rejectUnknownHashKeys reports keys starting with '#' that are not in known:
// the '#' keys are Byoda's own, and a misspelt one would be ignored.
func (l *loader) rejectUnknownHashKeys(obj map[string]any, at jsonPath, known []string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if strings.HasPrefix(k, "#") && !slices.Contains(known, k) {
			l.fail(at.key(k), "unknown key; the keys starting with '#' here are %s",
				strings.Join(known, ", "))
		}
	}
}

// isKey reports whether obj has the key k.
func isKey(obj map[string]any, k string) bool {
	_, ok := obj[k]
	return ok
}

// optionalString returns the string under key in obj, or "" if there is none.
func (l *loader) optionalString(obj map[string]any, key string, at jsonPath) string {
	v, ok := obj[key]
	if !ok {
		return ""
	}
	s, _ := l.str(v, at.key(key))
	return s
}

// podClass is a class that the pod itself writes or reads, with the fields it
// uses.
type podClass struct {
	name   string
	kind   ClassKind
	use    string
	fields []podField
}

type podField struct {
	name  string
	types []FieldType
}

// podClasses are the classes every contract must have for a pod to run it.
var podClasses = []podClass{
	{"member", ObjectClass, "the pod records its membership here", []podField{
		{"member_id", []FieldType{TypeUUID, TypeString}},
		{"joined", []FieldType{TypeDateTime}},
	}},
	{"network_links", ArrayClass, "network rights and recursive queries follow these links",
		[]podField{
			{"member_id", []FieldType{TypeUUID}},
			{"relation", []FieldType{TypeString}},
			{"created_timestamp", []FieldType{TypeDateTime}},
		}},
	{"datalogs", ArrayClass, "the pod logs every Data API call here", []podField{
		{"created_timestamp", []FieldType{TypeDateTime}},
		{"remote_addr", []FieldType{TypeString}},
		{"operation", []FieldType{TypeString}},
		{"object", []FieldType{TypeString}},
	}},
}

// checkPodClasses reports the classes and fields the pod relies on that c
// lacks.
func (l *loader) checkPodClasses(c *Contract, propsAt jsonPath) {
	for _, pc := range podClasses {
		cl, ok := c.Classes[pc.name]
		switch {
		case !ok:
			l.fail(propsAt.key(pc.name), "every contract needs the %s class %q: %s",
				pc.kind, pc.name, pc.use)
		case cl == nil:
			// Already reported.
		case cl.Kind != pc.kind:
			l.fail(cl.at, "%q must be an %s class: %s", pc.name, pc.kind, pc.use)
		case cl.Record() != nil:
			l.checkPodFields(cl.Record(), pc, cl.at)
		}
	}
}

func (l *loader) checkPodFields(rec *Class, pc podClass, at jsonPath) {
	for _, want := range pc.fields {
		f, ok := rec.Field(want.name)
		switch {
		case !ok:
			l.fail(at, "records of %q need a field %q of type %s: %s",
				pc.name, want.name, want.types[0], pc.use)
		case !slices.Contains(want.types, f.Type):
			l.fail(at, "field %q of the records of %q must be of type %s, not %s",
				want.name, pc.name, want.types[0], f.Type)
		}
	}
}
