package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// dryRun runs a dry run of the settings and returns its docker run.
func dryRun(t *testing.T, lines []string, args ...string) runCmd {
	t.Helper()
	cfg := writeConfig(t, lines...)
	r := newLauncher(t).mustRun(append([]string{"--dry-run", "--config", cfg}, args...)...)
	run, _ := dryRunCommand(t, r.stdout)
	checkDockerSyntax(t, run)
	return parseRun(t, run)
}

// TestLaunchOptions checks the settings and options beyond the seed's
// combinations.
func TestLaunchOptions(t *testing.T) {
	d := newDirs(t)
	base := d.baseConfig()

	t.Run("bind address", func(t *testing.T) {
		c := dryRun(t, append(base, "BIND_ADDRESS=192.0.2.10", "CUSTOM_DOMAIN="+domain))
		want := []string{"192.0.2.10:443:443", "192.0.2.10:444:444", "192.0.2.10:80:80"}
		if !slices.Equal(c.opts["--publish"], want) {
			t.Errorf("--publish %q, want %q", c.opts["--publish"], want)
		}
		if slices.Contains(c.opts["--env"], "BIND_ADDRESS") {
			t.Error("BIND_ADDRESS, an address of the host, reaches the container")
		}

		c = dryRun(t, append(base, "BIND_ADDRESS=2001:db8::10"))
		want = []string{"[2001:db8::10]:443:443", "[2001:db8::10]:444:444"}
		if !slices.Equal(c.opts["--publish"], want) {
			t.Errorf("--publish %q, want %q", c.opts["--publish"], want)
		}
	})

	t.Run("ports", func(t *testing.T) {
		c := dryRun(t, append(base, "HTTPS_PORT=8443", "POD_PORT=8444", "CUSTOM_DOMAIN="+domain,
			"ACME_HTTP_PORT=8080"))
		want := []string{"8443:8443", "8444:8444", "8080:8080"}
		if !slices.Equal(c.opts["--publish"], want) {
			t.Errorf("--publish %q, want %q", c.opts["--publish"], want)
		}
		for _, e := range []string{"HTTPS_PORT", "POD_PORT", "ACME_HTTP_PORT"} {
			if !slices.Contains(c.opts["--env"], e) {
				t.Errorf("%s does not reach the container", e)
			}
		}

		c = dryRun(t, append(base, "SHARED_WEBSERVER=1", "WEBSERVER_CONF_DIR="+d.conf,
			"HTTP_PORT=8001"))
		if want := []string{"127.0.0.1:8001:8001"}; !slices.Equal(c.opts["--publish"], want) {
			t.Errorf("--publish %q, want %q", c.opts["--publish"], want)
		}
	})

	t.Run("image", func(t *testing.T) {
		c := dryRun(t, base, "--tag", "dev")
		if c.image != "byoda/byoda-go:dev" {
			t.Errorf("--tag dev runs %s", c.image)
		}
		c = dryRun(t, append(base, "IMAGE=registry.example.org:5000/me/pod", "TAG=v1.2",
			"CONTAINER_NAME=pod-2"))
		if c.image != "registry.example.org:5000/me/pod:v1.2" {
			t.Errorf("IMAGE and TAG run %s", c.image)
		}
		if !slices.Equal(c.opts["--name"], []string{"pod-2"}) {
			t.Errorf("CONTAINER_NAME gives --name %q", c.opts["--name"])
		}
		c = dryRun(t, append(base, "TAG=v1.2"), "--tag=v1.3")
		if c.image != "byoda/byoda-go:v1.3" {
			t.Errorf("--tag does not win over TAG: %s", c.image)
		}
	})

	t.Run("seed names", func(t *testing.T) {
		www := t.TempDir()
		logs := filepath.Join(www, "logs")
		if err := os.Mkdir(logs, 0o700); err != nil {
			t.Fatal(err)
		}
		lines := append(drop("ROOT_DIR")(d, drop("LOGDIR")(d, base)),
			"BYODA_ROOT_DIR="+d.root+"/", "LOCAL_WWWROOT_DIRECTORY="+www)
		cfg := writeConfig(t, lines...)
		l := newLauncher(t)
		l.mustRun("--config", cfg)
		env := l.runEnv()
		if env["ROOT_DIR"] != d.root || env["LOGDIR"] != logs {
			t.Errorf("ROOT_DIR=%s LOGDIR=%s, want %s and %s", env["ROOT_DIR"], env["LOGDIR"],
				d.root, logs)
		}
	})

	t.Run("debug", func(t *testing.T) {
		cfg := writeConfig(t, append(base, "DEBUG=1")...)
		l := newLauncher(t)
		l.mustRun("--config", cfg)
		if got := l.runEnv()["LOGLEVEL"]; got != "DEBUG" {
			t.Errorf("DEBUG=1 gives LOGLEVEL=%q, want DEBUG", got)
		}
	})

	t.Run("root CA files", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "root-ca.pem")
		if err := os.WriteFile(ca, []byte("PEM\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := dryRun(t, append(base, "NETWORK_ROOT_CA="+ca, "ACME_ROOT_CA="+ca))
		mount := "type=bind,src=" + ca + ",dst=" + ca + ",readonly"
		if n := countOf(c.opts["--mount"], mount); n != 2 {
			t.Errorf("the CA files are mounted %d times, want 2: %q", n, c.opts["--mount"])
		}

		fp := strings.Repeat("ab:", 31) + "ab"
		c = dryRun(t, append(base, "NETWORK_ROOT_CA="+fp))
		if len(c.opts["--mount"]) != 2 || !slices.Contains(c.opts["--env"], "NETWORK_ROOT_CA") {
			t.Errorf("a fingerprint: --mount %q --env %q", c.opts["--mount"], c.opts["--env"])
		}
	})

	t.Run("trusted proxies", func(t *testing.T) {
		shared := append(base, "SHARED_WEBSERVER=1", "WEBSERVER_CONF_DIR="+d.conf)
		l := newLauncher(t)
		l.set("gateway", "172.30.0.1 ")
		l.mustRun("--config", writeConfig(t, shared...))
		if got := l.runEnv()["TRUSTED_PROXIES"]; got != "172.30.0.1" {
			t.Errorf("with docker's gateway at 172.30.0.1, TRUSTED_PROXIES=%q", got)
		}

		l.reset()
		l.set("gateway", "172.30.0.1 ")
		l.mustRun("--config", writeConfig(t, append(shared, "TRUSTED_PROXIES=10.1.2.3")...))
		if got := l.runEnv()["TRUSTED_PROXIES"]; got != "10.1.2.3" {
			t.Errorf("a TRUSTED_PROXIES of the file became %q", got)
		}
	})
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestDirectories checks that the script gives ROOT_DIR and LOGDIR to the
// pod's user, making them when they are missing.
func TestDirectories(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "new", "byoda")
	logs := filepath.Join(base, "new", "logs")
	cfg := writeConfig(t, "PRIVATE_KEY_SECRET="+keySecret, "ROOT_DIR="+root, "LOGDIR="+logs)
	l := newLauncher(t)

	if os.Geteuid() != 0 {
		r := l.run("--dry-run", "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, root+" does not exist: create it") ||
			!strings.Contains(r.stderr, "sudo install -d -m 700 -o 65532 -g 65532 "+root) {
			t.Errorf("missing directories, not root: exit %d:\n%s", r.code, r.output())
		}
		needRoot(t)
	}

	dry := l.mustRun("--dry-run", "--config", cfg)
	_, plan := dryRunCommand(t, dry.stdout)
	want := []string{"mkdir -p -m 0700 -- " + root, "chown -R 65532:65532 -- " + root,
		"mkdir -p -m 0700 -- " + logs, "chown -R 65532:65532 -- " + logs}
	if !slices.Equal(plan[2:], want) {
		t.Errorf("the dry run plans\n%q\nwant\n%q", plan[2:], want)
	}
	if _, err := os.Stat(root); err == nil {
		t.Fatal("the dry run made ROOT_DIR")
	}

	l.mustRun("--config", cfg)
	for _, dir := range []string{root, logs} {
		info, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != 65532 || st.Gid != 65532 || info.Mode().Perm() != 0o700 {
			t.Errorf("%s: owner %d:%d mode %v, want 65532:65532 0700", dir, st.Uid, st.Gid,
				info.Mode().Perm())
		}
	}

	// A file of someone else's in ROOT_DIR is given to the pod's user.
	stray := filepath.Join(root, "stray")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dry = l.mustRun("--dry-run", "--config", cfg)
	_, plan = dryRunCommand(t, dry.stdout)
	if want := []string{"chown -R 65532:65532 -- " + root}; !slices.Equal(plan[2:], want) {
		t.Errorf("with a stray file the dry run plans %q, want %q", plan[2:], want)
	}
}

// TestPodUserAccess checks, as root, that the script refuses directories
// the pod's user could not use: a WEBSERVER_CONF_DIR it cannot write and a
// certificate it cannot read.
func TestPodUserAccess(t *testing.T) {
	needRoot(t)
	d := newDirs(t)
	base := drop("POD_USER")(d, d.baseConfig())
	if err := os.Chown(d.root, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d.logs, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	l := newLauncher(t)

	cfg := writeConfig(t, append(base, "SHARED_WEBSERVER=1", "WEBSERVER_CONF_DIR="+d.conf)...)
	r := l.run("--dry-run", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "cannot write the vhost files") ||
		!strings.Contains(r.stderr, "WEBSERVER_CONF_DIR=/etc/nginx/byoda") {
		t.Errorf("a vhost directory of root's: exit %d:\n%s", r.code, r.output())
	}

	writeCert(t, d.le, domain)
	cfg = writeConfig(t, append(base, "CUSTOM_DOMAIN="+domain, "MANAGE_CUSTOM_DOMAIN_CERT=",
		"LETSENCRYPT_DIRECTORY="+d.le)...)
	r = l.run("--dry-run", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "cannot read "+d.le) ||
		!strings.Contains(r.stderr, "deploy hook") {
		t.Errorf("a key of root's: exit %d:\n%s", r.code, r.output())
	}
}
