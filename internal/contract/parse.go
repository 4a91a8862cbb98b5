package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a contract.
type Problem struct {
	// Path locates the offending value, as in
	// "jsonschema.properties.person.properties.email"; keys that are not
	// plain names are quoted, as in `jsonschema.properties["a b"]`, and list
	// elements are indexed, as in "listen_relations[0]". It is empty for
	// problems with the document as a whole.
	Path string

	// Message says what is wrong, in lower case.
	Message string
}

// String returns "path: message", or the message alone for the document.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError is the error Parse returns for a contract it rejects. It
// holds every problem found, sorted by path.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems on one line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid contract")
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// topLevelKeys are the keys of a contract, in the order they are documented.
// The directory rebuilds a contract from exactly these keys before it checks
// the service's signature, so a contract with any other key cannot be signed.
var topLevelKeys = []string{
	"service_id", "version", "name", "description", "owner", "website", "supportemail",
	"cors_origins", "signatures", "jsonschema", "listen_relations", "max_query_depth",
}

// Parse reads and validates the contract doc. The error for a contract it
// rejects is a *ValidationError listing every problem found.
//
// Parse accepts what the reference implementation accepts, with these
// deliberate differences:
//   - keys other than the twelve that the directory signs are rejected, and
//     listen_relations is required, since such contracts cannot be signed;
//   - class and field names must start with a letter, hold only letters,
//     digits and underscores, be at most MaxNameLength long, must not start
//     with "byoda" in any case, and must not differ from another class's or
//     field's name only in case, since they become SQL identifiers;
//   - keys starting with '#' that Byoda does not define, and unknown keys in
//     access rules and listen relations, are rejected: a misspelt key there
//     would otherwise widen or drop a right without a word;
//   - a single string "relation" is one relation, not a set of letters;
//   - $defs may refer to each other to any depth, not only three deep;
//   - the classes the pod itself writes (member, network_links, datalogs)
//     must exist with the fields the pod uses;
//   - index, counter and primary_key take no value, and cache_only fits only
//     array classes that the Data API serves;
//   - max_query_depth and distances are at most DepthLimit.
//
// Other JSON Schema keywords, such as "title" or "minLength", are accepted
// and ignored, as in the reference.
func Parse(doc []byte) (*Contract, error) {
	root, problem := decodeObject(doc)
	if problem != nil {
		return nil, &ValidationError{Problems: []Problem{*problem}}
	}

	l := &loader{resolved: map[string]*Class{}}
	c := l.contract(root)
	if len(l.problems) > 0 {
		slices.SortStableFunc(l.problems, func(a, b Problem) int {
			return strings.Compare(a.Path, b.Path)
		})
		return nil, &ValidationError{Problems: l.problems}
	}

	c.Raw = bytes.Clone(doc)
	return c, nil
}

// decodeObject decodes doc, which must be a JSON object that Canonical
// accepts, so that every contract that loads can also be signed and verified.
func decodeObject(doc []byte) (map[string]any, *Problem) {
	if len(doc) > MaxSize {
		return nil, &Problem{Message: fmt.Sprintf("contract is larger than %d bytes", MaxSize)}
	}
	if _, err := Canonical(doc); err != nil {
		return nil, &Problem{Message: err.Error()}
	}

	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, &Problem{Message: fmt.Sprintf("%v: %v", ErrMalformed, err)}
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, &Problem{Message: "a contract is a JSON object, not " + describe(root)}
	}
	return obj, nil
}

// jsonPath names a value in a contract; see Problem.Path.
type jsonPath string

// key returns the path of the member k of the object at p.
func (p jsonPath) key(k string) jsonPath {
	if !plainKey(k) {
		return p + jsonPath("["+strconv.Quote(k)+"]")
	}
	if p == "" {
		return jsonPath(k)
	}
	return p + "." + jsonPath(k)
}

// index returns the path of element i of the list at p.
func (p jsonPath) index(i int) jsonPath {
	return p + jsonPath("["+strconv.Itoa(i)+"]")
}

// plainKey reports whether k can stand in a path without quotes.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '$' || r == '#'
		if !ok {
			return false
		}
	}
	return true
}

// loader walks a decoded contract, building the model and collecting the
// problems it finds.
type loader struct {
	problems []Problem

	defs      map[string]any // jsonschema.$defs as decoded
	defsAt    jsonPath
	resolved  map[string]*Class // $defs entries built so far; nil for broken ones
	resolving []string          // $defs entries being built, outermost first
}

