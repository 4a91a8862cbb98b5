package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/backup"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/pod"
	"github.com/byoda/byoda-go/internal/podcheck"
)

// podOps runs the pod's operator tools, `byoda pod backup`, `restore` and
// `check`, which read the pod's settings from the same environment as the
// pod; its fields are what they take from the process.
type podOps struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newPodOps() podOps { return podOps{os.Stdin, os.Stdout, os.Stderr} }

func runPodBackup(ctx context.Context, args []string, getenv env) error {
	return newPodOps().backup(ctx, args, getenv)
}

func runPodRestore(ctx context.Context, args []string, getenv env) error {
	return newPodOps().restore(ctx, args, getenv)
}

func runPodCheck(ctx context.Context, args []string, getenv env) error {
	return newPodOps().check(ctx, args, getenv)
}

// backup writes a snapshot of ROOT_DIR to --out.
func (o podOps) backup(ctx context.Context, args []string, getenv env) error {
	fs := flag.NewFlagSet("byoda pod backup", flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	out := fs.String("out", "", "the file to write the backup to, - for stdout (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("--out FILE is required: where to write the backup, " +
			"- for stdout")
	}

	root, network, accountID, err := backupSettings(getenv)
	if err != nil {
		return err
	}
	logger, err := newLogger(getenv, o.stderr)
	if err != nil {
		return err
	}

	start := time.Now()
	opts := backup.Options{Root: root, AccountID: accountID, Network: network,
		Logger: logger}
	var m *backup.Manifest
	if *out == "-" {
		m, err = backup.Create(ctx, o.stdout, opts)
	} else {
		m, err = backup.CreateFile(ctx, *out, opts)
	}
	if err != nil {
		return err
	}
	where := *out
	if where == "-" {
		where = "stdout"
	}
	fmt.Fprintf(o.stderr, "backed up account %s of network %s: %d files, %d of them "+
		"databases, %d bytes, to %s in %s\n", m.AccountID, m.Network, len(m.Files),
		m.Databases(), m.Bytes(), where, time.Since(start).Round(time.Millisecond))
	return nil
}

// backupSettings reads ROOT_DIR, NETWORK and the account id that ROOT_DIR
// keeps, which ACCOUNT_ID, when set, must equal.
func backupSettings(getenv env) (root, network, accountID string, err error) {
	e := &envReader{getenv: getenv}
	root = e.dir("ROOT_DIR", defaultRootDir)
	network = e.network("NETWORK")
	want := e.accountID("ACCOUNT_ID")
	if err := errors.Join(e.errs...); err != nil {
		return "", "", "", err
	}

	accountID, err = keptAccountID(root)
	if err != nil {
		return "", "", "", err
	}
	if accountID == "" {
		return "", "", "", fmt.Errorf("ROOT_DIR %s holds no pod (no %s file): set "+
			"ROOT_DIR to the directory the pod keeps its data in", root, accountIDFile)
	}
	if want != "" && want != accountID {
		return "", "", "", fmt.Errorf("ROOT_DIR %s holds account %s, and ACCOUNT_ID is %s",
			root, accountID, want)
	}
	paths := pki.Paths{Root: root, Network: network}
	if _, err := os.Stat(paths.NetworkDir()); err != nil {
		return "", "", "", fmt.Errorf("ROOT_DIR %s holds no files of network %s: set "+
			"NETWORK to the pod's network", root, network)
	}
	return root, network, accountID, nil
}

// keptAccountID returns the account id that root keeps, or "" when it
// keeps none; unlike the pod, it never writes one.
func keptAccountID(root string) (string, error) {
	path := filepath.Join(root, accountIDFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the account id: %w", err)
	}
	id, err := pki.ParseUUID(strings.TrimSpace(string(data)))
	if err != nil {
		return "", fmt.Errorf("%s must hold the pod's account id, a UUID, and holds "+
			"something else", path)
	}
	return id, nil
}

// restore brings a backup back into ROOT_DIR.
func (o podOps) restore(ctx context.Context, args []string, getenv env) error {
	fs := flag.NewFlagSet("byoda pod restore", flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	in := fs.String("in", "", "the backup file to restore, - for stdin (required)")
	force := fs.Bool("force", false, "replace what ROOT_DIR holds; stop the pod first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *in == "" {
		return errors.New("--in FILE is required: the backup to restore, - for stdin")
	}

	e := &envReader{getenv: getenv}
	opts := backup.RestoreOptions{
		Root:             e.dir("ROOT_DIR", defaultRootDir),
		Force:            *force,
		PrivateKeySecret: e.keySecret(),
		AccountID:        e.accountID("ACCOUNT_ID"),
	}
	if getenv.get("NETWORK") != "" {
		opts.Network = e.network("NETWORK")
	}
	if err := errors.Join(e.errs...); err != nil {
		return err
	}
	logger, err := newLogger(getenv, o.stderr)
	if err != nil {
		return err
	}
	opts.Logger = logger

	r := o.stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("--in: %w", err)
		}
		defer f.Close()
		r = f
	}
	m, err := backup.Restore(ctx, r, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.stderr, "restored account %s of network %s, backed up at %s, into %s: "+
		"%d files; start the pod with NETWORK=%s and the same PRIVATE_KEY_SECRET\n",
		m.AccountID, m.Network, m.Created.Format(time.RFC3339), opts.Root, len(m.Files),
		m.Network)
	return nil
}

// errChecksFailed is returned when a check of `byoda pod check` failed.
var errChecksFailed = errors.New("checks failed")

// check diagnoses the pod and prints one line per check.
func (o podOps) check(ctx context.Context, args []string, getenv env) error {
	fs := flag.NewFlagSet("byoda pod check", flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	timeout := fs.Duration("timeout", podcheck.DefaultTimeout,
		"how long each network probe may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := checkConfig(getenv)
	if err != nil {
		return err
	}

	results := podcheck.Run(ctx, podcheck.Config{Pod: cfg, Timeout: *timeout,
		PublicNetwork: cfg.Network == defaultNetwork})
	for _, r := range results {
		fmt.Fprintln(o.stdout, r)
	}
	fails := podcheck.Count(results, podcheck.Fail)
	fmt.Fprintf(o.stdout, "%d OK, %d WARN, %d FAIL\n", podcheck.Count(results, podcheck.OK),
		podcheck.Count(results, podcheck.Warn), fails)
	if fails > 0 {
		return fmt.Errorf("%w: %d of %d", errChecksFailed, fails, len(results))
	}
	return nil
}

// checkConfig reads the pod's settings as the pod does, without writing an
// account id into ROOT_DIR: the account id is ACCOUNT_ID or the one ROOT_DIR
// keeps, and may be empty, which the checks report.
func checkConfig(getenv env) (pod.Config, error) {
	cfg, err := readPodEnv(getenv)
	if err != nil {
		return cfg, err
	}
	id := cfg.AccountID
	if id == "" {
		if id, err = keptAccountID(cfg.RootDir); err != nil {
			return cfg, err
		}
	}
	cfg.AccountID = id
	if cfg.AccountID == "" {
		cfg.AccountID = uuid.Nil.String()
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	cfg.AccountID = id
	return cfg, nil
}
