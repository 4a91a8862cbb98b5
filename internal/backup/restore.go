package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/byoda/byoda-go/internal/pki"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Root is the ROOT_DIR to restore into (required). It must be missing
	// or empty unless Force is set.
	Root string

	// Force replaces what Root holds. The pod using Root must be stopped.
	Force bool

	// PrivateKeySecret must open the archive's keys (required).
	PrivateKeySecret []byte

	// Network and AccountID, when set, must be the archive's.
	Network   string
	AccountID string

	// Logger reports progress; nil discards.
	Logger *slog.Logger

	// stageInRoot unpacks inside Root, as when Root is a mount point that
	// cannot be renamed over.
	stageInRoot bool
}

// ErrNotEmpty means the ROOT_DIR to restore into holds files.
var ErrNotEmpty = errors.New("ROOT_DIR is not empty")

// Restore unpacks the archive r into opts.Root. Everything is written into
// a staging directory first, beside Root or, when Root is a mount point,
// inside it, and checked there against the manifest and
// PrivateKeySecret; only then does it move into Root. A restore that fails
// leaves Root as it was.
func Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (*Manifest, error) {
	if opts.Root == "" || len(opts.PrivateKeySecret) == 0 {
		return nil, errors.New("restore: ROOT_DIR and PRIVATE_KEY_SECRET are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}

	t, err := inspectTarget(root, opts.Force)
	if err != nil {
		return nil, err
	}
	stageParent := filepath.Dir(root)
	if t.exists && (t.mountPoint || opts.stageInRoot) {
		stageParent = root
	}
	if err := os.MkdirAll(stageParent, 0o700); err != nil {
		return nil, fmt.Errorf("restoring: %w", err)
	}
	stage, err := os.MkdirTemp(stageParent, "."+filepath.Base(root)+".restore-")
	if err != nil {
		return nil, fmt.Errorf("making a staging directory for the restore: %w", err)
	}
	defer os.RemoveAll(stage)

	m, err := unpack(ctx, r, stage)
	if err != nil {
		return nil, err
	}
	if err := checkIdentity(m, opts); err != nil {
		return nil, err
	}
	if err := checkKeys(stage, m, opts.PrivateKeySecret); err != nil {
		return nil, err
	}
	if err := syncTree(stage); err != nil {
		return nil, err
	}
	if err := install(stage, root, t, stageParent == root); err != nil {
		return nil, err
	}
	opts.Logger.Info("restored", "root_dir", root, "account_id", m.AccountID,
		"files", len(m.Files), "bytes", m.Bytes())
	return m, nil
}

// target is what a restore found at ROOT_DIR.
type target struct {
	exists, empty, mountPoint bool
}

func inspectTarget(root string, force bool) (target, error) {
	info, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return target{}, nil
	}
	if err != nil {
		return target{}, fmt.Errorf("restoring into ROOT_DIR: %w", err)
	}
	if !info.IsDir() {
		return target{}, fmt.Errorf("ROOT_DIR %s is not a directory", root)
	}

	entries, err := os.ReadDir(root)
	if err != nil {
		return target{}, fmt.Errorf("restoring into ROOT_DIR: %w", err)
	}
	t := target{exists: true, empty: len(entries) == 0}
	if parent, err := os.Stat(filepath.Dir(root)); err == nil {
		t.mountPoint = deviceOf(parent) != deviceOf(info)
	}
	if !t.empty && !force {
		return t, fmt.Errorf("%w: %s holds %s and more; a restore would replace the pod "+
			"kept there. Restore into an empty or new ROOT_DIR, or stop that pod and "+
			"pass --force to replace it", ErrNotEmpty, root, entries[0].Name())
	}
	return t, nil
}

func deviceOf(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// unpack reads the archive into stage, checking every entry against the
// manifest, and returns the manifest.
func unpack(ctx context.Context, r io.Reader, stage string) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a pod backup (a gzip-compressed tar file): %w", err)
	}
	tr := tar.NewReader(gz)

	m, err := readManifest(tr)
	if err != nil {
		return nil, err
	}
	want := map[string]File{}
	for _, f := range m.Files {
		want[f.Path] = f
	}
	dirs := map[string]bool{}
	for _, d := range m.Dirs {
		dirs[d.Path] = true
	}

	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the backup: %w", err)
		}
		if err := unpackEntry(tr, hdr, stage, want, dirs); err != nil {
			return nil, err
		}
	}

	for p := range want {
		return nil, fmt.Errorf("the backup is incomplete: its manifest lists %s, which "+
			"the archive lacks", p)
	}
	for _, d := range m.Dirs {
		if err := os.MkdirAll(filepath.Join(stage, filepath.FromSlash(d.Path)),
			0o700); err != nil {
			return nil, err
		}
	}
	for _, d := range slices.Backward(m.Dirs) {
		if err := os.Chmod(filepath.Join(stage, filepath.FromSlash(d.Path)),
			d.Mode.Perm()|0o700); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func readManifest(tr *tar.Reader) (*Manifest, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("not a pod backup: %w", err)
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("not a pod backup: it starts with %q, not %s", hdr.Name,
			manifestName)
	}
	if hdr.Size > maxManifest {
		return nil, fmt.Errorf("not a pod backup: %s has %d bytes", manifestName, hdr.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", manifestName, err)
	}
	return parseManifest(data)
}

// unpackEntry writes one archive entry into stage; it must be a directory
// or a file of the manifest, under root/ with a safe name, and a file must
// match its size and checksum. An entry written is taken out of want.
func unpackEntry(tr *tar.Reader, hdr *tar.Header, stage string, want map[string]File,
	dirs map[string]bool) error {
	rest, ok := strings.CutPrefix(hdr.Name, rootPrefix)
	if !ok {
		return fmt.Errorf("refusing the backup: entry %q is not under %s", hdr.Name,
			rootPrefix)
	}
	rel := strings.TrimSuffix(rest, "/")
	if err := checkPath(rel); err != nil {
		return fmt.Errorf("refusing the backup: entry %q: %w", hdr.Name, err)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !dirs[rel] {
			return fmt.Errorf("refusing the backup: directory %q is not in its manifest",
				rel)
		}
		return os.MkdirAll(filepath.Join(stage, filepath.FromSlash(rel)), 0o700)
	case tar.TypeReg:
		f, ok := want[rel]
		if !ok {
			return fmt.Errorf("refusing the backup: file %q is not in its manifest, or "+
				"is there twice", rel)
		}
		delete(want, rel)
		if hdr.Size != f.Size {
			return fmt.Errorf("the backup is damaged: %s has %d bytes, its manifest says %d",
				rel, hdr.Size, f.Size)
		}
		return writeChecked(tr, filepath.Join(stage, filepath.FromSlash(rel)), f)
	default:
		return fmt.Errorf("refusing the backup: entry %q is a %s; a backup holds only "+
			"files and directories", hdr.Name, typeName(hdr.Typeflag))
	}
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("entry of type %q", flag)
}

// writeChecked writes the file f from r to the new path dst, synced, and
// checks its checksum. The staging directory holds only what unpack made,
// directories and files, so no link can lead the write elsewhere.
func writeChecked(r io.Reader, dst string, f File) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW,
		0o600)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", f.Path, err)
	}
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(out, h), r, f.Size)
	if err == nil {
		err = out.Chmod(f.Mode.Perm())
	}
	if err == nil {
		err = out.Sync()
	}
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", f.Path, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 {
		return fmt.Errorf("the backup is damaged: the checksum of %s is %s, its manifest "+
			"says %s", f.Path, sum, f.SHA256)
	}
	return nil
}