func (l *loader) fail(at jsonPath, format string, args ...any) {
	l.problems = append(l.problems, Problem{Path: string(at), Message: fmt.Sprintf(format, args...)})
}

// contract reads the top level of a contract.
func (l *loader) contract(root map[string]any) *Contract {
	l.checkTopLevelKeys(root)

	c := &Contract{
		Name:          l.text(root, "name", ""),
		Description:   l.text(root, "description", ""),
		Owner:         l.text(root, "owner", ""),
		Website:       l.text(root, "website", ""),
		SupportEmail:  l.text(root, "supportemail", ""),
		MaxQueryDepth: DefaultMaxQueryDepth,
		Classes:       map[string]*Class{},
		Defined:       map[string]*Class{},
	}
	if v, ok := root["service_id"]; ok {
		id, _ := l.integer(v, "service_id", 0, math.MaxUint32)
		c.ServiceID = uint32(id)
	}
	if v, ok := root["version"]; ok {
		version, _ := l.integer(v, "version", 1, math.MaxInt32)
		c.Version = int(version)
	}
	if v, ok := root["max_query_depth"]; ok {
		depth, _ := l.integer(v, "max_query_depth", 0, DepthLimit)
		c.MaxQueryDepth = int(depth)
	}
	if v, ok := root["signatures"]; ok {
		l.object(v, "signatures")
	}
	if v, ok := root["cors_origins"]; ok {
		c.CORSOrigins = l.corsOrigins(v, "cors_origins")
	}

	if v, ok := root["jsonschema"]; ok {
		l.schema(v, "jsonschema", c)
	}
	if v, ok := root["listen_relations"]; ok {
		c.ListenRelations = l.listenRelations(v, "listen_relations", c)
	}
	return c
}

// checkTopLevelKeys reports missing and unknown top-level keys.
func (l *loader) checkTopLevelKeys(root map[string]any) {
	for _, k := range topLevelKeys {
		if _, ok := root[k]; !ok && k != "max_query_depth" {
			l.fail(jsonPath("").key(k), "required key is missing")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(root)) {
		if !slices.Contains(topLevelKeys, k) {
			l.fail(jsonPath("").key(k), "unknown top-level key; a contract has only the keys %s",
				strings.Join(topLevelKeys, ", "))
		}
	}
}

// corsOrigins reads the list of CORS origins, giving https:// to entries
// without a scheme.
func (l *loader) corsOrigins(v any, at jsonPath) []string {
	list, ok := l.list(v, at)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		l.fail(at, "needs at least one origin")
	}

	origins := make([]string, 0, len(list))
	for i, elem := range list {
		o, ok := l.str(elem, at.index(i))
		switch {
		case !ok:
		case o == "":
			l.fail(at.index(i), "must not be empty")
		case strings.ContainsAny(o, " \t\r\n"):
			l.fail(at.index(i), "origin %q holds white space", o)
		case o == "*", strings.HasPrefix(o, "https://"), strings.HasPrefix(o, "http://"):
			origins = append(origins, o)
		default:
			origins = append(origins, "https://"+o)
		}
	}
	return origins
}

// listenRelations reads listen_relations, whose classes must be array
// classes of c.
func (l *loader) listenRelations(v any, at jsonPath, c *Contract) []ListenRelation {
	list, ok := l.list(v, at)
	if !ok {
		return nil
	}

	relations := make([]ListenRelation, 0, len(list))
	for i, elem := range list {
		if lr, ok := l.listenRelation(elem, at.index(i), c); ok {
			relations = append(relations, lr)
		}
	}
	return relations
}

var listenRelationKeys = []string{"class_name", "relations", "destination_class", "feed_class"}

func (l *loader) listenRelation(v any, at jsonPath, c *Contract) (ListenRelation, bool) {
	obj, ok := l.object(v, at)
	if !ok {
		return ListenRelation{}, false
	}
	l.rejectUnknownKeys(obj, at, listenRelationKeys)

	before := len(l.problems)
	l.required(obj, at, "class_name", "destination_class", "feed_class")

	var lr ListenRelation
	var source, dest *Class
	lr.ClassName, source = l.arrayClassRef(obj, "class_name", at, c)
	lr.DestinationClass, dest = l.arrayClassRef(obj, "destination_class", at, c)
	lr.FeedClass, _ = l.arrayClassRef(obj, "feed_class", at, c)
	if v, ok := obj["relations"]; ok {
		list, _ := l.stringList(v, at.key("relations"))
		lr.Relations = lowerAll(list)
	}
	if source != nil && dest != nil {
		l.checkHolds(dest, source, at.key("destination_class"))
	}
	return lr, len(l.problems) == before
}

