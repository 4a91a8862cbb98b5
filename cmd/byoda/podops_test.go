package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/byoda/byoda-go/internal/pki"
)

// testOps returns podOps writing to buffers.
func testOps() (podOps, *lockedBuffer, *lockedBuffer) {
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	return podOps{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}, stdout,
		stderr
}

// fingerprint returns the SHA-256 fingerprint of the first certificate of
// the PEM file at path.
func fingerprint(t *testing.T, path string) string {
	t.Helper()
	certs, err := pki.LoadCerts(path)
	if err != nil {
		t.Fatal(err)
	}
	return pki.Fingerprint(certs[0])
}

// identityOf returns the fingerprints of the pod's certificates and its
// account id, as ROOT_DIR holds them.
func identityOf(t *testing.T, lp *livePod, sids ...uint32) map[string]string {
	t.Helper()
	p := lp.paths()
	id := map[string]string{"account": fingerprint(t, p.AccountCert()),
		"account data": fingerprint(t, p.AccountDataCert())}
	data, err := os.ReadFile(filepath.Join(p.Root, accountIDFile))
	if err != nil {
		t.Fatal(err)
	}
	id["account_id"] = strings.TrimSpace(string(data))
	for _, sid := range sids {
		id[fmt.Sprint("member ", sid)] = fingerprint(t, p.MemberCert(sid))
		id[fmt.Sprint("member data ", sid)] = fingerprint(t, p.MemberDataCert(sid))
	}
	return id
}

// TestBackupRestore backs up a running pod while a client keeps appending
// to it, wipes its ROOT_DIR, restores the backup and starts the pod again:
// it is the same account with the same certificates and memberships, it
// holds every record acknowledged before the backup started, and it
// answers over mTLS.
func TestBackupRestore(t *testing.T) {
	n := startTestNet(t)
	env := livePodEnv(t, n, map[string]string{
		"JOIN_SERVICE_IDS": fmt.Sprintf("%d,%d", notesSID, notesSID2)})
	lp := startLivePod(t, n, env)

	tokens := map[uint32]string{notesSID: lp.login(notesSID), notesSID2: lp.login(notesSID2)}
	clients := map[uint32]string{notesSID: lp.memberName(notesSID),
		notesSID2: lp.memberName(notesSID2)}
	var before []string
	for sid, count := range map[uint32]int{notesSID: 200, notesSID2: 30} {
		c := lp.client(clients[sid], nil)
		for i := range count {
			title := fmt.Sprintf("before %d %d", sid, i)
			if !lp.appendNote(c, sid, tokens[sid], title) {
				t.Fatalf("append %s refused", title)
			}
			before = append(before, title)
		}
	}
	identity := identityOf(t, lp, notesSID, notesSID2)

	// A client appends while the backup runs; every append must succeed.
	var acked, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := lp.client(clients[notesSID], nil)
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if lp.appendNote(c, notesSID, tokens[notesSID], "during "+strconv.Itoa(i)) {
				acked.Add(1)
			} else {
				failed.Add(1)
			}
		}
	})
	for acked.Load() < 5 {
		if failed.Load() > 0 {
			t.Fatal("an append failed before the backup started")
		}
	}
	archive := filepath.Join(t.TempDir(), "pod-backup.tar.gz")
	ops, _, stderr := testOps()
	startAcked := acked.Load()
	if err := ops.backup(context.Background(), []string{"--out", archive},
		fakeEnv(env)); err != nil {
		t.Fatalf("byoda pod backup: %v\n%s", err, stderr)
	}
	endAcked := acked.Load()
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d appends failed while the backup ran", failed.Load())
	}
	t.Logf("%d appends acknowledged while the backup ran; %s", endAcked-startAcked,
		stderr)
	if info, err := os.Stat(archive); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v, %v; want mode 0600", info, err)
	}
	checkNoSecrets(t, stderr.String(), env)

	// Stop, wipe, restore, start.
	lp.stop()
	if err := os.RemoveAll(env["ROOT_DIR"]); err != nil {
		t.Fatal(err)
	}
	ops, _, stderr = testOps()
	if err := ops.restore(context.Background(), []string{"--in", archive},
		fakeEnv(env)); err != nil {
		t.Fatalf("byoda pod restore: %v\n%s", err, stderr)
	}
	lp = startLivePod(t, n, env)

	if got := identityOf(t, lp, notesSID, notesSID2); fmt.Sprint(got) !=
		fmt.Sprint(identity) {
		t.Fatalf("the restored pod is\n%v\nit was\n%v", got, identity)
	}
	titles := append(lp.noteTitles(notesSID, lp.login(notesSID)),
		lp.noteTitles(notesSID2, lp.login(notesSID2))...)
	if title, ok := missing(titles, before); ok {
		t.Fatalf("the restored pod lacks %q of the %d notes from before the backup",
			title, len(before))
	}
	during := 0
	for _, title := range titles {
		if strings.HasPrefix(title, "during ") {
			during++
		}
	}
	if len(titles) != len(before)+during || int64(during) < startAcked ||
		int64(during) > endAcked+1 {
		t.Fatalf("%d notes restored, %d of them appended during the backup; %d were "+
			"acknowledged when it started and %d when it ended", len(titles), during,
			startAcked, endAcked)
	}

	// The pod answers another pod's mTLS call with its own certificate.
	key, err := pki.LoadKey(lp.paths().AccountKey(), []byte(env["PRIVATE_KEY_SECRET"]))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := pki.LoadCerts(lp.paths().AccountCert())
	if err != nil {
		t.Fatal(err)
	}
	cert := pki.TLSCertificate(chain, key)
	resp, err := lp.client("", &cert).Get(lp.podURL("/api/v1/status"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || pki.Fingerprint(resp.TLS.PeerCertificates[0]) !=
		identity["account"] {
		t.Fatalf("mTLS status call: %s, served %s", resp.Status,
			resp.TLS.PeerCertificates[0].Subject.CommonName)
	}

	t.Run("check", func(t *testing.T) {
		ops, stdout, _ := testOps()
		if err := ops.check(context.Background(), nil, fakeEnv(env)); err != nil {
			t.Fatalf("byoda pod check: %v\n%s", err, stdout)
		}
		if !strings.Contains(stdout.String(), " 0 WARN, 0 FAIL") {
			t.Fatalf("byoda pod check:\n%s", stdout)
		}
		checkNoSecrets(t, stdout.String(), env)

		bad := map[string]string{}
		for k, v := range env {
			bad[k] = v
		}
		bad["PRIVATE_KEY_SECRET"] = "wrong secret"
		ops, stdout, _ = testOps()
		err := ops.check(context.Background(), nil, fakeEnv(bad))
		if !errors.Is(err, errChecksFailed) || !strings.Contains(stdout.String(),
			"FAIL  keys: PRIVATE_KEY_SECRET does not open") {
			t.Fatalf("check with a wrong PRIVATE_KEY_SECRET: %v\n%s", err, stdout)
		}
	})

	t.Run("stdout", func(t *testing.T) {
		var archive bytes.Buffer
		ops := podOps{stdout: &archive, stderr: io.Discard}
		if err := ops.backup(context.Background(), []string{"--out", "-"},
			fakeEnv(env)); err != nil {
			t.Fatal(err)
		}
		restored := map[string]string{}
		for k, v := range env {
			restored[k] = v
		}
		restored["ROOT_DIR"] = filepath.Join(t.TempDir(), "restored")
		ops = podOps{stdin: &archive, stderr: io.Discard}
		if err := ops.restore(context.Background(), []string{"--in", "-"},
			fakeEnv(restored)); err != nil {
			t.Fatal(err)
		}
		copied := &livePod{t: t, env: restored}
		if got := identityOf(t, copied, notesSID, notesSID2); fmt.Sprint(got) !=
			fmt.Sprint(identity) {
			t.Fatalf("restored from stdin\n%v\nwant\n%v", got, identity)
		}
	})

	t.Run("restore refusals", func(t *testing.T) {
		ops, _, _ := testOps()
		err := ops.restore(context.Background(), []string{"--in", archive}, fakeEnv(env))
		if err == nil || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("restore over the running pod: %v", err)
		}

		fresh := map[string]string{}
		for k, v := range env {
			fresh[k] = v
		}
		fresh["ROOT_DIR"] = filepath.Join(t.TempDir(), "fresh")
		fresh["PRIVATE_KEY_SECRET"] = "wrong secret 123"
		err = ops.restore(context.Background(), []string{"--in", archive}, fakeEnv(fresh))
		if err == nil || !strings.Contains(err.Error(), "PRIVATE_KEY_SECRET does not open") {
			t.Fatalf("restore with a wrong secret: %v", err)
		}
		checkNoSecrets(t, err.Error(), fresh)
		if _, err := os.Stat(fresh["ROOT_DIR"]); err == nil {
			t.Fatal("a refused restore made ROOT_DIR")
		}
	})
}

