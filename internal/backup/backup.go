package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
)

// Options configures Create.
type Options struct {
	// Root is the pod's ROOT_DIR (required).
	Root string

	// AccountID and Network are recorded in the manifest (required).
	AccountID string
	Network   string

	// TempDir holds the copies of the databases until they are archived
	// [os.TempDir()]; it needs room for them.
	TempDir string

	// Exclude lists absolute paths under Root to leave out, such as the
	// archive being written.
	Exclude []string

	// Now is the clock [time.Now].
	Now func() time.Time

	// Logger reports progress; nil discards.
	Logger *slog.Logger
}

// fileAttempts bounds how often Create copies the files again because the
// pod changed one meanwhile, as when it renews a certificate: its key and
// certificate must come from the same moment.
//
// TODO(byoda): a renewal that saves the key before the copy pass and the
// certificate only after the check that follows it still yields a pair
// that does not match; the window is one file write, but matching each key
// to its certificate needs PRIVATE_KEY_SECRET, which backups do not ask for.
const fileAttempts = 5

// entry is a file of Root to archive.
type entry struct {
	rel    string // relative, with slashes
	abs    string
	mode   fs.FileMode
	sqlite bool
	stat   fileStat // when copied
	staged string   // the copy
	size   int64
	sum    string
}

// fileStat is what tells that a file changed.
type fileStat struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func statOf(info fs.FileInfo) fileStat {
	s := fileStat{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// Create writes an archive of opts.Root to w while the pod may be running
// and returns its manifest. Every database is one snapshot; the other
// files are copied as a set that did not change while it was copied.
func Create(ctx context.Context, w io.Writer, opts Options) (*Manifest, error) {
	if opts.Root == "" || opts.AccountID == "" || opts.Network == "" {
		return nil, errors.New("backup: the root directory, account id and network are " +
			"required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	dirs, files, err := scan(opts.Root, opts.Exclude, opts.Logger)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(opts.TempDir, "byoda-backup-")
	if err != nil {
		return nil, fmt.Errorf("making a staging directory for the backup: %w", err)
	}
	defer os.RemoveAll(stage)

	files, err = stageAll(ctx, stage, files, opts.Logger)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Format: Format, Version: Version, AccountID: opts.AccountID,
		Network: opts.Network, Created: opts.Now().UTC(), Dirs: dirs}
	for _, e := range files {
		m.Files = append(m.Files, File{Path: e.rel, Size: e.size, SHA256: e.sum,
			Mode: e.mode, SQLite: e.sqlite})
	}
	if err := writeArchive(w, m, files); err != nil {
		return nil, err
	}
	return m, nil
}

// scan lists the directories and the files of root to archive: regular
// files, except the -wal, -shm and -journal files of SQLite databases and
// the excluded paths. Symbolic links, sockets and devices are skipped with
// a warning.
func scan(root string, exclude []string, logger *slog.Logger) ([]Dir, []*entry, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, nil, fmt.Errorf("backing up ROOT_DIR: %w", err)
	}
	if !info.IsDir() {
		return nil, nil, fmt.Errorf("backing up ROOT_DIR: %s is not a directory", root)
	}

	skip := map[string]bool{}
	for _, p := range exclude {
		skip[filepath.Clean(p)] = true
	}
	var dirs []Dir
	var files []*entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil // removed while the walk went on
			}
			return err
		}
		if p == root || skip[p] {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}

		switch {
		case d.IsDir():
			dirs = append(dirs, Dir{Path: rel, Mode: info.Mode().Perm()})
		case d.Type().IsRegular():
			files = append(files, &entry{rel: rel, abs: p, mode: info.Mode().Perm()})
		default:
			logger.Warn("not backed up: not a regular file", "path", rel,
				"type", d.Type().String())
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading ROOT_DIR: %w", err)
	}
	files, err = markDatabases(files)
	return dirs, files, err
}

// markDatabases marks the SQLite databases among files and leaves out
// their -wal, -shm and -journal files, whose content the database copies
// hold.
func markDatabases(files []*entry) ([]*entry, error) {
	databases := map[string]bool{}
	for _, e := range files {
		ok, err := isSQLite(e.abs)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", e.abs, err)
		}
		e.sqlite = ok
		databases[e.rel] = ok
	}

	kept := files[:0]
	for _, e := range files {
		db, sidecar := strings.CutSuffix(e.rel, "-wal")
		if !sidecar {
			db, sidecar = strings.CutSuffix(e.rel, "-shm")
		}
		if !sidecar {
			db, sidecar = strings.CutSuffix(e.rel, "-journal")
		}
		if sidecar && databases[db] {
			continue
		}
		kept = append(kept, e)
	}
	return kept, nil
}

