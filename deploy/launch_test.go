package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The secrets of the test settings, which must never show in the script's
// output or on a docker command line.
const (
	keySecret     = "key-secret-7f3a9c51e0b2d846"
	accountSecret = `account secret with "quotes" #, $HOME and spaces`
)

// standInDocker records each call in calls, answers the questions that
// docker-launch.sh asks (is there a container, what is the bridge's
// gateway), and for run records in env the value of each --env NAME as
// docker would take it from its environment. When the file watch names a
// path, each call notes in watched whether that path exists then.
const standInDocker = `#!/usr/bin/env bash
dir=$(dirname "$0")
{ printf '%s\x1f' "$@"; printf '\x1e'; } >>"$dir/calls"
if [ -e "$dir/watch" ]; then
	if [ -e "$(cat "$dir/watch")" ]; then echo "$1 present"; else echo "$1 absent"; fi >>"$dir/watched"
fi
case "$1 ${2:-}" in
"container inspect") [ -e "$dir/exists" ] || exit 1 ;;
"network inspect") [ -e "$dir/gateway" ] || exit 1; cat "$dir/gateway" ;;
esac
if [ "$1" = run ]; then
	prev=
	for a in "$@"; do
		if [ "$prev" = --env ]; then
			if [ -n "${!a+x}" ]; then printf '%s=%s\0' "$a" "${!a}"; else printf '%s\0' "$a"; fi
		fi
		prev=$a
	done >"$dir/env"
fi
`

// launcher runs docker-launch.sh in an environment of its own, with the
// stand-in docker first on PATH.
type launcher struct {
	t   *testing.T
	bin string
	env []string // more environment variables
}

func newLauncher(t *testing.T) *launcher {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(standInDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	return &launcher{t: t, bin: bin}
}

// result is what one run of the script did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) output() string { return r.stdout + r.stderr }

// run runs the script with args and stdin from /dev/null.
func (l *launcher) run(args ...string) result {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, "bash", append([]string{"docker-launch.sh"}, args...)...)
	cmd.Env = []string{
		"PATH=" + l.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + l.bin, "LANG=C",
	}
	cmd.Env = append(cmd.Env, l.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()

	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		l.t.Fatalf("running docker-launch.sh: %v", err)
	}
	for _, s := range []string{keySecret, accountSecret} {
		if strings.Contains(r.output(), s) {
			l.t.Fatalf("docker-launch.sh printed a secret:\n%s", r.output())
		}
	}
	return r
}

// mustRun runs the script and fails the test unless it succeeds.
func (l *launcher) mustRun(args ...string) result {
	l.t.Helper()
	r := l.run(args...)
	if r.code != 0 {
		l.t.Fatalf("docker-launch.sh %s: exit %d\n%s", strings.Join(args, " "), r.code,
			r.output())
	}
	return r
}

// calls returns the stand-in docker's calls since the last reset, each as
// its arguments.
func (l *launcher) calls() [][]string {
	l.t.Helper()
	data, err := os.ReadFile(filepath.Join(l.bin, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		l.t.Fatal(err)
	}
	var calls [][]string
	for rec := range strings.SplitSeq(strings.TrimSuffix(string(data), "\x1e"), "\x1e") {
		calls = append(calls, strings.Split(strings.TrimSuffix(rec, "\x1f"), "\x1f"))
	}
	return calls
}

// runEnv returns the values docker got for the --env names of its run.
func (l *launcher) runEnv() map[string]string {
	l.t.Helper()
	data, err := os.ReadFile(filepath.Join(l.bin, "env"))
	if err != nil {
		l.t.Fatal(err)
	}
	env := map[string]string{}
	for item := range strings.SplitSeq(strings.TrimSuffix(string(data), "\x00"), "\x00") {
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			l.t.Fatalf("docker got --env %s, which the script did not set", name)
		}
		env[name] = value
	}
	return env
}

func (l *launcher) reset() {
	for _, f := range []string{"calls", "env", "exists", "gateway", "watch", "watched"} {
		os.Remove(filepath.Join(l.bin, f))
	}
}

