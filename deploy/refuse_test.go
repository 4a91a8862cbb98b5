package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRefusals checks that a bad setting stops the script before it does
// anything, with a message that names the setting and what to do.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(d dirs, lines []string) []string
		args  []string
		code  int
		wants []string
	}{
		{"no key secret", drop("PRIVATE_KEY_SECRET"), nil, 1,
			[]string{"PRIVATE_KEY_SECRET must be set", "openssl rand"}},
		{"empty key secret", set("PRIVATE_KEY_SECRET="), nil, 1,
			[]string{"PRIVATE_KEY_SECRET must be set"}},
		{"changeme key secret", set("PRIVATE_KEY_SECRET=changeme"), nil, 1,
			[]string{"PRIVATE_KEY_SECRET is still 'changeme'"}},
		{"changeme password", set("ACCOUNT_SECRET=changeme"), nil, 1,
			[]string{"ACCOUNT_SECRET is still 'changeme'"}},
		{"not NAME=VALUE", set("LOGLEVEL DEBUG"), nil, 1,
			[]string{"config.env:7: expected NAME=VALUE"}},
		{"quotes", set(`ACCOUNT_USERNAME='alice`), nil, 1, []string{"quotes do not match"}},
		{"comment after value", set("LOGLEVEL=DEBUG # for now"), nil, 1,
			[]string{"LOGLEVEL", "comment on its own line"}},
		{"shared off", set("SHARED_WEBSERVER=false"), nil, 1,
			[]string{"SHARED_WEBSERVER is 'false'", "remove the line"}},
		{"manage off", set("CUSTOM_DOMAIN="+domain, "MANAGE_CUSTOM_DOMAIN_CERT=no"), nil, 1,
			[]string{"MANAGE_CUSTOM_DOMAIN_CERT is 'no'", "MANAGE_CUSTOM_DOMAIN_CERT="}},
		{"log level", set("LOGLEVEL=verbose"), nil, 1,
			[]string{"LOGLEVEL must be DEBUG, INFO, WARNING or ERROR, not 'verbose'"}},
		{"port", set("HTTPS_PORT=70000"), nil, 1,
			[]string{"HTTPS_PORT must be a port from 1 to 65535, not '70000'"}},
		{"same ports", set("HTTPS_PORT=444"), nil, 1, []string{"must differ: 444 444"}},
		{"every error at once", set("LOGLEVEL=loud", "POD_PORT=x"), nil, 1,
			[]string{"LOGLEVEL must be", "POD_PORT must be a port"}},
		{"custom domain", set("CUSTOM_DOMAIN=not a name"), nil, 1,
			[]string{"CUSTOM_DOMAIN must be a DNS name"}},
		{"root dir of the system", set("ROOT_DIR=/etc"), nil, 1,
			[]string{"ROOT_DIR is /etc, a directory of the system"}},
		{"relative root dir", set("ROOT_DIR=byoda"), nil, 1,
			[]string{"ROOT_DIR must be an absolute path"}},
		{"log dir of the system", set("LOGDIR=/var/log/"), nil, 1,
			[]string{"LOGDIR is /var/log, a directory of the system"}},
		{"logs in the data", func(d dirs, lines []string) []string {
			return append(lines, "LOGDIR="+filepath.Join(d.root, "logs"))
		}, nil, 1, []string{"must not be inside each other"}},
		{"two root dirs", set("BYODA_ROOT_DIR=/srv/byoda"), nil, 1,
			[]string{"BYODA_ROOT_DIR (/srv/byoda) and ROOT_DIR"}},
		{"reload command", set("SHARED_WEBSERVER=1", "WEBSERVER_RELOAD_COMMAND=nginx -s reload"),
			nil, 1, []string{"WEBSERVER_RELOAD_COMMAND would run inside the container",
				"byoda-webserver-reload.path"}},
		{"test command", set("WEBSERVER_TEST_COMMAND=nginx -t"), nil, 1,
			[]string{"WEBSERVER_TEST_COMMAND would run inside the container"}},
		{"missing conf dir", set("SHARED_WEBSERVER=1", "WEBSERVER_CONF_DIR=/nonexistent/nginx"),
			nil, 1, []string{"WEBSERVER_CONF_DIR /nonexistent/nginx does not exist"}},
		{"tag", nil, []string{"--tag", "dev;rm"}, 1, []string{"the image tag must be"}},
		{"pod user", set("POD_USER=byoda"), nil, 1, []string{"POD_USER must be UID:GID"}},
		{"root CA file", set("NETWORK_ROOT_CA=/nonexistent/root-ca.pem"), nil, 1,
			[]string{"NETWORK_ROOT_CA must be a certificate file"}},
		{"unknown option", nil, []string{"--wipe-everything"}, 2,
			[]string{"unknown option --wipe-everything"}},
		{"logs kept and wiped", nil, []string{"--keep-logs", "--wipe-logs"}, 2,
			[]string{"contradict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDirs(t)
			lines := d.baseConfig()
			if tt.edit != nil {
				lines = tt.edit(d, lines)
			}
			cfg := writeConfig(t, lines...)
			l := newLauncher(t)

			for _, mode := range [][]string{{"--dry-run"}, {"--yes"}} {
				args := append(append(mode, "--config", cfg), tt.args...)
				r := l.run(args...)
				if r.code != tt.code {
					t.Fatalf("%q: exit %d, want %d:\n%s", args, r.code, tt.code, r.output())
				}
				for _, w := range tt.wants {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%q: the message does not say %q:\n%s", args, w, r.stderr)
					}
				}
				if r.stdout != "" {
					t.Errorf("%q: a refusal printed commands:\n%s", args, r.stdout)
				}
			}
			if calls := l.calls(); len(calls) > 0 {
				t.Errorf("docker was called: %q", calls)
			}
		})
	}
}