// checkIdentity checks the archive against the network and account the
// restore was told to expect.
func checkIdentity(m *Manifest, opts RestoreOptions) error {
	if opts.Network != "" && opts.Network != m.Network {
		return fmt.Errorf("the backup is of a pod of network %s, and NETWORK is %s",
			m.Network, opts.Network)
	}
	if opts.AccountID != "" && !strings.EqualFold(opts.AccountID, m.AccountID) {
		return fmt.Errorf("the backup is of account %s, and ACCOUNT_ID is %s", m.AccountID,
			opts.AccountID)
	}
	return nil
}

// checkKeys checks that secret opens the account key and every other key
// of the archive.
func checkKeys(stage string, m *Manifest, secret []byte) error {
	paths := pki.Paths{Root: stage, Network: m.Network}
	accountKey, err := filepath.Rel(stage, paths.AccountKey())
	if err != nil {
		return err
	}
	accountKey = filepath.ToSlash(accountKey)

	found := false
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Path, "private/") || path.Ext(f.Path) != ".key" {
			continue
		}
		found = found || f.Path == accountKey
		_, err := pki.LoadKey(filepath.Join(stage, filepath.FromSlash(f.Path)), secret)
		if errors.Is(err, pki.ErrWrongPassword) {
			return fmt.Errorf("PRIVATE_KEY_SECRET does not open %s of the backup: set it "+
				"to the passphrase of the pod that made the backup", f.Path)
		}
		if err != nil {
			return fmt.Errorf("the backup's key %s does not load: %w", f.Path, err)
		}
	}
	if !found {
		return fmt.Errorf("the backup holds no account key (%s): it is not of a pod that "+
			"has started", accountKey)
	}
	return nil
}

