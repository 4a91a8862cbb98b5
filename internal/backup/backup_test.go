package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/store"
)

const (
	network   = "byoda.test"
	keySecret = "backup-test-key-secret"
	accountID = "6e1fb0a6-2f45-4b7c-9a2d-0c1f3f0e5a11"
)

var owner = store.Origin{ID: "11111111-2222-4333-8444-555555555555", IDType: "members-"}

// notesContract is the contract of the test notes service.
func notesContract(t testing.TB) *contract.Contract {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "service", "testdata", "notes.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := contract.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// podRoot makes a ROOT_DIR laid out as a pod's: an account id, a root CA
// certificate, an encrypted account key, a data store and a file in a
// directory of mode 0750. It returns the root and the store, open.
func podRoot(t testing.TB) (string, *store.Store) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	paths := pki.Paths{Root: root, Network: network}
	if err := pki.WriteFile(filepath.Join(root, "account_id"), []byte(accountID+"\n"),
		0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewRootCA(network, mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(paths.RootCACert(), pki.EncodeCert(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pki.SaveKey(paths.AccountKey(), mustKey(t), []byte(keySecret)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "extra"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "extra", "settings.txt"), []byte("x=1\n"),
		0o640); err != nil {
		t.Fatal(err)
	}

	dbPath := filepath.Join(paths.PrivateDir(), "network-"+network, "account-pod", "data",
		"data.db")
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), dbPath, notesContract(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return root, s
}

func mustKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := pki.GenerateKey(pki.Account)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func appendNote(s *store.Store, title string) error {
	_, err := s.Append(context.Background(), "notes", store.Record{
		"note_id": uuid.NewString(), "created_timestamp": time.Now().UTC().Format(
			time.RFC3339Nano), "title": title}, owner)
	return err
}

// dbTitles opens the SQLite file at path, checks its integrity and returns
// the titles of its notes.
func dbTitles(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of %s: %q, %v", path, check, err)
	}
	rows, err := db.Query("SELECT _title FROM _notes")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var titles []string
	for rows.Next() {
		var title string
		if err := rows.Scan(&title); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, title)
	}
	return titles
}

// readArchive returns the manifest and the files of an archive, by entry
// name.
func readArchive(t *testing.T, data []byte) (*Manifest, map[string][]byte,
	map[string]*tar.Header) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files, headers := map[string][]byte{}, map[string]*tar.Header{}
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name], headers[hdr.Name] = body, hdr
		names = append(names, hdr.Name)
	}
	if names[0] != manifestName {
		t.Fatalf("the archive starts with %s", names[0])
	}
	m, err := parseManifest(files[manifestName])
	if err != nil {
		t.Fatal(err)
	}
	return m, files, headers
}

