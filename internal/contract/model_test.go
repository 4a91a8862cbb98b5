package contract

import "testing"

func TestKindAndTypeNames(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{ObjectClass.String(), "object"},
		{ArrayClass.String(), "array"},
		{ClassKind(0).String(), "invalid class kind"},
		{TypeString.String(), "string"},
		{TypeUUID.String(), "uuid"},
		{TypeDateTime.String(), "date-time"},
		{TypeInteger.String(), "integer"},
		{TypeNumber.String(), "number"},
		{TypeBoolean.String(), "boolean"},
		{TypeArray.String(), "array"},
		{FieldType(0).String(), "invalid field type"},
		{FieldType(99).String(), "invalid field type"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestProblemString(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{"", "not JSON"}, "not JSON"},
		{Problem{"version", "must be an integer"}, "version: must be an integer"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestJSONPath(t *testing.T) {
	for _, tt := range []struct {
		got  jsonPath
		want string
	}{
		{jsonPath("").key("jsonschema").key("$defs").key("a_b"), "jsonschema.$defs.a_b"},
		{jsonPath("x").key("#accesscontrol").key("permissions").index(2),
			"x.#accesscontrol.permissions[2]"},
		{jsonPath("").key("a.b"), `["a.b"]`},
		{jsonPath("x").key(""), `x[""]`},
		{jsonPath("x").key("é"), `x["é"]`},
	} {
		if string(tt.got) != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
