package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// errInvalidContract is returned by contract check for a contract with
// problems, after they have been listed.
var errInvalidContract = errors.New("invalid contract")

func runContractCheck(_ context.Context, args []string, _ env) error {
	fs := flag.NewFlagSet("byoda contract check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: byoda contract check FILE")
		fmt.Fprintln(fs.Output(), "\nValidates a service contract and lists its data classes "+
			"and access rules.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}

	return checkContract(fs.Arg(0), os.Stdout, os.Stderr)
}

// checkContract validates the contract in the file path. It lists a valid
// contract on stdout; for an invalid one it writes every problem to stderr,
// one "PATH: message" per line, and returns an error wrapping
// errInvalidContract.
func checkContract(path string, stdout, stderr io.Writer) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading contract: %w", err)
	}

	c, err := contract.Parse(doc)
	var invalid *contract.ValidationError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Fprintln(stderr, p)
		}
		return fmt.Errorf("%s: %w (%s)", path, errInvalidContract,
			plural(len(invalid.Problems), "problem"))
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}

	if err := writeContract(stdout, c); err != nil {
		return fmt.Errorf("writing the listing: %w", err)
	}
	return nil
}

// writeContract lists c: the service, then every data class the Data API
// serves with its access rules, then the record classes that arrays hold.
func writeContract(w io.Writer, c *contract.Contract) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)

	writeService(tw, c)
	fmt.Fprintln(tw, "\ndata classes")
	for _, name := range c.ClassNames() {
		writeDataClass(tw, c.Classes[name])
	}

	fmt.Fprintln(tw, "\nrecord classes")
	for _, name := range slices.Sorted(maps.Keys(c.Defined)) {
		cl := c.Defined[name]
		fmt.Fprintf(tw, "\nrecord %s (%s)\n", cl.Name, cl.ID)
		writeFields(tw, cl)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Padding before an empty last cell would end lines in spaces.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func writeService(w io.Writer, c *contract.Contract) {
	fmt.Fprintf(w, "service_id\t%d\n", c.ServiceID)
	fmt.Fprintf(w, "name\t%s\n", c.Name)
	fmt.Fprintf(w, "version\t%d\n", c.Version)
	fmt.Fprintf(w, "max_query_depth\t%d\n", c.MaxQueryDepth)
	fmt.Fprintf(w, "cors_origins\t%s\n", strings.Join(c.CORSOrigins, ", "))
	for _, lr := range c.ListenRelations {
		from := "all links"
		if len(lr.Relations) > 0 {
			from = strings.Join(lr.Relations, "|") + " links"
		}
		fmt.Fprintf(w, "listens to\t%s of %s, into %s, feed %s\n",
			lr.ClassName, from, lr.DestinationClass, lr.FeedClass)
	}
}

func writeDataClass(w io.Writer, cl *contract.Class) {
	kind := cl.Kind.String()
	if cl.Kind == contract.ArrayClass {
		kind = "array of " + cl.Items.Name
	}
	if cl.CacheOnly > 0 {
		kind += ", cache-only " + formatSpan(cl.CacheOnly)
	}

	fmt.Fprintf(w, "\nclass %s (%s)\n", cl.Name, kind)
	fmt.Fprintf(w, "  access: %s\n", describeAccess(cl.Access))
	if cl.Kind == contract.ObjectClass {
		writeFields(w, cl)
	}
}

// writeFields writes the fields of an object class as an aligned table.
func writeFields(w io.Writer, cl *contract.Class) {
	writeRow(w, "FIELD", "TYPE", "REQUIRED", "PROPERTIES")
	for _, f := range cl.Fields {
		required := ""
		if f.Required {
			required = "yes"
		}
		writeRow(w, f.Name, describeType(f), required, describeProperties(f))
	}
}

// writeRow writes an indented table row.
func writeRow(w io.Writer, cells ...string) {
	fmt.Fprintf(w, "  %s\n", strings.Join(cells, "\t"))
}

func describeType(f *contract.Field) string {
	switch {
	case f.Type != contract.TypeArray:
		return f.Type.String()
	case f.ItemClass != nil:
		return "array of " + f.ItemClass.Name
	default:
		return "array of " + f.ItemType.String()
	}
}

func describeProperties(f *contract.Field) string {
	var props []string
	if f.PrimaryKey {
		props = append(props, "primary key")
	}
	if f.Index {
		props = append(props, "index")
	}
	if f.Counter {
		props = append(props, "counter")
	}
	return strings.Join(props, ", ")
}

// describeAccess puts the rights of a class in words, grouped by who gets
// them; see contract.AccessControl.Summary.
func describeAccess(a contract.AccessControl) string {
	return a.Summary()
}

// formatSpan writes d in the largest of the units w, d, h, m and s that
// measures it whole, as contracts write it.
func formatSpan(d time.Duration) string {
	units := []struct {
		name string
		size time.Duration
	}{
		{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour},
		{"m", time.Minute}, {"s", time.Second},
	}
	for _, u := range units {
		if d%u.size == 0 {
			return fmt.Sprintf("%d%s", d/u.size, u.name)
		}
	}
	return d.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
