package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// scriptList returns the names of one of docker-launch.sh's lists of
// settings.
func scriptList(t *testing.T, name string) []string {
	t.Helper()
	m := regexp.MustCompile(`\n` + name + `=\(([^)]*)\)`).FindStringSubmatch(
		readFile(t, "docker-launch.sh"))
	if m == nil {
		t.Fatalf("docker-launch.sh has no list %s", name)
	}
	return strings.Fields(m[1])
}

// podReads returns the environment variables that byoda pod reads, from
// its source.
func podReads(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`\(\s*"([A-Z][A-Z0-9_]{3,})"`)
	seen := map[string]bool{}
	files, err := filepath.Glob("../cmd/byoda/pod*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(append(files, "../cmd/byoda/main.go"), func(f string) bool {
		return strings.HasSuffix(f, "_test.go")
	})
	for _, f := range files {
		for _, m := range re.FindAllStringSubmatch(readFile(t, f), -1) {
			seen[m[1]] = true
		}
	}
	names := slices.Sorted(maps.Keys(seen))
	for _, must := range []string{"NETWORK", "PRIVATE_KEY_SECRET", "ROOT_DIR", "LOGLEVEL",
		"CUSTOM_DOMAIN", "SHARED_WEBSERVER"} {
		if !slices.Contains(names, must) {
			t.Fatalf("the pod's variables as read from its source lack %s: %q", must, names)
		}
	}
	return names
}

// TestSettingsKnown checks that every variable of the pod is known to the
// launch script, explained in the example settings and in the guide, and
// that the example and the compose file name no variable the script does
// not know.
func TestSettingsKnown(t *testing.T) {
	known := slices.Concat(scriptList(t, "pod_settings"), scriptList(t, "path_settings"),
		scriptList(t, "launch_settings"))
	example := readFile(t, "config.env.example")
	guide := readFile(t, "../docs/deploy.md")

	for _, name := range podReads(t) {
		if !slices.Contains(known, name) {
			t.Errorf("the pod reads %s, which docker-launch.sh does not know", name)
		}
		if !regexp.MustCompile(`(?m)^#?` + name + `=`).MatchString(example) {
			t.Errorf("config.env.example does not explain %s", name)
		}
		if !strings.Contains(guide, "`"+name+"`") {
			t.Errorf("docs/deploy.md does not explain %s", name)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^#?([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(
		example, -1) {
		if !slices.Contains(known, m[1]) {
			t.Errorf("config.env.example sets %s, which docker-launch.sh does not know", m[1])
		}
	}
	compose := readFile(t, "compose.yaml")
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(
		compose, -1) {
		if m[1] != "BYODA_CONFIG" && !slices.Contains(known, m[1]) {
			t.Errorf("compose.yaml uses %s, which docker-launch.sh does not know", m[1])
		}
	}
}

// TestExampleSettings checks that the example file, filled in with a
// passphrase, starts the plainest pod.
func TestExampleSettings(t *testing.T) {
	d := newDirs(t)
	example := readFile(t, "config.env.example")
	example = strings.Replace(example, "PRIVATE_KEY_SECRET=\n",
		"PRIVATE_KEY_SECRET="+keySecret+"\n", 1)
	cfg := writeConfig(t, example, "ROOT_DIR="+d.root, "LOGDIR="+d.logs, "POD_USER="+podUser())
	r := newLauncher(t).mustRun("--dry-run", "--config", cfg)
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("the example settings draw warnings:\n%s", r.stderr)
	}
	run, _ := dryRunCommand(t, r.stdout)
	c := parseRun(t, run)
	if !slices.Equal(c.opts["--publish"], []string{"443:443", "444:444"}) {
		t.Errorf("the example publishes %q", c.opts["--publish"])
	}
}

// interpolate fills in compose's ${NAME} and ${NAME:-default}.
func interpolate(s string, env map[string]string) string {
	re := regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		sub := re.FindStringSubmatch(m)
		if v := env[sub[1]]; v != "" {
			return v
		}
		return sub[2]
	})
}

// composeRun turns the compose file's service into the docker run it
// stands for.
func composeRun(t *testing.T, svc map[string]any, env map[string]string) (runCmd,
	map[string]string) {
	t.Helper()
	str := func(v any) string {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("compose.yaml: %v is not a string", v)
		}
		return interpolate(s, env)
	}
	list := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, str(x))
		}
		return out
	}

	c := runCmd{flags: []string{"--detach"}, opts: map[string][]string{}}
	environment := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(svc)) {
		v := svc[key]
		switch key {
		case "image":
			c.image = str(v)
		case "command":
			c.command = list(v)
		case "container_name":
			c.opts["--name"] = []string{str(v)}
		case "restart":
			c.opts["--restart"] = []string{str(v)}
		case "user":
			c.opts["--user"] = []string{str(v)}
		case "read_only":
			if str(v) == "true" {
				c.flags = append(c.flags, "--read-only")
			}
		case "tmpfs":
			c.opts["--tmpfs"] = list(v)
		case "cap_drop":
			c.opts["--cap-drop"] = list(v)
		case "security_opt":
			c.opts["--security-opt"] = list(v)
		case "sysctls":
			for k, x := range v.(map[string]any) {
				c.opts["--sysctl"] = append(c.opts["--sysctl"], k+"="+str(x))
			}
		case "ulimits":
			for k, x := range v.(map[string]any) {
				lim := x.(map[string]any)
				c.opts["--ulimit"] = append(c.opts["--ulimit"],
					k+"="+str(lim["soft"])+":"+str(lim["hard"]))
			}
		case "logging":
			c.opts["--log-driver"] = []string{str(v.(map[string]any)["driver"])}
		case "stop_grace_period":
			c.opts["--stop-timeout"] = []string{strings.TrimSuffix(str(v), "s")}
		case "network_mode":
			if str(v) != "bridge" {
				t.Errorf("network_mode %s, want docker's default bridge", str(v))
			}
		case "env_file":
			environment["(env_file)"] = strings.Join(list(v), " ")
		case "environment":
			for k, x := range v.(map[string]any) {
				environment[k] = str(x)
			}
		case "ports":
			c.opts["--publish"] = list(v)
		case "volumes":
			for _, x := range v.([]any) {
				m := x.(map[string]any)
				mount := "type=" + str(m["type"]) + ",src=" + str(m["source"]) + ",dst=" +
					str(m["target"])
				if m["read_only"] != nil && str(m["read_only"]) == "true" {
					mount += ",readonly"
				}
				c.opts["--mount"] = append(c.opts["--mount"], mount)
			}
		default:
			t.Errorf("compose.yaml: the test does not know the key %s", key)
		}
	}
	return c, environment
}