// drop removes the setting name from the lines.
func drop(name string) func(dirs, []string) []string {
	return func(_ dirs, lines []string) []string {
		return slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
			return strings.HasPrefix(l, name+"=")
		})
	}
}

// set replaces or adds lines, each NAME=VALUE replacing the setting NAME.
func set(add ...string) func(dirs, []string) []string {
	return func(d dirs, lines []string) []string {
		for _, a := range add {
			name, _, _ := strings.Cut(a, "=")
			lines = append(drop(name)(d, lines), a)
		}
		return lines
	}
}

// TestSettingsFile checks the script's demands on the file itself.
func TestSettingsFile(t *testing.T) {
	l := newLauncher(t)
	d := newDirs(t)

	r := l.run("--dry-run", "--config", filepath.Join(t.TempDir(), "none.env"))
	if r.code != 1 || !strings.Contains(r.stderr, "does not exist: copy") ||
		!strings.Contains(r.stderr, "config.env.example") {
		t.Errorf("a missing file: exit %d:\n%s", r.code, r.output())
	}

	cfg := writeConfig(t, d.baseConfig()...)
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	r = l.run("--dry-run", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "chmod 600 "+cfg) {
		t.Errorf("a file others can read: exit %d:\n%s", r.code, r.output())
	}

	if err := os.Chmod(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	r = l.run("--dry-run")
	if r.code != 1 || !strings.Contains(r.stderr, "/etc/byoda/config.env") {
		t.Errorf("without --config the script does not read /etc/byoda/config.env:\n%s",
			r.output())
	}
	l.env = []string{"BYODA_CONFIG=" + cfg}
	l.mustRun("--dry-run")
}

// TestWarnings checks settings that the script runs with but remarks on.
func TestWarnings(t *testing.T) {
	d := newDirs(t)
	cfg := writeConfig(t, append(d.baseConfig(),
		"CUSTOM_DOMIAN=pod.example.org",
		"PUBLIC_BUCKET=changeme",
		"export LOGLEVEL=INFO",
		"ACCOUNT_USERNAME=al$ice",
		"NETWORK=byoda.net",
		"NETWORK=byoda.test",
		"DEBUG=1",
	)...)
	r := newLauncher(t).mustRun("--dry-run", "--config", cfg)
	for _, w := range []string{
		"CUSTOM_DOMIAN is not a setting of the pod or of docker-launch.sh; ignored (a typo?)",
		"PUBLIC_BUCKET is a setting of the Python pod that this pod does not have",
		"'export' is not needed",
		"docker compose would expand the '$' in ACCOUNT_USERNAME",
		"NETWORK is set again",
		"DEBUG is a setting of the Python pod; LOGLEVEL=INFO counts",
	} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("no warning %q:\n%s", w, r.stderr)
		}
	}
	run, _ := dryRunCommand(t, r.stdout)
	if c := parseRun(t, run); slices.Contains(c.opts["--env"], "CUSTOM_DOMIAN") ||
		slices.Contains(c.opts["--env"], "PUBLIC_BUCKET") {
		t.Errorf("ignored settings reach the container: %q", c.opts["--env"])
	}
}
