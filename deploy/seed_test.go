package deploy_test

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

const domain = "pod.example.org"

// seedCase is one combination of the settings the seed's guide names:
// SHARED_WEBSERVER, CUSTOM_DOMAIN, MANAGE_CUSTOM_DOMAIN_CERT,
// LETSENCRYPT_DIRECTORY and LOGLEVEL. absent leaves a line out.
type seedCase struct {
	shared, domain bool
	manage         string
	le             string
	loglevel       string
}

const absent = "(absent)"

func (c seedCase) name() string {
	return fmt.Sprintf("shared=%v/domain=%v/manage=%q/le=%s/loglevel=%s", c.shared, c.domain,
		c.manage, c.le, c.loglevel)
}

func seedCases() []seedCase {
	var cases []seedCase
	for _, shared := range []bool{false, true} {
		for _, dom := range []bool{false, true} {
			// The seed's value, the empty string, and no line at all.
			for _, manage := range []string{absent, "MANAGE_CUSTOM_DOMAIN_CERT", ""} {
				for _, le := range []string{absent, "dir"} {
					for _, level := range []string{absent, "DEBUG"} {
						cases = append(cases, seedCase{shared, dom, manage, le, level})
					}
				}
			}
		}
	}
	return cases
}

// config returns the settings of c and the directory the pod's certificate
// is expected in.
func (c seedCase) config(t *testing.T, d dirs) (lines []string, leDir string) {
	lines = d.baseConfig()
	if c.shared {
		lines = append(lines, "SHARED_WEBSERVER=SHARED_WEBSERVER", "WEBSERVER_CONF_DIR="+d.conf)
	}
	if c.domain {
		lines = append(lines, "CUSTOM_DOMAIN="+domain)
	}
	if c.manage != absent {
		lines = append(lines, "MANAGE_CUSTOM_DOMAIN_CERT="+c.manage)
	}
	leDir = "/etc/letsencrypt"
	if c.le == "dir" {
		leDir = d.le
		writeCert(t, d.le, domain)
		lines = append(lines, "LETSENCRYPT_DIRECTORY="+d.le)
	}
	if c.loglevel != absent {
		lines = append(lines, "LOGLEVEL="+c.loglevel)
	}
	return lines, leDir
}

// want is what the container of a seed case must get: the rules of
// docs/deploy.md, written out once more.
type want struct {
	publish []string
	mounts  []string
	env     map[string]string
}

func (c seedCase) want(d dirs, leDir string) want {
	manage := c.domain && c.manage != ""
	external := c.domain && c.manage == ""

	var w want
	if c.shared {
		w.publish = []string{"127.0.0.1:8000:8000"}
	} else {
		w.publish = []string{"443:443", "444:444"}
	}
	if manage {
		w.publish = append(w.publish, "80:80")
	}

	bind := func(dir string) string { return "type=bind,src=" + dir + ",dst=" + dir }
	w.mounts = []string{bind(d.root), bind(d.logs)}
	w.env = map[string]string{
		"ROOT_DIR": d.root, "LOGDIR": d.logs,
		"PRIVATE_KEY_SECRET": keySecret, "ACCOUNT_SECRET": accountSecret,
	}
	if c.shared {
		w.mounts = append(w.mounts, bind(d.conf))
		w.env["WEBSERVER_CONF_DIR"] = d.conf
		w.env["SHARED_WEBSERVER"] = "SHARED_WEBSERVER"
		w.env["TRUSTED_PROXIES"] = "172.17.0.1"
		w.env["BIND_ADDRESS"] = "0.0.0.0"
	}
	if external {
		w.mounts = append(w.mounts, bind(leDir)+",readonly")
		w.env["LETSENCRYPT_DIRECTORY"] = leDir
	}
	if c.domain {
		w.env["CUSTOM_DOMAIN"] = domain
	}
	if c.manage != absent {
		w.env["MANAGE_CUSTOM_DOMAIN_CERT"] = c.manage
	}
	if c.loglevel != absent {
		w.env["LOGLEVEL"] = c.loglevel
	}
	return w
}