func create(t *testing.T, root string) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Create(context.Background(), &buf, Options{Root: root, AccountID: accountID,
		Network: network, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func TestCreate(t *testing.T) {
	root, s := podRoot(t)
	for i := range 20 {
		if err := appendNote(s, fmt.Sprintf("note %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Not backed up: a socket and a symbolic link.
	l, err := net.Listen("unix", filepath.Join(root, "pod.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}

	data, m := create(t, root)
	got, files, headers := readArchive(t, data)
	if got.AccountID != accountID || got.Network != network || got.Format != Format ||
		got.Version != Version || time.Since(got.Created) > time.Minute {
		t.Fatalf("manifest %+v", got)
	}
	if len(got.Files) != len(m.Files) || m.Databases() != 1 {
		t.Fatalf("%d files, %d databases in %+v", len(got.Files), m.Databases(), m.Files)
	}

	for _, f := range got.Files {
		body, ok := files[rootPrefix+f.Path]
		sum := sha256.Sum256(body)
		if !ok || int64(len(body)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s does not match its manifest entry", f.Path)
		}
		if strings.HasSuffix(f.Path, "-wal") || strings.HasSuffix(f.Path, "-shm") ||
			f.Path == "pod.sock" || f.Path == "link" {
			t.Errorf("%s is in the backup", f.Path)
		}
	}
	if h := headers[rootPrefix+"extra/settings.txt"]; h == nil || h.Mode != 0o640 {
		t.Errorf("settings.txt header %+v, want mode 0640", h)
	}
	if h := headers[rootPrefix+"extra/"]; h == nil || h.Typeflag != tar.TypeDir ||
		h.Mode != 0o750 {
		t.Errorf("extra/ header %+v, want a directory of mode 0750", h)
	}
	key := pki.Paths{Root: "", Network: network}.AccountKey()
	if string(files[rootPrefix+strings.TrimPrefix(key, "/")]) == "" {
		t.Errorf("the account key %s is not in the backup", key)
	}
}

// TestBackupWhileWriting backs up a store that a writer keeps appending to:
// every append succeeds, and the copy is a sound database holding at least
// the records acknowledged before the backup started.
func TestBackupWhileWriting(t *testing.T) {
	root, s := podRoot(t)
	for i := range 2000 {
		if err := appendNote(s, fmt.Sprintf("before %d", i)); err != nil {
			t.Fatal(err)
		}
	}

	var during atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := appendNote(s, fmt.Sprintf("during %d", i)); err != nil {
				t.Errorf("an append during the backup failed: %v", err)
				return
			}
			during.Add(1)
		}
	})
	// Let the writer get going before the backup starts.
	for during.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	atStart := during.Load()
	data, m := create(t, root)
	atEnd := during.Load()
	close(stop)
	wg.Wait()
	if atEnd == atStart {
		t.Fatal("no append completed while the backup ran")
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(context.Background(), bytes.NewReader(data), RestoreOptions{
		Root: restored, PrivateKeySecret: []byte(keySecret)}); err != nil {
		t.Fatal(err)
	}
	var db string
	for _, f := range m.Files {
		if f.SQLite {
			db = filepath.Join(restored, filepath.FromSlash(f.Path))
		}
	}
	titles := dbTitles(t, db)
	before := 0
	for _, title := range titles {
		if strings.HasPrefix(title, "before ") {
			before++
		}
	}
	if before != 2000 || int64(len(titles)) < 2000+atStart ||
		int64(len(titles)) > 2000+atEnd+1 {
		t.Fatalf("the copy holds %d notes (%d from before); %d were appended before the "+
			"backup started and %d by its end", len(titles), before, 2000+atStart,
			2000+atEnd)
	}
}

func TestRestore(t *testing.T) {
	root, s := podRoot(t)
	if err := appendNote(s, "kept"); err != nil {
		t.Fatal(err)
	}
	data, m := create(t, root)

	for _, tt := range []struct {
		name    string
		prepare func(dir string)
		inRoot  bool
	}{
		{"missing", func(string) {}, false},
		{"empty", func(dir string) { os.Mkdir(dir, 0o700) }, false},
		{"empty mount point", func(dir string) { os.Mkdir(dir, 0o700) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pod")
			tt.prepare(dir)
			got, err := Restore(context.Background(), bytes.NewReader(data), RestoreOptions{
				Root: dir, PrivateKeySecret: []byte(keySecret), Network: network,
				AccountID: strings.ToUpper(accountID), stageInRoot: tt.inRoot})
			if err != nil {
				t.Fatal(err)
			}
			if got.AccountID != accountID {
				t.Fatalf("restored account %s", got.AccountID)
			}
			checkTree(t, dir, m)
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
				t.Fatalf("the restore left %d entries beside ROOT_DIR", len(entries))
			}
		})
	}
}

// checkTree checks that dir holds exactly the files and directories of m,
// with their content and modes.
func checkTree(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	want := map[string]bool{}
	for _, f := range m.Files {
		want[f.Path] = true
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		info, _ := os.Stat(p)
		if hex.EncodeToString(sum[:]) != f.SHA256 || info.Mode().Perm() != f.Mode {
			t.Errorf("%s differs from the backup (mode %v, want %v)", f.Path,
				info.Mode().Perm(), f.Mode)
		}
	}
	for _, d := range m.Dirs {
		want[d.Path] = true
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && p != dir && !want[filepath.ToSlash(rel)] {
			t.Errorf("%s was not in the backup", rel)
		}
		return nil
	})
}

func TestRestoreNotEmpty(t *testing.T) {
	root, _ := podRoot(t)
	data, m := create(t, root)

	for _, inRoot := range []bool{false, true} {
		t.Run(fmt.Sprint("in root ", inRoot), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pod")
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "old"), []byte("old pod"), 0o600)
			opts := RestoreOptions{Root: dir, PrivateKeySecret: []byte(keySecret),
				stageInRoot: inRoot}

			_, err := Restore(context.Background(), bytes.NewReader(data), opts)
			if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("restore into a non-empty ROOT_DIR: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "old")); string(b) != "old pod" {
				t.Fatal("a refused restore changed ROOT_DIR")
			}

			// A damaged archive with --force leaves the old pod in place.
			opts.Force = true
			if _, err := Restore(context.Background(), bytes.NewReader(data[:len(data)/2]),
				opts); err == nil {
				t.Fatal("a cut archive restored")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("a failed restore left %d entries in ROOT_DIR", len(entries))
			}

			if _, err := Restore(context.Background(), bytes.NewReader(data),
				opts); err != nil {
				t.Fatal(err)
			}
			checkTree(t, dir, m)
		})
	}
}

