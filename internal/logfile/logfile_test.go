package logfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// open opens a log whose files hold maxSize bytes each, with older files
// kept; older 0 keeps none.
func open(t *testing.T, path string, maxSize int64, older int) *File {
	t.Helper()
	l, err := Open(path, config(maxSize, older))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// config returns the Config of a log whose files hold maxSize bytes each.
func config(maxSize int64, older int) Config {
	cfg := Config{MaxTotal: maxSize * int64(older+1), Older: older}
	if older == 0 {
		cfg.Older = NoOlder
	}
	return cfg
}

func write(t *testing.T, l *File, s string) {
	t.Helper()
	if n, err := l.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// files lists the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRotationOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.log")
	l := open(t, path, 8, 2)

	for i := range 8 {
		write(t, l, fmt.Sprintf("r%02d\n", i))
	}

	want := map[string]string{
		path:        "r06\nr07\n",
		path + ".1": "r04\nr05\n",
		path + ".2": "r02\nr03\n",
	}
	for p, content := range want {
		if got := read(t, p); got != content {
			t.Errorf("%s holds %q, want %q", filepath.Base(p), got, content)
		}
	}
	if got := files(t, filepath.Dir(path)); !slices.Equal(got,
		[]string{"pod.log", "pod.log.1", "pod.log.2"}) {
		t.Errorf("files %v, want pod.log and two older ones", got)
	}
}

func TestCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pod.log")
	const maxSize, maxFiles = 100, 3
	l := open(t, path, maxSize, maxFiles)

	var written strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("line %d\n", i)
		write(t, l, line)
		written.WriteString(line)

		if total := diskUsage(t, dir); total > maxSize*(maxFiles+1) {
			t.Fatalf("after %d lines the logs take %d bytes, more than %d", i+1, total,
				maxSize*(maxFiles+1))
		}
	}

	if got := files(t, dir); len(got) != maxFiles+1 {
		t.Fatalf("files %v, want %d", got, maxFiles+1)
	}
	// The files, oldest first, are the end of what was written.
	var kept string
	for i := maxFiles; i >= 0; i-- {
		kept += read(t, l.name(i))
	}
	if !strings.HasSuffix(written.String(), kept) || !strings.HasPrefix(kept, "line ") {
		t.Fatalf("the kept logs are not the last lines written:\n%s", kept)
	}
}

func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	for _, name := range files(t, dir) {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		total += info.Size()
	}
	return total
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pod.log")
	const writers, lines, maxSize = 8, 200, 512
	// Enough older files to keep everything, so that every line can be
	// found again.
	l := open(t, path, maxSize, 100)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(l, "writer %d line %03d\n", w, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for _, name := range files(t, dir) {
		data := read(t, filepath.Join(dir, name))
		if len(data) > maxSize {
			t.Errorf("%s has %d bytes, more than %d", name, len(data), maxSize)
		}
		for line := range strings.Lines(data) {
			if seen[line] {
				t.Errorf("line %q appears twice", line)
			}
			seen[line] = true
		}
	}
	for w := range writers {
		for i := range lines {
			if line := fmt.Sprintf("writer %d line %03d\n", w, i); !seen[line] {
				t.Fatalf("line %q is missing or torn", line)
			}
		}
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*lines)
	}
}

// TestLargeWrite checks that a record larger than a file is cut to fit a
// file of its own, so that the cap holds whatever is logged.
func TestLargeWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.log")
	const maxSize = 40
	l := open(t, path, maxSize, 3)
	big := strings.Repeat("b", 100) + "\n"

	write(t, l, "small\n")
	write(t, l, big)
	write(t, l, "x\n")

	cut := strings.Repeat("b", maxSize-len(cutMarker)) + cutMarker
	want := []string{"x\n", cut, "small\n"}
	for i, content := range want {
		if got := read(t, l.name(i)); got != content {
			t.Errorf("%s holds %q, want %q", filepath.Base(l.name(i)), got, content)
		}
	}
}

func TestShorten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.log")
	var gotLimit int
	cfg := config(64, 1)
	cfg.Shorten = func(record []byte, limit int) []byte {
		gotLimit = limit
		return fmt.Appendf(nil, "{\"cut\":%d}\n", len(record))
	}
	l, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	write(t, l, strings.Repeat("z", 500))
	if got := read(t, path); got != "{\"cut\":500}\n" || gotLimit != 64 {
		t.Fatalf("pod.log holds %q (limit %d), want the shortened record", got, gotLimit)
	}

	// A Shorten that does not shorten enough is cut after it.
	cfg.Shorten = func(record []byte, limit int) []byte { return record }
	l2, err := Open(filepath.Join(t.TempDir(), "other.log"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	write(t, l2, strings.Repeat("y", 500))
	if got := read(t, l2.path); len(got) != 64 || !strings.HasSuffix(got, cutMarker) {
		t.Fatalf("other.log holds %q", got)
	}
}

// TestTrimAtOpen checks that a log left by a run with a larger cap or more
// older files is brought within the new cap when it is opened.
func TestTrimAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pod.log")
	for name, size := range map[string]int{"pod.log": 300, "pod.log.1": 100,
		"pod.log.2": 100, "pod.log.3": 100, "pod.log.9": 10, "pod.log.x": 5,
		"pod.log.02": 7, "other.log.7": 3} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat("o",
			size)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	l := open(t, path, 100, 2)
	if total := logUsage(t, dir); total > 300 {
		t.Fatalf("after opening, the log takes %d bytes, more than 300", total)
	}
	got := files(t, dir)
	for _, kept := range []string{"pod.log.x", "pod.log.02", "other.log.7"} {
		if !slices.Contains(got, kept) {
			t.Errorf("%s, not a file of the log, was removed: %v", kept, got)
		}
	}
	if slices.Contains(got, "pod.log.9") || slices.Contains(got, "pod.log.3") {
		t.Errorf("older files beyond the two kept remain: %v", got)
	}

	write(t, l, "new\n")
	if got := read(t, path); got != "new\n" {
		t.Fatalf("pod.log holds %q after the oversized one was rotated away", got)
	}
}