// stageAll copies every file into stage: the plain files, then the
// databases, and then the plain files again as long as one of them
// changed since it was copied. A file removed meanwhile is left out.
func stageAll(ctx context.Context, stage string, files []*entry, logger *slog.Logger) (
	[]*entry, error) {
	for i, e := range files {
		e.staged = filepath.Join(stage, fmt.Sprintf("%06d", i))
	}

	plain := func(e *entry) bool { return !e.sqlite }
	if err := stageFiles(files, plain); err != nil {
		return nil, err
	}
	for _, e := range files {
		if !e.sqlite {
			continue
		}
		start := time.Now()
		if err := snapshotSQLite(ctx, e.abs, e.staged); err != nil {
			return nil, err
		}
		if err := hashStaged(e); err != nil {
			return nil, err
		}
		logger.Info("backed up database", "path", e.rel, "bytes", e.size,
			"duration", time.Since(start))
	}

	for attempt := 1; ; attempt++ {
		changed, err := changedFiles(files)
		if err != nil {
			return nil, err
		}
		if len(changed) == 0 {
			break
		}
		if attempt == fileAttempts {
			return nil, fmt.Errorf("files under ROOT_DIR, such as %s, kept changing "+
				"during the backup; try again", changed[0].rel)
		}
		logger.Info("files changed during the backup; copying them again",
			"files", len(changed), "first", changed[0].rel)
		if err := stageFiles(files, plain); err != nil {
			return nil, err
		}
	}

	kept := files[:0]
	for _, e := range files {
		if e.sum != "" {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// stageFiles copies the files that want selects into their staged paths,
// hashing them on the way.
func stageFiles(files []*entry, want func(*entry) bool) error {
	for _, e := range files {
		if !want(e) {
			continue
		}
		if err := stageFile(e); err != nil {
			return err
		}
	}
	return nil
}

// stageFile copies one file and notes its state before the copy; a file
// that no longer exists gets no checksum and is left out.
func stageFile(e *entry) error {
	e.sum, e.size = "", 0
	src, err := os.Open(e.abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backing up %s: %w", e.abs, err)
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return fmt.Errorf("backing up %s: %w", e.abs, err)
	}
	e.stat = statOf(info)

	dst, err := os.OpenFile(e.staged, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("backing up %s: %w", e.abs, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), src)
	if closeErr := dst.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("backing up %s: %w", e.abs, err)
	}
	e.size, e.sum = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// hashStaged notes the size and checksum of a staged copy.
func hashStaged(e *entry) error {
	f, err := os.Open(e.staged)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("reading the copy of %s: %w", e.abs, err)
	}
	e.size, e.sum = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// changedFiles returns the plain files that changed, appeared to be
// replaced or vanished since they were copied.
func changedFiles(files []*entry) ([]*entry, error) {
	var changed []*entry
	for _, e := range files {
		if e.sqlite {
			continue
		}
		info, err := os.Stat(e.abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if e.sum != "" {
				changed = append(changed, e)
			}
		case err != nil:
			return nil, fmt.Errorf("backing up %s: %w", e.abs, err)
		case e.sum == "" || statOf(info) != e.stat:
			changed = append(changed, e)
		}
	}
	return changed, nil
}

// writeArchive writes the manifest and then the directories and staged
// files as a gzip-compressed tar stream.
func writeArchive(w io.Writer, m *Manifest, files []*entry) error {
	// The fastest level: database pages compress well at any level, and a
	// pod's machine may be small.
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)

	doc, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: manifestName,
		Size: int64(len(doc)), Mode: 0o600, ModTime: m.Created, Format: tar.FormatPAX})
	if err == nil {
		_, err = tw.Write(doc)
	}
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}

	for _, d := range m.Dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir,
			Name: rootPrefix + d.Path + "/", Mode: int64(d.Mode), ModTime: m.Created,
			Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("writing the backup: %w", err)
		}
	}
	for _, e := range files {
		if err := writeStaged(tw, e, m.Created); err != nil {
			return err
		}
	}

	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	return nil
}

func writeStaged(tw *tar.Writer, e *entry, modTime time.Time) error {
	f, err := os.Open(e.staged)
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	defer f.Close()

	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rootPrefix + e.rel,
		Size: e.size, Mode: int64(e.mode), ModTime: modTime,
		Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("writing %s into the backup: %w", e.rel, err)
	}
	return nil
}

// CreateFile writes an archive of opts.Root to path, readable only by its
// owner: to path.tmp, synced, and then renamed, so that path is either a
// whole archive or what it was before. The archive itself is left out of
// the backup when it lies under the root.
func CreateFile(ctx context.Context, path string, opts Options) (*Manifest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	tmp := abs + ".tmp"
	opts.Exclude = append(opts.Exclude, abs, tmp)
	if opts.TempDir == "" {
		opts.TempDir = filepath.Dir(abs)
	}

	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing the backup: %w", err)
	}
	defer os.Remove(tmp)

	m, err := Create(ctx, f, opts)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("writing the backup: %w", closeErr)
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, abs); err != nil {
		return nil, fmt.Errorf("writing the backup: %w", err)
	}
	return m, pki.SyncDir(filepath.Dir(abs))
}