// set makes the stand-in answer that a container exists, or give a bridge
// gateway.
func (l *launcher) set(file, content string) {
	l.t.Helper()
	if err := os.WriteFile(filepath.Join(l.bin, file), []byte(content), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// writeConfig writes a settings file, private to its owner as the script
// demands, and returns its path.
func writeConfig(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.env")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// podUser is the POD_USER of the tests: the test's own user, so that the
// script finds the directories it is given owned by the pod's user.
func podUser() string { return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()) }

// dirs are the host directories of one test pod.
type dirs struct{ root, logs, conf, le string }

func newDirs(t *testing.T) dirs {
	t.Helper()
	base := t.TempDir()
	d := dirs{root: filepath.Join(base, "byoda"), logs: filepath.Join(base, "logs"),
		conf: filepath.Join(base, "nginx"), le: filepath.Join(base, "letsencrypt")}
	for _, dir := range []string{d.root, d.logs, d.conf} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// baseConfig is the start of every test's settings.
func (d dirs) baseConfig() []string {
	return []string{
		"# a pod of the tests",
		"PRIVATE_KEY_SECRET=" + keySecret,
		"ACCOUNT_SECRET='" + accountSecret + "'",
		"ROOT_DIR=" + d.root,
		"LOGDIR=" + d.logs,
		"POD_USER=" + podUser(),
	}
}

// writeCert puts a certificate for domain into a Let's Encrypt layout
// under dir.
func writeCert(t *testing.T, dir, domain string) {
	t.Helper()
	live := filepath.Join(dir, "live", domain)
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"fullchain.pem", "privkey.pem"} {
		if err := os.WriteFile(filepath.Join(live, f), []byte("PEM\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// dryRunCommand returns the docker run command of a dry run's output, as
// bash reads it back, and the commands before it.
func dryRunCommand(t *testing.T, stdout string) (run []string, before []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "docker run ") {
		t.Fatalf("the dry run does not end with docker run:\n%s", stdout)
	}
	return shellWords(t, last), lines[:len(lines)-1]
}

// shellWords splits a command line the way bash does.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.Command("bash", "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("bash cannot read %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// runCmd is a docker run command taken apart.
type runCmd struct {
	flags   []string            // options without a value
	opts    map[string][]string // options with values, in order
	image   string
	command []string
}

// valued are the docker run options the script uses that take a value.
var valued = []string{"--name", "--restart", "--user", "--tmpfs", "--cap-drop",
	"--security-opt", "--sysctl", "--ulimit", "--log-driver", "--stop-timeout", "--publish",
	"--mount", "--env"}

func parseRun(t *testing.T, args []string) runCmd {
	t.Helper()
	if len(args) < 2 || args[0] != "docker" || args[1] != "run" {
		t.Fatalf("not a docker run command: %q", args)
	}
	c := runCmd{opts: map[string][]string{}}
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch {
		case slices.Contains(valued, a) && i+1 < len(args):
			c.opts[a] = append(c.opts[a], args[i+1])
			i++
		case a == "--detach" || a == "--read-only":
			c.flags = append(c.flags, a)
		case strings.HasPrefix(a, "-"):
			t.Fatalf("docker run option %s is new to the test", a)
		default:
			c.image, c.command = a, args[i+1:]
			return c
		}
	}
	t.Fatalf("docker run without an image: %q", args)
	return c
}

// checkDockerSyntax has the real docker client read the command: with no
// daemon to reach, a command it accepts fails only at connecting.
func checkDockerSyntax(t *testing.T, args []string) {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		skipUnlessCI(t, "the docker client is not installed; the command's syntax is not checked")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, docker, args[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(),
		"DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "no-daemon.sock")}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "Cannot connect to the Docker daemon") {
		t.Errorf("docker does not accept the command %q:\n%s", args, out)
	}
}

// skipUnlessCI skips a test that lacks a tool, except in CI, where every
// test must run.
func skipUnlessCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: installing it is part of scripts/test)", why)
	}
	t.Skip(why)
}

// needRoot skips a test that checks what the pod's user, another user, may
// do: only root can ask that.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (CI runs as root)")
	}
	t.Skip("needs root to act as the pod's user")
}