func TestPodOpsUsage(t *testing.T) {
	root := t.TempDir()
	env := fakeEnv(map[string]string{"ROOT_DIR": root, "PRIVATE_KEY_SECRET": "x"})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pod", "backup"}, "--out FILE is required"},
		{[]string{"pod", "backup", "--out", "x", "y"}, `unexpected argument "y"`},
		{[]string{"pod", "backup", "--out", filepath.Join(root, "b")}, "holds no pod"},
		{[]string{"pod", "restore"}, "--in FILE is required"},
		{[]string{"pod", "restore", "--in", filepath.Join(root, "none")}, "--in"},
		{[]string{"pod", "check", "extra"}, `unexpected argument "extra"`},
		{[]string{"pod", "x"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), tt.args, env, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}

	// Restore needs the passphrase to check the keys.
	err := run(context.Background(), []string{"pod", "restore", "--in", "x"},
		fakeEnv(map[string]string{"ROOT_DIR": root}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PRIVATE_KEY_SECRET") {
		t.Fatalf("restore without PRIVATE_KEY_SECRET: %v", err)
	}

	// A check of an empty ROOT_DIR fails and says how to fix it.
	ops, stdout, _ := testOps()
	err = ops.check(context.Background(), nil, env)
	if !errors.Is(err, errChecksFailed) || !strings.Contains(stdout.String(),
		"byoda pod restore") {
		t.Fatalf("check of an empty ROOT_DIR: %v\n%s", err, stdout)
	}
	if _, err := os.Stat(filepath.Join(root, accountIDFile)); err == nil {
		t.Fatal("the check wrote an account id")
	}
}