// arrayClassRef returns the name under key in obj and the array class of c
// that it names.
func (l *loader) arrayClassRef(obj map[string]any, key string, at jsonPath,
	c *Contract) (string, *Class) {
	name := l.text(obj, key, at)
	if name == "" {
		return name, nil
	}
	cl, ok := c.Classes[name]
	switch {
	case !ok:
		l.fail(at.key(key), "no data class %q in this contract", name)
	case cl == nil:
		// Already reported.
	case cl.Kind != ArrayClass:
		l.fail(at.key(key), "%q is not an array class", name)
	case cl.Items != nil:
		return name, cl
	}
	return name, nil
}

// checkHolds reports the fields of the records of src that the records of
// dst cannot hold.
func (l *loader) checkHolds(dst, src *Class, at jsonPath) {
	var missing []string
	for _, f := range src.Items.Fields {
		g, ok := dst.Items.Field(f.Name)
		switch {
		case !ok:
			missing = append(missing, f.Name)
		case g.Type != f.Type || g.ItemType != f.ItemType:
			l.fail(at, "field %q of %q is %s, not %s as in %q",
				f.Name, dst.Name, g.Type, f.Type, src.Name)
		}
	}
	if len(missing) > 0 {
		l.fail(at, "%q has no field %s to hold the records of %q",
			dst.Name, strings.Join(missing, ", "), src.Name)
	}
}

// rejectUnknownKeys reports the keys of obj that are not in known.
func (l *loader) rejectUnknownKeys(obj map[string]any, at jsonPath, known []string) {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(known, k) {
			l.fail(at.key(k), "unknown key; expected one of %s", strings.Join(known, ", "))
		}
	}
}

// text returns the non-empty string under key in obj. A missing key yields ""
// and no problem: callers report missing keys where it matters.
func (l *loader) text(obj map[string]any, key string, at jsonPath) string {
	v, ok := obj[key]
	if !ok {
		return ""
	}
	s, ok := l.str(v, at.key(key))
	if ok && strings.TrimSpace(s) == "" {
		l.fail(at.key(key), "must not be empty")
	}
	return s
}

// required reports the keys of obj that are missing.
func (l *loader) required(obj map[string]any, at jsonPath, keys ...string) {
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			l.fail(at.key(k), "required key is missing")
		}
	}
}

func (l *loader) str(v any, at jsonPath) (string, bool) {
	s, ok := v.(string)
	if !ok {
		l.fail(at, "must be a string, not %s", describe(v))
	}
	return s, ok
}

func (l *loader) boolean(v any, at jsonPath) bool {
	b, ok := v.(bool)
	if !ok {
		l.fail(at, "must be true or false, not %s", describe(v))
	}
	return b
}

func (l *loader) object(v any, at jsonPath) (map[string]any, bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		l.fail(at, "must be an object, not %s", describe(v))
	}
	return obj, ok
}

func (l *loader) list(v any, at jsonPath) ([]any, bool) {
	list, ok := v.([]any)
	if !ok {
		l.fail(at, "must be a list, not %s", describe(v))
	}
	return list, ok
}

// stringList reads a list of non-empty strings, leaving out the elements
// that are not; ok is false when any was not.
func (l *loader) stringList(v any, at jsonPath) ([]string, bool) {
	list, ok := l.list(v, at)
	if !ok {
		return nil, false
	}

	out := make([]string, 0, len(list))
	for i, elem := range list {
		s, ok := l.str(elem, at.index(i))
		switch {
		case !ok:
		case s == "":
			l.fail(at.index(i), "must not be empty")
		default:
			out = append(out, s)
		}
	}
	return out, len(out) == len(list)
}

// integer reads a JSON integer between lo and hi.
func (l *loader) integer(v any, at jsonPath, lo, hi int64) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		l.fail(at, "must be an integer, not %s", describe(v))
		return 0, false
	}
	if strings.ContainsAny(string(n), ".eE") {
		l.fail(at, "must be an integer, not %s", n)
		return 0, false
	}

	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < lo || i > hi {
		l.fail(at, "%.40s is out of range: must be from %d to %d", n, lo, hi)
		return 0, false
	}
	return i, true
}

// describe names the JSON type of v for messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
