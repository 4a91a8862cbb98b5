package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	testService = "4294929430"
	testMember  = "3c2f5b8e-1d4a-4f6b-9e0c-7a8b9c0d1e2f"
)

// podTree is a pod's files in the layout of its ROOT_DIR, LOGDIR and
// WEBSERVER_CONF_DIR, as relative paths under "root/", "logs/" and "conf/".
var podTree = []string{
	"root/account_id",
	"root/.lock",
	"root/network-byoda.net/network-byoda.net-root-ca-cert.pem",
	"root/network-byoda.net/account-pod/pod-cert.pem",
	"root/network-byoda.net/account-pod/service-" + testService + "/service-contract.json",
	"root/network-byoda.net/account-pod/service-" + testService +
		"/network-byoda.net-member-" + testService + "-cert.pem",
	"root/network-byoda.net/services/service-" + testService +
		"/network-byoda.net-service-" + testService + "-ca-certchain.pem",
	"root/private/network-byoda.net-account-pod.key",
	"root/private/network-byoda.net-account-pod-data.key",
	"root/private/network-byoda.net-account-pod-member-" + testService + ".key",
	"root/private/network-byoda.net-account-pod-member-" + testService + "-data.key",
	"root/private/network-byoda.net/account-pod/data/network-byoda.net-member-" + testMember +
		"/data-" + testService + "-" + testMember + ".db",
	"logs/pod.log",
	"logs/pod.log.1",
	"logs/notes.txt",
	"conf/account.conf",
	"conf/member-" + testMember + ".conf",
	"conf/member-backup.conf",
	"conf/default.conf",
}

// writeTree makes podTree under d and returns d's directories by the
// prefixes of podTree.
func writeTree(t *testing.T, d dirs) map[string]string {
	t.Helper()
	prefixes := map[string]string{"root": d.root, "logs": d.logs, "conf": d.conf}
	for _, f := range podTree {
		top, rest, _ := strings.Cut(f, "/")
		path := filepath.Join(prefixes[top], rest)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return prefixes
}

// listTree returns the files under d's directories in podTree's form.
func listTree(t *testing.T, prefixes map[string]string) []string {
	t.Helper()
	var files []string
	for top, dir := range prefixes {
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			files = append(files, top+"/"+rel)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(files)
	return files
}

// TestWipe runs each wipe option, in a dry run that must list what goes and
// change nothing, and for real, which must remove exactly that.
func TestWipe(t *testing.T) {
	member := "root/network-byoda.net/account-pod/service-" + testService + "/"
	memberKeys := "root/private/network-byoda.net-account-pod-member-" + testService
	data := "root/private/network-byoda.net/account-pod/data/"
	services := "root/network-byoda.net/services/"
	logs := []string{"logs/pod.log", "logs/pod.log.1"}
	memberConf := "conf/member-" + testMember + ".conf"

	tests := []struct {
		flags []string
		gone  []string // prefixes of the files removed
	}{
		{nil, nil},
		{[]string{"--wipe-all"}, append([]string{"root/", "conf/account.conf", memberConf},
			logs...)},
		{[]string{"--wipe-all", "--keep-logs"}, []string{"root/", "conf/account.conf", memberConf}},
		{[]string{"--wipe-memberships"}, []string{member, memberKeys, data, services, memberConf}},
		{[]string{"--wipe-memberships", "--wipe-member-data"},
			[]string{member, memberKeys, data, services, memberConf}},
		{[]string{"--wipe-member-data"}, []string{data}},
		{[]string{"--wipe-logs"}, logs},
		{[]string{"--wipe-member-data", "--wipe-logs"}, append([]string{data}, logs...)},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"flags"}, tt.flags...), " "), func(t *testing.T) {
			t.Parallel()
			d := newDirs(t)
			prefixes := writeTree(t, d)
			cfg := writeConfig(t, append(d.baseConfig(), "SHARED_WEBSERVER=1",
				"WEBSERVER_CONF_DIR="+d.conf)...)
			before := listTree(t, prefixes)

			var want []string
			for _, f := range before {
				if !slices.ContainsFunc(tt.gone, func(p string) bool {
					return strings.HasPrefix(f, p)
				}) {
					want = append(want, f)
				}
			}

			l := newLauncher(t)
			dry := l.mustRun(append([]string{"--dry-run", "--config", cfg}, tt.flags...)...)
			if got := listTree(t, prefixes); !slices.Equal(got, before) {
				t.Fatalf("the dry run changed the files: %q", got)
			}
			_, plan := dryRunCommand(t, dry.stdout)
			for _, line := range plan[2:] {
				if !strings.HasPrefix(line, "rm -rf -- ") {
					t.Errorf("the dry run plans %q", line)
				}
			}
			if len(tt.gone) == 0 && len(plan) > 2 {
				t.Errorf("nothing to wipe, yet the dry run plans %q", plan[2:])
			}

			l.mustRun(append([]string{"--yes", "--config", cfg}, tt.flags...)...)
			if got := listTree(t, prefixes); !slices.Equal(got, want) {
				t.Errorf("after the wipe:\n%q\nwant\n%q", got, want)
			}
			for _, dir := range []string{d.root, d.logs, d.conf} {
				if _, err := os.Stat(dir); err != nil {
					t.Errorf("the wipe removed the directory itself: %v", err)
				}
			}
		})
	}
}

// TestWipeNeedsConsent checks that a wipe without --yes, with no terminal
// to ask on, changes nothing and starts nothing.
func TestWipeNeedsConsent(t *testing.T) {
	d := newDirs(t)
	prefixes := writeTree(t, d)
	before := listTree(t, prefixes)
	cfg := writeConfig(t, d.baseConfig()...)
	l := newLauncher(t)

	r := l.run("--wipe-all", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "not wiping without --yes") {
		t.Fatalf("want a refusal to wipe without --yes, got exit %d:\n%s", r.code, r.output())
	}
	if !strings.Contains(r.stderr, filepath.Join(d.root, "private")) {
		t.Errorf("the refusal does not list what would go:\n%s", r.stderr)
	}
	if got := listTree(t, prefixes); !slices.Equal(got, before) {
		t.Errorf("files changed: %q", got)
	}
	if calls := l.calls(); len(calls) > 0 {
		t.Errorf("docker was called: %q", calls)
	}
}

// TestWipeStopsFirst checks that a running pod is stopped before its files
// go, so that it cannot write them back.
func TestWipeStopsFirst(t *testing.T) {
	d := newDirs(t)
	writeTree(t, d)
	cfg := writeConfig(t, d.baseConfig()...)
	l := newLauncher(t)
	l.set("exists", "")

	l.set("watch", filepath.Join(d.root, "account_id"))

	l.mustRun("--wipe-all", "--yes", "--config", cfg)
	var verbs []string
	for _, c := range l.calls() {
		verbs = append(verbs, c[0])
	}
	if want := []string{"container", "stop", "rm", "run"}; !slices.Equal(verbs, want) {
		t.Fatalf("docker calls %q, want %q", verbs, want)
	}
	watched, err := os.ReadFile(filepath.Join(l.bin, "watched"))
	if err != nil {
		t.Fatal(err)
	}
	want := "container present\nstop present\nrm present\nrun absent\n"
	if string(watched) != want {
		t.Errorf("the account id file at each docker call:\n%s\nwant\n%s", watched, want)
	}
}