// syncTree makes the directories under dir durable, deepest first; the
// files were synced as they were written.
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := pki.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// install moves the staged tree into root: with one rename when root is
// missing or an empty directory that can be replaced, and otherwise entry
// by entry, the account id file last, setting aside what root held and
// putting everything back should a move fail.
func install(stage, root string, t target, stagedInRoot bool) error {
	parent := filepath.Dir(root)
	if !t.exists || (t.empty && !stagedInRoot) {
		// os.Rename refuses to replace a directory; rename(2) replaces an
		// empty one in the same step.
		err := syscall.Rename(stage, root)
		if err == nil {
			return pki.SyncDir(parent)
		}
		if !t.exists || !(errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV)) {
			return fmt.Errorf("moving the restored files into ROOT_DIR: %w", err)
		}
	}
	return moveEntries(stage, root)
}

// accountIDFile is the pod's file that names its account; a pod that finds
// none may make a new identity, so it moves into place last.
const accountIDFile = "account_id"

// move is a rename done, to undo.
type move struct{ from, to string }

func moveEntries(stage, root string) (err error) {
	var done []move
	undo := func() {
		for _, mv := range slices.Backward(done) {
			os.Rename(mv.to, mv.from)
		}
	}
	rename := func(from, to string) error {
		if err := os.Rename(from, to); err != nil {
			return err
		}
		done = append(done, move{from, to})
		return nil
	}

	existing, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var aside string
	for _, e := range existing {
		if filepath.Join(root, e.Name()) == stage {
			continue
		}
		if aside == "" {
			if aside, err = os.MkdirTemp(root, ".replaced-"); err != nil {
				return err
			}
		}
		if err := rename(filepath.Join(root, e.Name()), filepath.Join(aside,
			e.Name())); err != nil {
			undo()
			os.Remove(aside)
			return fmt.Errorf("setting aside what ROOT_DIR held: %w", err)
		}
	}

	staged, err := os.ReadDir(stage)
	if err == nil {
		slices.SortStableFunc(staged, func(a, b fs.DirEntry) int {
			return boolInt(a.Name() == accountIDFile) - boolInt(b.Name() == accountIDFile)
		})
		for _, e := range staged {
			if err = rename(filepath.Join(stage, e.Name()), filepath.Join(root,
				e.Name())); err != nil {
				break
			}
		}
	}
	if err != nil {
		undo()
		if aside != "" {
			os.Remove(aside)
		}
		return fmt.Errorf("moving the restored files into ROOT_DIR: %w", err)
	}

	if aside != "" {
		if err := os.RemoveAll(aside); err != nil {
			return fmt.Errorf("removing what ROOT_DIR held before the restore: %w", err)
		}
	}
	return pki.SyncDir(root)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
