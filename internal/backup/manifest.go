// Package backup copies a pod's ROOT_DIR into one archive while the pod
// runs, and restores such an archive into a fresh ROOT_DIR.
//
// An archive is a gzip-compressed tar file. Its first entry, manifest.json,
// names the format, the account, the network and the time of the backup,
// and lists every file with its size, mode and SHA-256; the files follow
// under root/, by their paths relative to ROOT_DIR. Each SQLite database
// is copied through SQLite's online backup API, so that it is one
// consistent snapshot even while the pod writes to it; its -wal and -shm
// files are left out, as the copy holds all they hold. Keys are copied as
// they are on disk, encrypted with PRIVATE_KEY_SECRET.
//
// Restore trusts nothing in an archive: it refuses names that are
// absolute, climb out with "..", or are links or devices, checks every
// file against the manifest as it is unpacked into a directory of its own,
// checks that PRIVATE_KEY_SECRET opens the keys, and only then moves the
// result into place.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Format and Version identify the archives this package writes.
const (
	Format  = "byoda-pod-backup"
	Version = 1
)

// manifestName is the archive's first entry; rootPrefix starts the name of
// every entry of ROOT_DIR.
const (
	manifestName = "manifest.json"
	rootPrefix   = "root/"
)

// maxManifest bounds the manifest read from an archive.
const maxManifest = 16 << 20

// Manifest describes an archive.
type Manifest struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	AccountID string    `json:"account_id"`
	Network   string    `json:"network"`
	Created   time.Time `json:"created"`

	// Dirs are the directories of ROOT_DIR, parents first.
	Dirs []Dir `json:"dirs"`

	// Files are the files of ROOT_DIR.
	Files []File `json:"files"`
}

// Dir is a directory of ROOT_DIR.
type Dir struct {
	// Path is relative to ROOT_DIR, with slashes.
	Path string `json:"path"`

	// Mode holds the permission bits.
	Mode fs.FileMode `json:"mode"`
}

// File is a file of ROOT_DIR.
type File struct {
	// Path is relative to ROOT_DIR, with slashes.
	Path string `json:"path"`

	Size   int64       `json:"size"`
	SHA256 string      `json:"sha256"`
	Mode   fs.FileMode `json:"mode"`

	// SQLite marks a database copied through SQLite's backup API.
	SQLite bool `json:"sqlite,omitempty"`
}

// Bytes returns the size of the files together.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Databases returns how many of the files are SQLite databases.
func (m *Manifest) Databases() int {
	n := 0
	for _, f := range m.Files {
		if f.SQLite {
			n++
		}
	}
	return n
}

// parseManifest reads and checks a manifest: its format and version, and
// that every path is one Restore may write.
func parseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", manifestName, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("not a pod backup: %s names the format %q, not %q",
			manifestName, m.Format, Format)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("the backup is of format version %d; this byoda reads "+
			"version %d", m.Version, Version)
	}
	if m.AccountID == "" || m.Network == "" {
		return nil, fmt.Errorf("%s lacks the account id or the network", manifestName)
	}

	seen := map[string]bool{}
	for _, d := range m.Dirs {
		if err := checkPath(d.Path); err != nil {
			return nil, err
		}
		seen[d.Path] = true
	}
	for _, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			return nil, err
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("%s lists %q twice", manifestName, f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || len(f.SHA256) != 64 {
			return nil, fmt.Errorf("%s: bad size or checksum of %q", manifestName, f.Path)
		}
	}
	return &m, nil
}

// errUnsafePath is wrapped by the errors about names that could write
// outside ROOT_DIR.
var errUnsafePath = errors.New("unsafe path")

// checkPath refuses a path that is not a plain relative path inside
// ROOT_DIR: absolute, with "." or ".." elements, empty elements or
// backslashes.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." ||
		strings.HasPrefix(p, "../") || strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("%w %q: a backup holds only relative paths inside ROOT_DIR",
			errUnsafePath, p)
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == ".." || elem == "." || elem == "" {
			return fmt.Errorf("%w %q: a backup holds only relative paths inside ROOT_DIR",
				errUnsafePath, p)
		}
	}
	return nil
}
