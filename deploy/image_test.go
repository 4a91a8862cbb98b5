package deploy_test

import (
	"context"
	"debug/elf"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildFlags are the go build flags of the Dockerfile.
const buildFlags = "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'"

// TestDockerfile checks the Dockerfile against the rest of the project: the
// Go version of go.mod, the pod's defaults and the launch script's user,
// and the guide's account of the image.
func TestDockerfile(t *testing.T) {
	df := readFile(t, "../Dockerfile")
	gomod := readFile(t, "../go.mod")

	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if goVersion == nil || !strings.Contains(df, "ARG GO_VERSION="+goVersion[1]+"\n") {
		t.Errorf("the Dockerfile does not build with go.mod's Go %v", goVersion)
	}
	froms := regexp.MustCompile(`(?m)^FROM (.*)$`).FindAllStringSubmatch(df, -1)
	if len(froms) != 2 || froms[0][1] != "golang:${GO_VERSION} AS build" ||
		froms[1][1] != "scratch" {
		t.Errorf("stages %q, want golang:${GO_VERSION} AS build, then scratch", froms)
	}
	for _, line := range []string{
		"RUN " + buildFlags + " -o /out/usr/local/bin/byoda ./cmd/byoda",
		"COPY --from=build --chown=65532:65532 /pod/byoda /byoda",
		"COPY --from=build --chown=65532:65532 /pod/logs /var/www/wwwroot/logs",
		"USER 65532:65532",
		"EXPOSE 443 444 80 8000",
		`VOLUME ["/byoda", "/var/www/wwwroot/logs"]`,
		`ENTRYPOINT ["/usr/local/bin/byoda"]`,
		`CMD ["pod"]`,
	} {
		if !strings.Contains(df, "\n"+line+"\n") {
			t.Errorf("the Dockerfile has no line %s", line)
		}
	}
	if !strings.Contains(readFile(t, "docker-launch.sh"), "${user:-65532:65532}") {
		t.Error("docker-launch.sh does not run the image's user 65532:65532 by default")
	}

	guide := readFile(t, "../docs/deploy.md")
	if !strings.Contains(guide, "`scratch`") || guideBinarySize(t, guide) == 0 {
		t.Error("docs/deploy.md does not state the image's base and size")
	}
}

// guideBinarySize returns the binary's size as the guide states it, in
// bytes.
func guideBinarySize(t *testing.T, guide string) int64 {
	t.Helper()
	m := regexp.MustCompile(`binary is ([0-9,]+) bytes`).FindStringSubmatch(guide)
	if m == nil {
		t.Fatal(`docs/deploy.md does not say "the binary is N bytes"`)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImageBuild does what the Dockerfile's build stage does, without
// Docker: it copies the build context that .dockerignore lets through and
// builds the binary there with the Dockerfile's flags. The binary must be
// static and stripped, must run, and must be near the size the guide
// states, so that the guide's figure does not go stale unnoticed.
func TestImageBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctxDir := t.TempDir()
	copyContext(t, "..", ctxDir)

	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "byoda")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin,
		"./cmd/byoda")
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building in the Docker build context: %v\n%s", err, out)
	}

	checkStatic(t, bin)
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out),
		"usage: byoda") {
		t.Errorf("byoda without arguments: %v\n%s", err, out)
	}

	info, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	stated := guideBinarySize(t, readFile(t, "../docs/deploy.md"))
	t.Logf("binary: %d bytes (%.1f MB); the guide says %d", info.Size(),
		float64(info.Size())/1e6, stated)
	if ratio := float64(info.Size()) / float64(stated); ratio < 0.75 || ratio > 1.33 {
		t.Errorf("the binary is %d bytes, the guide says %d: update the guide's figures",
			info.Size(), stated)
	}
}

// checkStatic fails unless the ELF file at path has no interpreter, no
// shared libraries and no symbol table.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %q", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary keeps its symbol table: -ldflags=-s did not apply")
	}
}

// copyContext copies the files of the repository at src that .dockerignore
// lets into a build context.
func copyContext(t *testing.T, src, dst string) {
	t.Helper()
	rules := readDockerignore(t, filepath.Join(src, ".dockerignore"))
	n := 0
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if ignored(rel, rules) || !e.Type().IsRegular() {
			return nil
		}
		n++
		return copyFile(p, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build context: %d files", n)
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ignoreRule is one line of .dockerignore.
type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

func readDockerignore(t *testing.T, file string) []ignoreRule {
	t.Helper()
	var rules []ignoreRule
	for line := range strings.SplitSeq(readFile(t, file), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			r.negate, line = true, rest
		}
		r.re = patternRegexp(path.Clean(strings.TrimPrefix(line, "/")))
		rules = append(rules, r)
	}
	return rules
}

// patternRegexp turns a .dockerignore pattern into a regular expression
// with Docker's meaning: * and ? stay within a path element, ** crosses
// them.
func patternRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// ignored applies the rules to a file as Docker does: the last rule that
// matches the file or one of its parent directories decides.
func ignored(rel string, rules []ignoreRule) bool {
	parts := strings.Split(rel, "/")
	out := false
	for _, r := range rules {
		for i := range parts {
			if r.re.MatchString(strings.Join(parts[:i+1], "/")) {
				out = !r.negate
				break
			}
		}
	}
	return out
}

func TestDockerignore(t *testing.T) {
	rules := readDockerignore(t, "../.dockerignore")
	for rel, want := range map[string]bool{
		"go.mod": false, "cmd/byoda/main.go": false, "internal/pod/pod.go": false,
		"internal/contracts/addressbook.json": false, "internal/web/static/app.js": false,
		"cmd/byoda/main_test.go": true, "internal/contract/testdata/edge.json": true,
		".git/config": true, "byoda": true, "devnet/devnet.json": true, "deploy/config.env": true,
		"README.md": true, "byoda/private/key.pem": true,
	} {
		if got := ignored(rel, rules); got != want {
			t.Errorf("%s: ignored %v, want %v", rel, got, want)
		}
	}
}