func TestRestoreWrongSecret(t *testing.T) {
	root, _ := podRoot(t)
	data, _ := create(t, root)
	dir := filepath.Join(t.TempDir(), "pod")
	wrong := "not-the-secret-0123"

	_, err := Restore(context.Background(), bytes.NewReader(data), RestoreOptions{
		Root: dir, PrivateKeySecret: []byte(wrong)})
	if err == nil || !strings.Contains(err.Error(), "PRIVATE_KEY_SECRET does not open") {
		t.Fatalf("restore with a wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), keySecret) {
		t.Fatalf("the error shows a secret: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused restore made ROOT_DIR: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
		t.Fatalf("a refused restore left %d entries", len(entries))
	}
}

func TestRestoreIdentity(t *testing.T) {
	root, _ := podRoot(t)
	data, _ := create(t, root)
	for _, opts := range []RestoreOptions{{Network: "byoda.net"},
		{AccountID: uuid.NewString()}} {
		opts.Root = filepath.Join(t.TempDir(), "pod")
		opts.PrivateKeySecret = []byte(keySecret)
		_, err := Restore(context.Background(), bytes.NewReader(data), opts)
		if err == nil || !strings.Contains(err.Error(), "NETWORK") &&
			!strings.Contains(err.Error(), "ACCOUNT_ID") {
			t.Fatalf("restore with %+v: %v", opts, err)
		}
	}
}

// crafted writes an archive of the given entries after a manifest listing
// files; a nil manifest lists every regular entry under root/ as it is.
type craftEntry struct {
	hdr  tar.Header
	body string
}

func craft(t *testing.T, m *Manifest, entries ...craftEntry) []byte {
	t.Helper()
	if m == nil {
		m = &Manifest{Format: Format, Version: Version, AccountID: accountID,
			Network: network}
		for _, e := range entries {
			if rel, ok := strings.CutPrefix(e.hdr.Name, rootPrefix); ok &&
				e.hdr.Typeflag == tar.TypeReg {
				sum := sha256.Sum256([]byte(e.body))
				m.Files = append(m.Files, File{Path: rel, Size: int64(len(e.body)),
					SHA256: hex.EncodeToString(sum[:]), Mode: 0o600})
			}
		}
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	doc, _ := json.Marshal(m)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: manifestName,
		Size: int64(len(doc)), Mode: 0o600})
	tw.Write(doc)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o600
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func reg(name, body string) craftEntry {
	return craftEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name}, body: body}
}

