// Package logfile writes a log to a file that rotates by size under a cap on
// the total size of the log, so that a long-running server's logs, even at
// DEBUG, can never fill its disk.
//
// A File at path writes to path until the next record would make it larger
// than its share of the cap; then path becomes path.1, path.1 becomes path.2
// and so on, the oldest is deleted, and a new path is started. With a cap C
// and N older files each file holds at most C/(N+1) bytes, so that the
// files together never take more than C. A record larger than a file is
// shortened to fit, never split over two files.
//
// One process writes a log file: two Files on the same path would rotate
// each other's files away.
package logfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Defaults of Config.
const (
	DefaultMaxTotal = 100 << 20 // bytes
	DefaultOlder    = 5
)

// NoOlder, as Config.Older, keeps no older files: the log starts afresh
// when the current file is full.
const NoOlder = -1

// perm keeps logs, which name accounts and addresses, to their owner.
const perm = 0o600

// cutMarker ends a record that Write shortened to fit a file.
const cutMarker = " [record cut to fit the log file]\n"

// Config says how large a log may grow.
type Config struct {
	// MaxTotal caps the bytes of the current file and the older ones
	// together [DefaultMaxTotal].
	MaxTotal int64

	// Older is how many older files are kept [DefaultOlder]; NoOlder keeps
	// none.
	Older int

	// Shorten, when set, rewrites a record longer than limit bytes into
	// one of at most limit bytes, such as a short record that says what
	// was cut; it must not keep record. A result that is empty or still
	// too long is cut as if Shorten were nil: the record's start and a
	// marker.
	Shorten func(record []byte, limit int) []byte
}

// File is a log file that rotates by size. Its methods are safe for
// concurrent use.
type File struct {
	path    string
	maxSize int64 // of one file
	older   int
	shorten func([]byte, int) []byte

	mu     sync.Mutex
	f      *os.File // nil after a failed rotation until a write reopens it
	size   int64
	closed bool
}

// Open opens the log file at path for appending, creating it if needed.
// Older files left by an earlier run that do not fit cfg, because there are
// more of them or they are larger, are deleted, oldest first, until the log
// is within the cap.
func Open(path string, cfg Config) (*File, error) {
	if cfg.MaxTotal == 0 {
		cfg.MaxTotal = DefaultMaxTotal
	}
	switch {
	case cfg.Older == 0:
		cfg.Older = DefaultOlder
	case cfg.Older == NoOlder:
		cfg.Older = 0
	case cfg.Older < 0:
		return nil, fmt.Errorf("opening log %s: negative number of older files %d", path,
			cfg.Older)
	}
	maxSize := cfg.MaxTotal / int64(cfg.Older+1)
	if cfg.MaxTotal < 0 || maxSize < 1 {
		return nil, fmt.Errorf("opening log %s: a cap of %d bytes leaves %d older files "+
			"no room", path, cfg.MaxTotal, cfg.Older)
	}

	l := &File{path: path, maxSize: maxSize, older: cfg.Older, shorten: cfg.Shorten}
	if err := l.open(); err != nil {
		return nil, err
	}
	if err := l.trim(); err != nil {
		l.f.Close()
		return nil, err
	}
	return l, nil
}

// MaxFileSize returns the largest a single file of the log grows.
func (l *File) MaxFileSize() int64 { return l.maxSize }

// open opens the current file and learns its size, so that a restarted
// server continues where the last one stopped.
func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening log: %w", err)
	}

	l.f, l.size = f, info.Size()
	return nil
}

// trim brings what an earlier run left within the cap: older files beyond
// the number kept go, a current file over its size is rotated, and then
// older files go, oldest first, while the log takes more than the cap.
func (l *File) trim() error {
	if err := l.removeBeyond(); err != nil {
		return fmt.Errorf("opening log %s: %w", l.path, err)
	}
	if l.size > l.maxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}

	sizes := make([]int64, l.older+1)
	total := l.size
	for i := 1; i <= l.older; i++ {
		if info, err := os.Stat(l.name(i)); err == nil {
			sizes[i] = info.Size()
			total += sizes[i]
		}
	}
	for i := l.older; i >= 1 && total > l.maxSize*int64(l.older+1); i-- {
		if sizes[i] == 0 {
			continue
		}
		if err := ignoreMissing(os.Remove(l.name(i))); err != nil {
			return fmt.Errorf("opening log %s: %w", l.path, err)
		}
		total -= sizes[i]
	}
	return nil
}

// removeBeyond deletes the older files numbered past the number kept.
func (l *File) removeBeyond() error {
	entries, err := os.ReadDir(filepath.Dir(l.path))
	if err != nil {
		return err
	}
	prefix := filepath.Base(l.path) + "."
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		n, err := strconv.Atoi(suffix)
		if !ok || err != nil || n <= l.older || strconv.Itoa(n) != suffix ||
			!e.Type().IsRegular() {
			continue
		}
		if err := ignoreMissing(os.Remove(l.name(n))); err != nil {
			return err
		}
	}
	return nil
}

// Write appends the record p to the log, rotating first if p would take
// the file past its maximum size, and shortening p if it is larger than a
// file. If the rotation fails, p is not written, so that the cap holds,
// and the next write tries again. A Write that succeeds reports len(p)
// bytes written even when p was shortened.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if l.closed {
		return 0, fmt.Errorf("writing log %s: %w", l.path, os.ErrClosed)
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	record := p
	if int64(len(record)) > l.maxSize {
		record = l.fit(p)
	}
	if l.size > 0 && l.size+int64(len(record)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}

	n, err := l.f.Write(record)
	l.size += int64(n)
	if err != nil {
		return 0, fmt.Errorf("writing log: %w", err)
	}
	return len(p), nil
}

// fit returns p shortened to at most one file's size.
func (l *File) fit(p []byte) []byte {
	limit := int(l.maxSize)
	if l.shorten != nil {
		if s := l.shorten(p, limit); len(s) > 0 && len(s) <= limit {
			return s
		}
	}
	if limit <= len(cutMarker) {
		return []byte(cutMarker[len(cutMarker)-limit:])
	}
	out := make([]byte, 0, limit)
	out = append(out, p[:limit-len(cutMarker)]...)
	return append(out, cutMarker...)
}

// rotate shifts the older files up by one, deleting the oldest, and starts
// a new current file. If the new file cannot be opened, the next write
// tries again.
func (l *File) rotate() error {
	closeErr := l.f.Close()
	l.f, l.size = nil, 0

	var errs []error
	if closeErr != nil {
		errs = append(errs, closeErr)
	}
	if err := l.shift(); err != nil {
		errs = append(errs, err)
	}
	if err := l.open(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rotating log %s: %w", l.path, err)
	}
	return nil
}

// shift renames path.i to path.i+1 from the oldest down and path to path.1;
// with no older files kept, path is simply deleted. Files missing from the
// sequence are skipped.
func (l *File) shift() error {
	if l.older == 0 {
		return ignoreMissing(os.Remove(l.path))
	}

	if err := ignoreMissing(os.Remove(l.name(l.older))); err != nil {
		return err
	}
	for i := l.older - 1; i >= 0; i-- {
		if err := ignoreMissing(os.Rename(l.name(i), l.name(i+1))); err != nil {
			return err
		}
	}
	return nil
}

// name is the file that holds the log i rotations ago.
func (l *File) name(i int) string {
	if i == 0 {
		return l.path
	}
	return l.path + "." + strconv.Itoa(i)
}

func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Close closes the file; later writes fail with an error wrapping
// os.ErrClosed.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()

	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}

	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("closing log %s: %w", l.path, err)
	}
	return nil
}