// TestSeedCombinations runs docker-launch.sh for every combination of the
// seed's settings: the dry run's docker run must publish, mount and pass
// what the combination needs; the real run must give docker that same
// command with the right values; and docker must accept its syntax.
func TestSeedCombinations(t *testing.T) {
	_, leErr := os.Stat("/etc/letsencrypt")
	for _, c := range seedCases() {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			d := newDirs(t)
			lines, leDir := c.config(t, d)
			cfg := writeConfig(t, lines...)
			l := newLauncher(t)

			external := c.domain && c.manage == ""
			if external && c.le == absent && leErr != nil {
				r := l.run("--dry-run", "--config", cfg)
				if r.code != 1 || !strings.Contains(r.stderr,
					"LETSENCRYPT_DIRECTORY /etc/letsencrypt does not exist") {
					t.Fatalf("want a refusal naming the missing certificate directory, "+
						"got exit %d:\n%s", r.code, r.output())
				}
				return
			}

			dry := l.mustRun("--dry-run", "--config", cfg)
			if calls := l.calls(); len(calls) > 0 {
				t.Fatalf("the dry run called docker: %q", calls)
			}
			args, before := dryRunCommand(t, dry.stdout)
			wantBefore := []string{"docker stop --time 30 byoda", "docker rm byoda"}
			if !slices.Equal(before, wantBefore) {
				t.Errorf("commands before docker run: %q, want %q", before, wantBefore)
			}
			checkRun(t, parseRun(t, args), c.want(d, leDir))

			l.mustRun("--config", cfg)
			calls := l.calls()
			if c.shared {
				// The script asks docker for its bridge's gateway.
				if len(calls) == 0 || !slices.Equal(calls[0][:3], []string{"network",
					"inspect", "bridge"}) {
					t.Fatalf("docker calls %q, want a network inspect first", calls)
				}
				calls = calls[1:]
			}
			if len(calls) != 2 || !slices.Equal(calls[0], []string{"container", "inspect", "byoda"}) {
				t.Fatalf("docker calls %q, want a container inspect and a run", calls)
			}
			if !slices.Equal(calls[1], args[1:]) {
				t.Errorf("the real run's command differs from the dry run's:\n%q\n%q",
					calls[1], args[1:])
			}
			if got, w := l.runEnv(), c.want(d, leDir).env; !maps.Equal(got, w) {
				t.Errorf("the container's settings:\n%q\nwant\n%q", got, w)
			}
			checkDockerSyntax(t, args)
		})
	}
}

// checkRun compares a docker run command with what a seed case wants, and
// with the options every container gets.
func checkRun(t *testing.T, c runCmd, w want) {
	t.Helper()
	fixed := map[string][]string{
		"--name": {"byoda"}, "--restart": {"unless-stopped"}, "--user": {podUser()},
		"--tmpfs": {"/tmp"}, "--cap-drop": {"ALL"}, "--security-opt": {"no-new-privileges"},
		"--sysctl": {"net.ipv4.ip_unprivileged_port_start=0"},
		"--ulimit": {"nofile=65536:65536"}, "--log-driver": {"local"}, "--stop-timeout": {"30"},
		"--publish": w.publish, "--mount": w.mounts,
	}
	for opt, values := range fixed {
		if !slices.Equal(c.opts[opt], values) {
			t.Errorf("%s %q, want %q", opt, c.opts[opt], values)
		}
	}
	names := slices.Sorted(maps.Keys(w.env))
	if got := slices.Sorted(slices.Values(c.opts["--env"])); !slices.Equal(got, names) {
		t.Errorf("--env %q, want %q", got, names)
	}
	for _, e := range c.opts["--env"] {
		if strings.Contains(e, "=") {
			t.Errorf("--env %s puts a value on the command line", e)
		}
	}
	if !slices.Equal(c.flags, []string{"--detach", "--read-only"}) {
		t.Errorf("flags %q, want --detach --read-only", c.flags)
	}
	if c.image != "byoda/byoda-go:latest" || !slices.Equal(c.command, []string{"pod"}) {
		t.Errorf("runs %s %q, want byoda/byoda-go:latest pod", c.image, c.command)
	}
}

// TestDryRunDefault pins the whole command of the plainest pod, as a person
// reads it.
func TestDryRunDefault(t *testing.T) {
	d := newDirs(t)
	cfg := writeConfig(t, d.baseConfig()...)
	r := newLauncher(t).mustRun("--dry-run", "--config", cfg)

	want := strings.Join([]string{
		"docker stop --time 30 byoda",
		"docker rm byoda",
		"docker run --detach --name byoda --restart unless-stopped --user " + podUser() +
			" --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges" +
			" --sysctl net.ipv4.ip_unprivileged_port_start=0 --ulimit nofile=65536:65536" +
			" --log-driver local --stop-timeout 30 --publish 443:443 --publish 444:444" +
			" --mount type=bind,src=" + d.root + ",dst=" + d.root +
			" --mount type=bind,src=" + d.logs + ",dst=" + d.logs +
			" --env ROOT_DIR --env LOGDIR --env ACCOUNT_SECRET --env PRIVATE_KEY_SECRET" +
			" byoda/byoda-go:latest pod",
	}, "\n") + "\n"
	if r.stdout != want {
		t.Errorf("dry run printed\n%s\nwant\n%s", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "dry run: nothing is changed") {
		t.Errorf("the dry run does not say that it changes nothing:\n%s", r.stderr)
	}
}
