package contract

import (
	"slices"
	"time"
)

// Limits that Parse enforces on every contract.
const (
	// MaxSize is the largest contract document Parse reads, in bytes.
	MaxSize = 4 << 20

	// MaxNameLength is the longest class or field name, in bytes: names
	// become SQL identifiers, and PostgreSQL cuts identifiers at 63 bytes.
	MaxNameLength = 63

	// DepthLimit is the largest max_query_depth, and the largest distance of
	// a network right, that a contract may declare. Every level of a
	// recursive query multiplies the pods it reaches.
	DepthLimit = 10

	// DefaultMaxQueryDepth is the max_query_depth of a contract that does not
	// state one.
	DefaultMaxQueryDepth = 1

	// DefaultCacheOnly is how long rows of a class marked "cache_only"
	// without a time span are kept.
	DefaultCacheOnly = 7 * 24 * time.Hour
)

// Contract is a parsed and validated service contract: who the service is and
// the data model that pods keep for its members. Nothing changes a Contract
// after Parse returns it, so goroutines may share it.
type Contract struct {
	ServiceID    uint32
	Version      int
	Name         string
	Description  string
	Owner        string
	Website      string
	SupportEmail string

	// CORSOrigins lists the origins browsers may call the Data API from,
	// each with its scheme: an entry written without http:// or https://
	// gets https://. "*" stands for any origin.
	CORSOrigins []string

	// SchemaID is the $id of the contract's jsonschema.
	SchemaID string

	// MaxQueryDepth is the deepest recursive query the service allows;
	// DefaultMaxQueryDepth when the contract does not say.
	MaxQueryDepth int

	// ListenRelations are the classes this pod copies from the pods it has
	// network links with.
	ListenRelations []ListenRelation

	// Classes holds the data classes that get storage and Data API routes,
	// by name: the entries of jsonschema.properties, and the entries of
	// jsonschema.$defs that have no $id, which the reference also serves.
	Classes map[string]*Class

	// Defined holds the record types that arrays refer to, by their key
	// in jsonschema.$defs: the $defs entries that have an $id.
	Defined map[string]*Class

	// Raw is the document that was parsed.
	Raw []byte
}

// Class returns the data class with the given name, if the Data API serves
// one by that name.
func (c *Contract) Class(name string) (*Class, bool) {
	cl, ok := c.Classes[name]
	return cl, ok
}

// ClassNames returns the names of the data classes that the Data API serves,
// sorted.
func (c *Contract) ClassNames() []string {
	names := make([]string, 0, len(c.Classes))
	for name := range c.Classes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ListenRelation tells the pod to copy the records of an array class from the
// pods of its network links into a local class.
type ListenRelation struct {
	// ClassName is the array class read on the other pods.
	ClassName string

	// Relations, lower-cased, limits the copying to pods linked with one of
	// these relations; empty means every link.
	Relations []string

	// DestinationClass is the local array class the records are stored in.
	DestinationClass string

	// FeedClass is the local array class a feed worker fills from
	// DestinationClass.
	FeedClass string
}

// ClassKind says whether a class holds one record or a list of them.
type ClassKind int

// The kinds of data class.
const (
	// ObjectClass holds a single record per membership.
	ObjectClass ClassKind = iota + 1

	// ArrayClass holds an ordered list of records of one object class.
	ArrayClass
)

// String returns "object" or "array".
func (k ClassKind) String() string {
	switch k {
	case ObjectClass:
		return "object"
	case ArrayClass:
		return "array"
	}
	return "invalid class kind"
}

// Class is a data class of a contract: an object class, or an array class
// whose records are of an object class.
type Class struct {
	Name        string
	Kind        ClassKind
	Description string

	// ID is the $id of a class defined under $defs with one, such as
	// "/schemas/asset"; it is empty for the classes the Data API serves.
	ID string

	// Fields are the fields of an object class, sorted by name. Scalar
	// fields marked #obsolete are left out. Array classes have none.
	Fields []*Field

	// Required names the fields of an object class that records must have,
	// in the order of the contract's "required" list, which is the order
	// that cursors are computed in. Names of fields the class does not have
	// (or no longer has) are left out; the reference ignores them too.
	Required []string

	// Items is the object class of the records of an array class.
	Items *Class

	// Access holds the class's #accesscontrol rights. Only the rights of
	// the classes that the Data API serves decide anything.
	Access AccessControl

	// CacheOnly is how long rows of a cache-only array class live; zero for
	// classes that are stored for good.
	CacheOnly time.Duration

	byName map[string]*Field
	at     jsonPath // where the class is defined, for messages
}

// Field returns the field of an object class with the given name.
func (c *Class) Field(name string) (*Field, bool) {
	f, ok := c.byName[name]
	return f, ok
}

// Record returns the object class that describes the records of c: c itself
// for an object class, and the class of its items for an array class.
func (c *Class) Record() *Class {
	if c.Kind == ArrayClass {
		return c.Items
	}
	return c
}

// FieldType is the type of a field, as the Data API and storage see it.
type FieldType int

// The field types. A string field with format "uuid" or "date-time" gets its
// own type; other formats leave it a TypeString.
const (
	TypeString FieldType = iota + 1
	TypeUUID
	TypeDateTime
	TypeInteger
	TypeNumber
	TypeBoolean
	TypeArray
)

var fieldTypeNames = [...]string{
	TypeString:   "string",
	TypeUUID:     "uuid",
	TypeDateTime: "date-time",
	TypeInteger:  "integer",
	TypeNumber:   "number",
	TypeBoolean:  "boolean",
	TypeArray:    "array",
}

// String returns the name of t: "string", "uuid", "date-time", "integer",
// "number", "boolean" or "array".
func (t FieldType) String() string {
	if t <= 0 || int(t) >= len(fieldTypeNames) {
		return "invalid field type"
	}
	return fieldTypeNames[t]
}

// Field is a field of an object class.
type Field struct {
	Name        string
	Type        FieldType
	Description string

	// Format is the declared format of a string field, such as "email".
	// Only "uuid" and "date-time" change the type; the rest is
	// informational.
	Format string

	// ItemType is the type of the elements of an array of scalars. As in
	// the reference, only the elements' "type" counts, so it is never
	// TypeUUID or TypeDateTime. It is zero for an array of records.
	ItemType FieldType

	// ItemClass is the object class of the elements of an array of records.
	ItemClass *Class

	// Required is set for the fields in the class's required list and for
	// primary keys.
	Required bool

	// Index asks for an SQL index on the field's column.
	Index bool

	// Counter asks for counters per value of the field.
	Counter bool

	// PrimaryKey marks a uuid field as the record's key. It makes the
	// field required and has no other effect.
	PrimaryKey bool

	// Access holds the field's #accesscontrol rights. They grant and deny
	// nothing in the Data API; services use "persist" and "search" rights
	// to say what they do with a field.
	Access AccessControl
}

// Scalar reports whether f holds a single value rather than an array.
func (f *Field) Scalar() bool {
	return f.Type != TypeArray
}

// Indexed reports whether storage keeps an SQL index on the field's column:
// for fields with an index or counter, and for every uuid field.
func (f *Field) Indexed() bool {
	return f.Scalar() && (f.Index || f.Counter || f.Type == TypeUUID)
}
