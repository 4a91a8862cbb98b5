package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkedDir is a configuration directory whose test command refuses any
// file that says BROKEN, and whose reload command counts reloads.
type checkedDir struct {
	t       *testing.T
	dir     string
	reloads string
	w       Writer
}

func newCheckedDir(t *testing.T) *checkedDir {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	reloads := filepath.Join(dir, "reloads")
	return &checkedDir{t: t, dir: conf, reloads: reloads, w: Writer{
		Test:   fmt.Sprintf(`if grep -l BROKEN %s/*; then echo "emerg: broken"; exit 1; fi`, conf),
		Reload: fmt.Sprintf("echo reload >> %s", reloads),
	}}
}

func (c *checkedDir) path(name string) string { return filepath.Join(c.dir, name) }

func (c *checkedDir) file(name, data string, mode uint32) File {
	return File{Path: c.path(name), Data: []byte(data), Mode: mode}
}

func (c *checkedDir) apply(files []File, remove ...string) (Result, error) {
	c.t.Helper()
	return c.w.Apply(context.Background(), files, remove)
}

func (c *checkedDir) reloadCount() int {
	data, err := os.ReadFile(c.reloads)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.Count(string(data), "reload")
}

// has fails the test unless the file name holds data with mode, or, for
// data "", does not exist.
func (c *checkedDir) has(name, data string, mode os.FileMode) {
	c.t.Helper()
	info, err := os.Stat(c.path(name))
	if data == "" {
		if !errors.Is(err, os.ErrNotExist) {
			c.t.Fatalf("%s exists (%v)", name, err)
		}
		return
	}
	got, rerr := os.ReadFile(c.path(name))
	if err != nil || rerr != nil || string(got) != data || info.Mode().Perm() != mode {
		c.t.Fatalf("%s holds %q with mode %v (%v), want %q with %v", name, got,
			info.Mode().Perm(), errors.Join(err, rerr), data, mode)
	}
}

func TestApply(t *testing.T) {
	c := newCheckedDir(t)

	res, err := c.apply([]File{c.file("cert.pem", "cert 1", 0o644),
		c.file("key.pem", "key 1", 0o600), c.file("account.conf", "server 1", 0o644)})
	if err != nil || len(res.Changed) != 3 || !res.Reloaded || c.reloadCount() != 1 {
		t.Fatalf("first apply: %+v, %v, %d reloads", res, err, c.reloadCount())
	}
	c.has("key.pem", "key 1", 0o600)
	c.has("account.conf", "server 1", 0o644)

	// The same files again change nothing and reload nothing.
	res, err = c.apply([]File{c.file("cert.pem", "cert 1", 0o644),
		c.file("key.pem", "key 1", 0o600), c.file("account.conf", "server 1", 0o644)})
	if err != nil || len(res.Changed) != 0 || res.Reloaded || c.reloadCount() != 1 {
		t.Fatalf("unchanged apply: %+v, %v, %d reloads", res, err, c.reloadCount())
	}

	// A renewed certificate alone is a change: nginx must load it.
	res, err = c.apply([]File{c.file("cert.pem", "cert 2", 0o644),
		c.file("key.pem", "key 2", 0o600), c.file("account.conf", "server 1", 0o644)})
	if err != nil || !slices.Equal(res.Changed, []string{c.path("cert.pem"),
		c.path("key.pem")}) || c.reloadCount() != 2 {
		t.Fatalf("renewal: %+v, %v, %d reloads", res, err, c.reloadCount())
	}

	// A mode alone is a change too.
	if res, err = c.apply([]File{c.file("key.pem", "key 2", 0o640)}); err != nil ||
		len(res.Changed) != 1 {
		t.Fatalf("mode change: %+v, %v", res, err)
	}
	c.has("key.pem", "key 2", 0o640)
}