// TestCompose checks that compose.yaml runs the container that
// docker-launch.sh runs with the same settings.
func TestCompose(t *testing.T) {
	doc, err := parseYAML(readFile(t, "compose.yaml"))
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	services, _ := doc.(map[string]any)["services"].(map[string]any)
	svc, ok := services["pod"].(map[string]any)
	if !ok || len(services) != 1 {
		t.Fatalf("compose.yaml must have one service, pod: %v", services)
	}

	d := newDirs(t)
	lines := d.baseConfig()
	env := map[string]string{}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, "=")
		env[name] = strings.Trim(value, "'")
	}
	fromCompose, environment := composeRun(t, svc, env)
	fromScript := dryRun(t, lines)

	for opt, values := range fromScript.opts {
		if opt == "--env" {
			continue
		}
		if got := fromCompose.opts[opt]; !slices.Equal(got, values) {
			t.Errorf("%s: compose %q, docker-launch.sh %q", opt, got, values)
		}
	}
	if len(fromCompose.opts) != len(fromScript.opts)-1 {
		t.Errorf("compose has options %q that docker-launch.sh does not use",
			slices.Sorted(maps.Keys(fromCompose.opts)))
	}
	if !slices.Equal(fromCompose.flags, fromScript.flags) || fromCompose.image !=
		fromScript.image || !slices.Equal(fromCompose.command, fromScript.command) {
		t.Errorf("compose runs %q %s %q, docker-launch.sh %q %s %q", fromCompose.flags,
			fromCompose.image, fromCompose.command, fromScript.flags, fromScript.image,
			fromScript.command)
	}
	want := map[string]string{"ROOT_DIR": d.root, "LOGDIR": d.logs, "BIND_ADDRESS": "",
		"(env_file)": "/etc/byoda/config.env"}
	if !maps.Equal(environment, want) {
		t.Errorf("compose's environment %q, want %q", environment, want)
	}
}

// TestShellcheck lints the launch script.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		skipUnlessCI(t, "shellcheck is not installed (Debian's shellcheck package)")
		return
	}
	out, err := exec.Command(sc, "--severity=style", "docker-launch.sh").CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck docker-launch.sh: %v\n%s", err, out)
	}
}

// units are the systemd units of the deploy directory.
var units = []string{"byoda-pod.service", "byoda-webserver-reload.path",
	"byoda-webserver-reload.service"}

// TestSystemdUnits has systemd-analyze verify the units and rate the pod's
// sandbox. It needs no running systemd. Programs of the units that this
// machine lacks (byoda before installation, nginx) are replaced by one that
// exists, which is all verify asks of them.
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipUnlessCI(t, "systemd-analyze is not installed (Debian's systemd package)")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		text := readFile(t, u)
		for _, prog := range []string{"/usr/local/bin/byoda", "/usr/sbin/nginx"} {
			if _, err := os.Stat(prog); err != nil {
				text = strings.ReplaceAll(text, prog, self)
			}
		}
		path := filepath.Join(dir, u)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze,
		append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// An exposure of 2.5 or less is what systemd calls OK; the unit is at
	// 1.6.
	out, err = exec.CommandContext(ctx, analyze, "security", "--offline=true",
		"--threshold=25", paths[0]).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("%s", lastLine(out))
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// unitKeys reads the settings of a unit file, each key with its values in
// order.
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	keys := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// TestPodUnit checks what the pod's unit promises: the settings file, the
// user, the paths it may write, which are the pod's defaults, and the
// sandbox.
func TestPodUnit(t *testing.T) {
	keys := unitKeys(t, "byoda-pod.service")
	want := map[string]string{
		"ExecStart":             "/usr/local/bin/byoda pod",
		"EnvironmentFile":       "/etc/byoda/config.env",
		"User":                  "byoda",
		"ReadWritePaths":        "/byoda /var/www/wwwroot/logs",
		"ProtectSystem":         "strict",
		"NoNewPrivileges":       "yes",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"PrivateTmp":            "yes",
		"ProtectHome":           "yes",
	}
	for k, v := range want {
		if got := keys[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}

	keys = unitKeys(t, "byoda-webserver-reload.path")
	if got := keys["PathChanged"]; !slices.Equal(got, []string{"/etc/nginx/byoda"}) {
		t.Errorf("the reload unit watches %q, want the WEBSERVER_CONF_DIR the guide suggests", got)
	}
	if !strings.Contains(readFile(t, "docker-launch.sh"), "WEBSERVER_CONF_DIR=/etc/nginx/byoda") {
		t.Error("docker-launch.sh no longer suggests /etc/nginx/byoda")
	}
}