// TestCapConcurrent writes records of every size, some larger than a file,
// from several goroutines, and checks the cap after each and that every
// kept record is whole.
func TestCapConcurrent(t *testing.T) {
	dir := t.TempDir()
	const maxTotal = 4096
	l, err := Open(filepath.Join(dir, "pod.log"), Config{MaxTotal: maxTotal, Older: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 300 {
				n := (w*7919 + i*104729) % 2500
				rec := fmt.Sprintf("<%d.%d %s>\n", w, i, strings.Repeat("r", n))
				if _, err := l.Write([]byte(rec)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	if total := logUsage(t, dir); total > maxTotal {
		t.Fatalf("the log takes %d bytes, more than its cap of %d", total, maxTotal)
	}
	for _, name := range files(t, dir) {
		for line := range strings.Lines(read(t, filepath.Join(dir, name))) {
			whole := strings.HasPrefix(line, "<") && strings.HasSuffix(line, ">\n")
			if !whole && !strings.HasSuffix(line, cutMarker) {
				t.Fatalf("%s holds a torn record %.40q", name, line)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "pod.log"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := l.MaxFileSize(), int64(DefaultMaxTotal/(DefaultOlder+1)); got != want {
		t.Fatalf("files of %d bytes by default, want %d", got, want)
	}
}

// logUsage is the size of pod.log and its numbered older files in dir.
func logUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	for _, name := range files(t, dir) {
		rest, ok := strings.CutPrefix(name, "pod.log")
		if !ok || rest == ".x" || rest == ".02" {
			continue
		}
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		total += info.Size()
	}
	return total
}

func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.log")
	l, err := Open(path, config(10, 2))
	if err != nil {
		t.Fatal(err)
	}
	write(t, l, "one\n")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open(t, path, 10, 2)
	write(t, l, "two\n")
	if got := read(t, path); got != "one\ntwo\n" {
		t.Fatalf("after a restart the log holds %q", got)
	}

	// The restarted writer counts what was already there.
	write(t, l, "three\n")
	if got := read(t, path+".1"); got != "one\ntwo\n" {
		t.Fatalf("pod.log.1 holds %q, want the lines before the restart", got)
	}
	if got := read(t, path); got != "three\n" {
		t.Fatalf("pod.log holds %q", got)
	}
}

func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pod.log")
	l := open(t, path, 4, 2)
	for range 5 {
		write(t, l, "abc\n")
	}

	for _, name := range files(t, dir) {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
	}
}

func TestNoOlderFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pod.log")
	l := open(t, path, 4, 0)
	write(t, l, "abc\n")
	write(t, l, "def\n")

	if got := files(t, dir); !slices.Equal(got, []string{"pod.log"}) {
		t.Fatalf("files %v, want pod.log alone", got)
	}
	if got := read(t, path); got != "def\n" {
		t.Fatalf("pod.log holds %q", got)
	}
}

func TestClose(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "pod.log"), config(10, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close: %v, want os.ErrClosed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		cfg  Config
	}{
		{"negative cap", filepath.Join(dir, "a.log"), Config{MaxTotal: -1}},
		{"cap smaller than the files", filepath.Join(dir, "a.log"),
			Config{MaxTotal: 3, Older: 3}},
		{"negative files", filepath.Join(dir, "b.log"), Config{MaxTotal: 10, Older: -2}},
		{"missing directory", filepath.Join(dir, "none", "c.log"), Config{}},
		{"a directory", dir, Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(tt.path, tt.cfg)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// TestRotationFailure makes rotation fail and checks that the log recovers
// once the cause is gone.
func TestRotationFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pod.log")
	l := open(t, path, 4, 1)
	write(t, l, "abc\n")

	// A directory where the older file goes cannot be replaced by a rename.
	if err := os.Mkdir(path+".1", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path+".1", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("def\n")); err == nil {
		t.Fatal("rotation onto a non-empty directory succeeded")
	}

	if err := os.RemoveAll(path + ".1"); err != nil {
		t.Fatal(err)
	}
	write(t, l, "ghi\n")
	write(t, l, "jkl\n")
	if got := read(t, path); got != "jkl\n" {
		t.Fatalf("pod.log holds %q after recovery", got)
	}
	if got := read(t, path+".1"); got != "ghi\n" {
		t.Fatalf("pod.log.1 holds %q after recovery", got)
	}
}

func BenchmarkWrite(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "pod.log"), Config{MaxTotal: 3 << 20, Older: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	line := []byte("time=2025-01-01T00:00:00Z level=INFO msg=\"request\" " +
		"path=/api/v1/status status=200 duration=1.2ms\n")

	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Write(line); err != nil {
			b.Fatal(err)
		}
	}
}