func TestApplyRollsBack(t *testing.T) {
	c := newCheckedDir(t)
	if _, err := c.apply([]File{c.file("account.conf", "server 1", 0o644),
		c.file("member-a.conf", "member a", 0o644), c.file("key.pem", "key 1", 0o600)},
	); err != nil {
		t.Fatal(err)
	}

	res, err := c.apply([]File{c.file("key.pem", "key 2", 0o600),
		c.file("account.conf", "server 2", 0o644), c.file("member-b.conf", "BROKEN", 0o644)},
		c.path("member-a.conf"))
	var cmdErr *CommandError
	if !errors.Is(err, ErrRejected) || !errors.As(err, &cmdErr) {
		t.Fatalf("apply of a broken file: %v", err)
	}
	if !strings.Contains(cmdErr.Output, "member-b.conf") ||
		!strings.Contains(cmdErr.Output, "emerg: broken") {
		t.Fatalf("the error does not carry the test's message: %q", cmdErr.Output)
	}
	if len(res.Changed) != 4 || res.Reloaded {
		t.Fatalf("result %+v", res)
	}

	c.has("key.pem", "key 1", 0o600)
	c.has("account.conf", "server 1", 0o644)
	c.has("member-a.conf", "member a", 0o644)
	c.has("member-b.conf", "", 0)
	if n := c.reloadCount(); n != 1 {
		t.Fatalf("%d reloads, want 1: a rejected configuration is never loaded", n)
	}
	if leftovers, _ := filepath.Glob(c.path(".*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestApplyCommands(t *testing.T) {
	c := newCheckedDir(t)

	c.w.Reload = "echo 'nginx: [error] invalid PID number' >&2; exit 1"
	_, err := c.apply([]File{c.file("account.conf", "server 1", 0o644)})
	var cmdErr *CommandError
	if !errors.As(err, &cmdErr) || errors.Is(err, ErrRejected) ||
		!strings.Contains(cmdErr.Output, "invalid PID") {
		t.Fatalf("failed reload: %v", err)
	}
	c.has("account.conf", "server 1", 0o644) // a failed reload keeps the checked files

	c.w.Test, c.w.Reload = "", ""
	res, err := c.apply([]File{c.file("account.conf", "server 2", 0o644)})
	if err != nil || len(res.Changed) != 1 || res.Reloaded {
		t.Fatalf("apply without commands: %+v, %v", res, err)
	}

	c.w.Test, c.w.Timeout = "sleep 30", 200*time.Millisecond
	_, err = c.apply([]File{c.file("account.conf", "server 3", 0o644)})
	if !errors.Is(err, ErrRejected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("test command past its timeout: %v", err)
	}
	c.has("account.conf", "server 2", 0o644)

	c.w.Test, c.w.Timeout = "echo 'nginx: [warn] something to know'", 0
	res, err = c.apply([]File{c.file("account.conf", "server 4", 0o644)})
	if err != nil || res.TestOutput != "nginx: [warn] something to know" {
		t.Fatalf("test output %q, %v", res.TestOutput, err)
	}
}

func TestStale(t *testing.T) {
	dir := t.TempDir()
	write := func(name, firstLine string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(firstLine+"\nserver {}\n"),
			0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("member-gone.conf", Marker(accountID))
	write("member-kept.conf", Marker(accountID))
	write("member-other-pod.conf", Marker(memberA))
	write("member-by-hand.conf", "server {")
	write("account.conf", Marker(accountID))

	stale, err := Stale(dir, accountID, []string{"account.conf", "member-kept.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "member-gone.conf")}; !slices.Equal(stale, want) {
		t.Fatalf("stale %v, want %v", stale, want)
	}
}

func TestCheckOwner(t *testing.T) {
	dir := t.TempDir()
	if err := CheckOwner(dir, accountID); err != nil {
		t.Fatalf("empty directory: %v", err)
	}
	account := filepath.Join(dir, AccountFile)
	for first, ok := range map[string]bool{Marker(accountID): true,
		"# hand-written": true, Marker(memberA): false} {
		if err := os.WriteFile(account, []byte(first+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := CheckOwner(dir, accountID); (err == nil) != ok {
			t.Errorf("account.conf starting %q: %v", first, err)
		}
	}
}
