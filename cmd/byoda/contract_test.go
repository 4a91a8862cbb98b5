package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// contractFile is the path of a contract in the contract package's test data.
func contractFile(name string) string {
	return filepath.Join("..", "..", "internal", "contract", "testdata", "contracts", name)
}

func TestContractCheckGood(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := checkContract(contractFile("good-notes.json"), &stdout, &stderr); err != nil {
		t.Fatalf("checkContract: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}

	out := stdout.String()
	for _, want := range []string{
		"service_id       4294967100\n",
		"max_query_depth  2\n",
		"listens to       notes of friend|family links, into incoming_notes, feed note_feed\n",
		"\nclass incoming_notes (array of note, cache-only 3d)\n",
		"\nclass note_feed (array of note, cache-only 1w)\n",
		"\nclass notes (array of note)\n  access: owner: read, update, delete, append, " +
			"subscribe; any member: append; network (distance 1, relations friend|family): " +
			"read; network (relations friend): subscribe; anonymous: none\n",
		"\nclass public_notes (array of note)\n  access: owner: read, update, delete, append, " +
			"subscribe; anonymous: read\n",
		"\nrecord note (/schemas/note)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	rows := map[string][]string{
		"note_id":     {"uuid", "yes", "primary", "key,", "index"},
		"stars":       {"integer", "index,", "counter"},
		"attachments": {"array", "of", "attachment"},
		"nick":        {"string", "yes"},
	}
	checkRows(t, out, rows)
	checkAligned(t, out, "record note (/schemas/note)")
}

// checkRows checks the table rows of the named fields.
func checkRows(t *testing.T, out string, rows map[string][]string) {
	t.Helper()
	for line := range strings.Lines(out) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if want, ok := rows[fields[0]]; ok {
			if !slices.Equal(fields[1:], want) {
				t.Errorf("row %q, want %q", fields, want)
			}
			delete(rows, fields[0])
		}
	}
	for name := range rows {
		t.Errorf("no row for field %s", name)
	}
}

// checkAligned checks that the columns of the field table after the heading
// line start at the same offsets as the table's header.
func checkAligned(t *testing.T, out, heading string) {
	t.Helper()
	_, table, ok := strings.Cut(out, heading+"\n")
	if !ok {
		t.Fatalf("no %q in the output", heading)
	}
	lines := strings.Split(table, "\n")
	typeAt := strings.Index(lines[0], "TYPE")
	if typeAt < 0 {
		t.Fatalf("no table header after %q: %q", heading, lines[0])
	}
	for _, line := range lines[1:] {
		if line == "" {
			break
		}
		if line[typeAt-1] != ' ' || line[typeAt] == ' ' {
			t.Errorf("type column not at %d in %q", typeAt, line)
		}
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing space in %q", line)
		}
	}
}

func TestContractCheckAddressBook(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "testdata", "contracts", "addressbook.json")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data: %v", err)
		}
		t.Skipf("shared test data not found beside the repository: %v", err)
	}

	var stdout, stderr bytes.Buffer
	if err := checkContract(path, &stdout, &stderr); err != nil {
		t.Fatalf("checkContract: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"\nclass incoming_assets (array of asset, cache-only 3d)\n",
		"\nclass twitter_account (object)\n",
		"\nclass messages (array of message)\n",
		"; network (distance 3, relations friend|family): read; anonymous: none\n",
		"\nclass person (object)\n  access: owner: read, update, delete; network (distance 1, " +
			"relations friend|family): read; service: read; anonymous: none\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	checkAligned(t, out, "record asset (/schemas/asset)")
}

func TestContractCheckBad(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := checkContract(contractFile("bad-many.json"), &stdout, &stderr)
	if !errors.Is(err, errInvalidContract) || !strings.Contains(err.Error(), "5 problems") {
		t.Fatalf("checkContract = %v, want errInvalidContract with 5 problems", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout: %s", stdout.String())
	}

	want := []string{
		"jsonschema.$defs.note.properties.done.#properties[0]: counter needs a uuid, string, " +
			"date-time or integer field, not a boolean",
		`jsonschema.properties.notes.#accesscontrol.anybody: unknown entity "anybody"; ` +
			"expected member, any_member, network, service or anonymous",
		`jsonschema.properties.person.properties.email: unknown type "strin"`,
		"signatures: must be an object, not a list",
		"version: must be an integer, not a string",
	}
	got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("stderr:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestContractCheckNotJSON(t *testing.T) {
	var stderr bytes.Buffer
	err := checkContract(contractFile("bad-not-json.json"), io.Discard, &stderr)
	if !errors.Is(err, errInvalidContract) || !strings.Contains(err.Error(), "(1 problem)") {
		t.Fatalf("checkContract = %v", err)
	}
	if !strings.HasPrefix(stderr.String(), "malformed contract JSON: ") {
		t.Errorf("stderr: %q", stderr.String())
	}
}

func TestContractCheckMissingFile(t *testing.T) {
	err := checkContract(filepath.Join(t.TempDir(), "none.json"), io.Discard, io.Discard)
	if err == nil || errors.Is(err, errInvalidContract) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkContract(missing file) = %v", err)
	}
}

func TestContractCheckUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"contract", "check"},
		{"contract", "check", "a.json", "b.json"},
	} {
		if err := run(ctx, args, fakeEnv(nil), io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
	}

	var stderr bytes.Buffer
	if err := run(ctx, []string{"help"}, fakeEnv(nil), &stderr); !errors.Is(err, errUsage) ||
		!strings.Contains(stderr.String(), "contract check") {
		t.Errorf("usage does not list contract check: %v\n%s", err, stderr.String())
	}
}

func TestDescribeAccess(t *testing.T) {
	tests := []struct {
		name   string
		access contract.AccessControl
		want   string
	}{
		{"none", nil, "owner: read (default); anonymous: none"},
		{"owner without read", contract.AccessControl{
			{Entity: contract.EntityMember, Permission: contract.PermissionUpdate},
		}, "owner: read (default), update; anonymous: none"},
		{"public", contract.AccessControl{
			{Entity: contract.EntityMember, Permission: contract.PermissionRead},
			{Entity: contract.EntityAnonymous, Permission: contract.PermissionRead},
		}, "owner: read; anonymous: read"},
		{"search", contract.AccessControl{
			{Entity: contract.EntityService, Permission: contract.PermissionSearch,
				Match: contract.MatchExact, CaseSensitive: false},
			{Entity: contract.EntityService, Permission: contract.PermissionPersist},
		}, "owner: read (default); service (match exact, case-insensitive): search; " +
			"service: persist; anonymous: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeAccess(tt.access); got != tt.want {
				t.Errorf("describeAccess = %q,\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFormatSpan(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "1w"},
		{3 * 24 * time.Hour, "3d"},
		{90 * time.Minute, "90m"},
		{90 * time.Second, "90s"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		if got := formatSpan(tt.d); got != tt.want {
			t.Errorf("formatSpan(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
