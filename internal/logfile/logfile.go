// Package logfile writes a log to a file that rotates by size and keeps a
// fixed number of older files, so that a long-running server's logs can never
// fill its disk.
//
// A File at path writes to path until the next write would make it larger
// than the size limit; then path becomes path.1, path.1 becomes path.2 and so
// on, the oldest is deleted, and a new path is started. With a size limit S
// and N older files the logs take at most about S*(N+1) bytes. One process
// writes a log file: two Files on the same path would rotate each other's
// files away.
package logfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Defaults used by the pod for its logs.
const (
	DefaultMaxSize  = 10 << 20 // bytes
	DefaultMaxFiles = 5
)

// perm keeps logs, which name accounts and addresses, to their owner.
const perm = 0o600

// File is a log file that rotates by size. Its methods are safe for
// concurrent use.
type File struct {
	path     string
	maxSize  int64
	maxFiles int

	mu     sync.Mutex
	f      *os.File // nil after a failed rotation until a write reopens it
	size   int64
	closed bool
}

// Open opens the log file at path for appending, creating it if needed.
// The file rotates when a write would take it past maxSize bytes, and
// maxFiles older files are kept, from path.1 (the newest) to path.maxFiles.
// A single write larger than maxSize goes whole into a file of its own, so
// that a log record is never split.
func Open(path string, maxSize int64, maxFiles int) (*File, error) {
	if maxSize < 1 {
		return nil, fmt.Errorf("opening log %s: maximum size %d is not positive", path, maxSize)
	}
	if maxFiles < 0 {
		return nil, fmt.Errorf("opening log %s: negative number of files %d", path, maxFiles)
	}

	l := &File{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

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

// Write appends p to the log, rotating first if p would take the file past
// its maximum size. If the rotation fails, p is not written, so that the
// size limit holds, and the next write tries again.
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
	if l.size > 0 && l.size+int64(len(p)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}

	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing log: %w", err)
	}
	return n, nil
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
	if l.maxFiles == 0 {
		return ignoreMissing(os.Remove(l.path))
	}

	if err := ignoreMissing(os.Remove(l.name(l.maxFiles))); err != nil {
		return err
	}
	for i := l.maxFiles - 1; i >= 0; i-- {
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