// TestRestoreCrafted feeds Restore archives made to write outside ROOT_DIR
// or to differ from their manifest; each is refused and nothing is
// written, inside ROOT_DIR or beside it.
func TestRestoreCrafted(t *testing.T) {
	sum := sha256.Sum256([]byte("abc"))
	good := File{Path: "a", Size: 3, SHA256: hex.EncodeToString(sum[:]), Mode: 0o600}
	manifest := func(files ...File) *Manifest {
		return &Manifest{Format: Format, Version: Version, AccountID: accountID,
			Network: network, Files: files}
	}
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		want    string
	}{
		{"climbing out", func(t *testing.T) []byte {
			return craft(t, nil, reg("root/../../evil", "x"))
		}, "unsafe path"},
		{"climbing out inside", func(t *testing.T) []byte {
			return craft(t, nil, reg("root/a/../../evil", "x"))
		}, "unsafe path"},
		{"absolute", func(t *testing.T) []byte {
			return craft(t, nil, reg("/tmp/evil", "x"))
		}, "not under root/"},
		{"absolute in root", func(t *testing.T) []byte {
			return craft(t, nil, reg("root//tmp/evil", "x"))
		}, "unsafe path"},
		{"symbolic link", func(t *testing.T) []byte {
			return craft(t, nil, craftEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink,
				Name: "root/link", Linkname: "/tmp"}}, reg("root/link/evil", "x"))
		}, "symbolic link"},
		{"hard link", func(t *testing.T) []byte {
			return craft(t, nil, craftEntry{hdr: tar.Header{Typeflag: tar.TypeLink,
				Name: "root/link", Linkname: "/etc/passwd"}})
		}, "hard link"},
		{"device", func(t *testing.T) []byte {
			return craft(t, nil, craftEntry{hdr: tar.Header{Typeflag: tar.TypeChar,
				Name: "root/dev"}})
		}, "device"},
		{"manifest path climbing out", func(t *testing.T) []byte {
			bad := good
			bad.Path = "../evil"
			return craft(t, manifest(bad), reg("root/a", "abc"))
		}, "unsafe path"},
		{"not in the manifest", func(t *testing.T) []byte {
			return craft(t, manifest(good), reg("root/a", "abc"), reg("root/b", "x"))
		}, "not in its manifest"},
		{"twice", func(t *testing.T) []byte {
			return craft(t, manifest(good), reg("root/a", "abc"), reg("root/a", "abc"))
		}, "twice"},
		{"wrong checksum", func(t *testing.T) []byte {
			return craft(t, manifest(good), reg("root/a", "abd"))
		}, "checksum"},
		{"wrong size", func(t *testing.T) []byte {
			return craft(t, manifest(good), reg("root/a", "abcd"))
		}, "bytes"},
		{"missing file", func(t *testing.T) []byte {
			return craft(t, manifest(good))
		}, "lacks"},
		{"other format", func(t *testing.T) []byte {
			m := manifest()
			m.Format = "something"
			return craft(t, m)
		}, "not a pod backup"},
		{"later version", func(t *testing.T) []byte {
			m := manifest()
			m.Version = 2
			return craft(t, m)
		}, "version 2"},
		{"no manifest first", func(t *testing.T) []byte {
			var buf bytes.Buffer
			gz := gzip.NewWriter(&buf)
			tw := tar.NewWriter(gz)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "root/a", Size: 3})
			tw.Write([]byte("abc"))
			tw.Close()
			gz.Close()
			return buf.Bytes()
		}, "not a pod backup"},
		{"not gzip", func(t *testing.T) []byte { return []byte("plain text") },
			"gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "sub", "pod")
			_, err := Restore(context.Background(), bytes.NewReader(tt.archive(t)),
				RestoreOptions{Root: dir, PrivateKeySecret: []byte(keySecret)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
			filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("a refused restore wrote %s", p)
				}
				return nil
			})
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused restore made ROOT_DIR")
			}
		})
	}
}

func TestCreateFile(t *testing.T) {
	root, _ := podRoot(t)
	// The archive inside ROOT_DIR is left out of itself.
	out := filepath.Join(root, "backups", "pod.tar.gz")
	os.Mkdir(filepath.Dir(out), 0o700)
	if err := os.WriteFile(out, []byte("an older backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := CreateFile(context.Background(), out, Options{Root: root, AccountID: accountID,
		Network: network})
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file %v, %v; want mode 0600", info, err)
	}
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "backups/") {
			t.Errorf("the backup holds %s", f.Path)
		}
	}
	if _, err := os.Stat(out + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the temporary file remains: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("the backup left %d files beside it", len(entries))
	}
}

// BenchmarkBackup measures a backup of a store of 10,000 notes.
//
//	go test ./internal/backup -run '^$' -bench Backup -benchtime 5x
func BenchmarkBackup(b *testing.B) {
	root, s := podRoot(b)
	for i := range 10000 {
		if err := appendNote(s, fmt.Sprintf("note %d with some text", i)); err != nil {
			b.Fatal(err)
		}
	}
	var size int
	var m *Manifest
	for b.Loop() {
		var buf bytes.Buffer
		var err error
		if m, err = Create(context.Background(), &buf, Options{Root: root,
			AccountID: accountID, Network: network, TempDir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "archive-bytes")
	b.ReportMetric(float64(m.Bytes()), "root-bytes")
}
