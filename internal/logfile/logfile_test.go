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

func open(t *testing.T, path string, maxSize int64, maxFiles int) *File {
	t.Helper()
	l, err := Open(path, maxSize, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
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

func TestLargeWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.log")
	l := open(t, path, 10, 3)
	big := strings.Repeat("b", 24) + "\n"

	// Into an empty file a large record goes without rotating.
	write(t, l, big)
	if _, err := os.Stat(path + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a large first write rotated an empty file: %v", err)
	}

	write(t, l, "small\n")
	write(t, l, big)
	write(t, l, "x\n")

	want := []string{"x\n", big, "small\n", big}
	for i, content := range want {
		if got := read(t, l.name(i)); got != content {
			t.Errorf("%s holds %q, want %q", filepath.Base(l.name(i)), got, content)
		}
	}
}

func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.log")
	l, err := Open(path, 10, 2)
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
	l, err := Open(filepath.Join(t.TempDir(), "pod.log"), 10, 1)
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
		name     string
		path     string
		maxSize  int64
		maxFiles int
	}{
		{"zero size", filepath.Join(dir, "a.log"), 0, 1},
		{"negative files", filepath.Join(dir, "b.log"), 10, -1},
		{"missing directory", filepath.Join(dir, "none", "c.log"), 10, 1},
		{"a directory", dir, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(tt.path, tt.maxSize, tt.maxFiles)
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
	l, err := Open(filepath.Join(b.TempDir(), "pod.log"), 1<<20, 2)
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
