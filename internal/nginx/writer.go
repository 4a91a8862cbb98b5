package nginx

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
)

// DefaultTimeout bounds each command a Writer runs.
const DefaultTimeout = 30 * time.Second

// maxOutput is how much of a command's output a Writer keeps.
const maxOutput = 4 << 10

// ErrRejected is wrapped by Apply's error when the test command failed and
// the previous files are back in place.
var ErrRejected = errors.New("nginx rejected the new configuration; the previous files are " +
	"back in place")

// Writer installs files, has nginx check them, and has it reload. Commands
// run through /bin/sh -c, as an operator would type them.
type Writer struct {
	// Test checks nginx's whole configuration, such as "nginx -t"; empty
	// skips the check.
	Test string

	// Reload makes nginx load the new files, such as "nginx -s reload";
	// empty leaves that to the caller.
	Reload string

	// Timeout bounds each command [DefaultTimeout].
	Timeout time.Duration
}

// Result says what Apply did.
type Result struct {
	// Changed are the paths written or removed, in that order.
	Changed []string

	// TestOutput is what a passing test command printed, such as warnings.
	TestOutput string

	// Reloaded says that the reload command ran and succeeded.
	Reloaded bool
}

// CommandError is a command that failed, with what it printed.
type CommandError struct {
	Command string
	Output  string
	Err     error
}

func (e *CommandError) Error() string {
	if e.Output == "" {
		return fmt.Sprintf("%s: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Command, e.Err, e.Output)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Apply writes files (each atomically, and only when its content or mode
// differs) and removes the paths of remove. When anything changed, it runs
// the test command; if that fails, it puts every changed file back as it
// was and returns an error wrapping ErrRejected and a *CommandError with
// nginx's message. Then it runs the reload command. Without changes it
// runs neither.
func (w *Writer) Apply(ctx context.Context, files []File, remove []string) (Result, error) {
	var res Result
	var undo []previous
	fail := func(err error) (Result, error) {
		return res, errors.Join(err, restore(undo))
	}
	defer func() {
		for _, p := range undo {
			if p.mode&0o077 == 0 {
				clear(p.data) // a private key
			}
		}
	}()

	for _, f := range files {
		old, err := readPrevious(f.Path)
		if err != nil {
			return fail(err)
		}
		if old.existed && old.mode == fs.FileMode(f.Mode) && bytes.Equal(old.data, f.Data) {
			continue
		}
		undo = append(undo, old)
		if err := pki.WriteFile(f.Path, f.Data, fs.FileMode(f.Mode)); err != nil {
			return fail(err)
		}
		res.Changed = append(res.Changed, f.Path)
	}
	for _, path := range remove {
		old, err := readPrevious(path)
		if err != nil || !old.existed {
			if err != nil {
				return fail(err)
			}
			continue
		}
		undo = append(undo, old)
		if err := os.Remove(path); err != nil {
			return fail(fmt.Errorf("removing %s: %w", path, err))
		}
		res.Changed = append(res.Changed, path)
	}
	if len(res.Changed) == 0 {
		return res, nil
	}

	if w.Test != "" {
		out, err := w.run(ctx, w.Test)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrRejected, err))
		}
		res.TestOutput = out
	}
	if w.Reload != "" {
		if _, err := w.run(ctx, w.Reload); err != nil {
			return res, err
		}
		res.Reloaded = true
	}
	return res, nil
}

// previous is a file as it was before Apply changed it.
type previous struct {
	path    string
	existed bool
	data    []byte
	mode    fs.FileMode
}

func readPrevious(path string) (previous, error) {
	p := previous{path: path}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if p.data, err = os.ReadFile(path); err != nil {
		return p, err
	}
	p.existed, p.mode = true, info.Mode().Perm()
	return p, nil
}

// restore puts files back as undo recorded them, the last change first.
func restore(undo []previous) error {
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		p := undo[i]
		var err error
		if p.existed {
			err = pki.WriteFile(p.path, p.data, p.mode)
		} else if err = os.Remove(p.path); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", p.path, err))
		}
	}
	return errors.Join(errs...)
}

// run runs command through the shell and returns its output, trimmed and
// cut to maxOutput bytes.
func (w *Writer) run(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(w.Timeout, DefaultTimeout))
	defer cancel()

	var out capped
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}

	output := strings.TrimSpace(out.String())
	if err != nil {
		return output, &CommandError{Command: command, Output: output, Err: err}
	}
	return output, nil
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Stale returns the member-*.conf files of dir that the pod of accountID
// wrote and whose names keep does not hold: vhosts of memberships that are
// gone. Files of other pods sharing dir are left alone.
func Stale(dir, accountID string, keep []string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "member-*.conf"))
	if err != nil {
		return nil, err
	}

	var stale []string
	for _, path := range paths {
		name := filepath.Base(path)
		if slices.Contains(keep, name) {
			continue
		}
		mine, err := firstLineIs(path, Marker(accountID))
		if err != nil {
			return nil, err
		}
		if mine {
			stale = append(stale, path)
		}
	}
	return stale, nil
}

func firstLineIs(path, line string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()

	s := bufio.NewScanner(f)
	return s.Scan() && s.Text() == line, nil
}

// CheckOwner returns an error when dir holds the account.conf of another
// pod: two pods writing one directory would overwrite each other's files.
func CheckOwner(dir, accountID string) error {
	f, err := os.Open(filepath.Join(dir, AccountFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()

	s := bufio.NewScanner(f)
	first := ""
	if s.Scan() {
		first = s.Text()
	}
	owner, ok := strings.CutPrefix(first, Marker(""))
	if ok && owner != accountID {
		return fmt.Errorf("%s holds the virtual servers of pod %s; give each pod a "+
			"directory of its own", dir, owner)
	}
	return nil
}

// nginxVersion finds the version in what nginx -v prints.
var nginxVersion = regexp.MustCompile(`nginx/(\d+)\.(\d+)\.(\d+)`)

// HasHTTP2Directive reports whether the nginx whose nginx -v printed
// version reads "http2 on;" (1.25.1 and later).
func HasHTTP2Directive(version string) bool {
	m := nginxVersion.FindStringSubmatch(version)
	if m == nil {
		return false
	}
	v := [3]int{}
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v[0] > 1 || v[0] == 1 && (v[1] > 25 || v[1] == 25 && v[2] >= 1)
}
