package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/byoda/byoda-go/internal/logfile"
)

// logDirSize is the size of the files in dir.
func logDirSize(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += info.Size()
	}
	return total
}

// jsonLines parses every line of the files in dir as a JSON object and
// returns them with the file each came from.
func jsonLines(t *testing.T, dir string) map[string][]map[string]any {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]any{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(bytes.NewReader(data))
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(s.Bytes(), &rec); err != nil {
				t.Fatalf("%s holds a line that is not JSON: %.200q", e.Name(), s.Text())
			}
			out[e.Name()] = append(out[e.Name()], rec)
		}
	}
	return out
}

// TestLogCap runs `byoda pod` at DEBUG with a cap of 1 MB on its logs,
// makes it log several times that through refused requests, and checks
// that the log directory never takes more than the cap while the newest
// records are kept, whole, as JSON lines.
func TestLogCap(t *testing.T) {
	n := startTestNet(t)
	env := livePodEnv(t, n, map[string]string{"LOGLEVEL": "DEBUG", "LOG_MAX_TOTAL": "1"})
	lp := startLivePod(t, n, env)
	const maxTotal = 1 << 20
	logDir := env["LOGDIR"]

	// A request for a service the pod is not a member of is refused and
	// logged at DEBUG with its path: a long path makes a long record.
	c := lp.client("", nil)
	padding := strings.Repeat("p", 1500)
	const requests = 3000
	var last string
	for i := range requests {
		last = fmt.Sprintf("marker-%05d-", i)
		status, body := lp.doWith(c, "POST", lp.httpsURL("/api/v1/data/7/"+last+padding+
			"/query"), map[string]any{}, "")
		if status != 404 {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
		if i%250 == 0 {
			if size := logDirSize(t, logDir); size > maxTotal {
				t.Fatalf("after %d requests LOGDIR takes %d bytes, more than %d", i+1, size,
					maxTotal)
			}
		}
	}

	size := logDirSize(t, logDir)
	if size > maxTotal {
		t.Fatalf("LOGDIR takes %d bytes, more than %d", size, maxTotal)
	}
	// Well over the cap was logged; the files are close to full.
	if size < maxTotal/2 {
		t.Fatalf("LOGDIR takes only %d bytes after %d records of 1.5 kB", size, requests)
	}

	files := jsonLines(t, logDir)
	if len(files) != logfile.DefaultOlder+1 {
		t.Errorf("LOGDIR holds %d files, want pod.log and %d older ones", len(files),
			logfile.DefaultOlder)
	}
	current := files["pod.log"]
	if len(current) == 0 {
		t.Fatal("pod.log is empty")
	}
	newest := current[len(current)-1]
	if path, _ := newest["path"].(string); !strings.Contains(path, last) ||
		newest["level"] != "DEBUG" || newest["msg"] != "request refused" {
		t.Fatalf("the newest record of pod.log is %v, want the last request (%s)", newest,
			last)
	}
	// The oldest records were rotated away.
	if _, ok := containsAny(fmt.Sprint(files), "marker-00000-"); ok {
		t.Error("the first request's record is still kept")
	}
	for _, rec := range current {
		for _, key := range []string{"time", "level", "msg"} {
			if _, ok := rec[key]; !ok {
				t.Fatalf("a record lacks %q: %v", key, rec)
			}
		}
	}
}

// TestLogNoSecrets runs a session of logins, joins and Data API calls
// against `byoda pod` at DEBUG and checks that no secret reached its log.
func TestLogNoSecrets(t *testing.T) {
	n := startTestNet(t)
	env := livePodEnv(t, n, map[string]string{"LOGLEVEL": "DEBUG"})
	lp := startLivePod(t, n, env)

	var tokens []string
	account := lp.login(0)
	member := lp.login(notesSID)
	tokens = append(tokens, account, member)

	// A wrong password, twice; a join over the REST API; data calls.
	for range 2 {
		status, _ := lp.do("POST", lp.httpsURL("/api/v1/pod/authtoken"), "",
			map[string]any{"username": env["ACCOUNT_ID"][:8], "password": "wrong " +
				env["ACCOUNT_SECRET"], "target_type": "accounts"}, "")
		if status != 401 && status != 403 {
			t.Fatalf("a wrong password got %d", status)
		}
	}
	status, body := lp.do("POST", lp.httpsURL(fmt.Sprintf(
		"/api/v1/pod/member/service_id/%d/version/1", notesSID2)), "", nil, account)
	if status != 200 && status != 201 {
		t.Fatalf("join: %d %s", status, body)
	}
	member2 := lp.login(notesSID2)
	tokens = append(tokens, member2)

	for _, sid := range []uint32{notesSID, notesSID2} {
		tok := member
		if sid == notesSID2 {
			tok = member2
		}
		c := lp.client(lp.memberName(sid), nil)
		for i := range 5 {
			if !lp.appendNote(c, sid, tok, fmt.Sprintf("note %d", i)) {
				t.Fatal("append refused")
			}
		}
		if got := lp.noteTitles(sid, tok); len(got) != 5 {
			t.Fatalf("%d notes, want 5", len(got))
		}
		// Refused calls, logged at DEBUG: a bad token, a bad filter.
		lp.doWith(c, "POST", lp.dataURL(sid, "notes", "query"), map[string]any{}, tok+"x")
		lp.doWith(c, "POST", lp.dataURL(sid, "notes", "query"),
			map[string]any{"filter": map[string]any{"nope": 1}}, tok)
	}
	lp.stop()

	keyFile, err := os.ReadFile(lp.paths().AccountKey())
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(keyFile), "\n")[1] // a line of the key's base64
	podLog, err := os.ReadFile(filepath.Join(env["LOGDIR"], "pod.log"))
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"pod.log": string(podLog),
		"stderr": lp.stderr.String()} {
		if !strings.Contains(text, `"level":"DEBUG"`) {
			t.Fatalf("%s has no DEBUG records: the session logged nothing to check", where)
		}
		needles := append([]string{env["PRIVATE_KEY_SECRET"], env["ACCOUNT_SECRET"],
			"PRIVATE KEY", keyBody}, tokens...)
		if found, ok := containsAny(text, needles...); ok {
			t.Errorf("%s holds a secret (%.8q...)", where, found)
		}
	}
}

func TestReplaceLogAttr(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(jsonLogHandler(&buf, slog.LevelDebug))
	long := strings.Repeat("é", maxLogValue)
	logger.Warn("w", "s", long, "err", fmt.Errorf("wrapped: %s", long), "n", 3)

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %s", buf.String())
	}
	if rec["level"] != "WARNING" {
		t.Errorf("level %v, want WARNING", rec["level"])
	}
	for _, key := range []string{"s", "err"} {
		s, _ := rec[key].(string)
		if len(s) > maxLogValue+100 || !strings.Contains(s, "bytes cut]") {
			t.Errorf("%s of %d bytes is not cut: %.60q", key, len(s), s)
		}
	}
	if rec["n"] != float64(3) {
		t.Errorf("n = %v", rec["n"])
	}
}

func TestShortenLogRecord(t *testing.T) {
	record := []byte(`{"time":"t","level":"INFO","msg":"` + strings.Repeat("\"x", 5000) +
		"\"}\n")
	for _, limit := range []int{150, 400, 4000} {
		out := shortenLogRecord(record, limit)
		var rec map[string]any
		if len(out) > limit || json.Unmarshal(out, &rec) != nil ||
			rec["bytes"] != float64(len(record)) || !bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("limit %d: %q", limit, out)
		}
	}
	if out := shortenLogRecord(record, 20); out != nil {
		t.Fatalf("a record shortened to 20 bytes: %q", out)
	}
}

func TestLogMaxTotal(t *testing.T) {
	for _, v := range []string{"0", "-1", "x", "1.5", "2000000"} {
		_, err := logMaxTotal(fakeEnv(map[string]string{"LOG_MAX_TOTAL": v}))
		if err == nil || !strings.Contains(err.Error(), "LOG_MAX_TOTAL") {
			t.Errorf("LOG_MAX_TOTAL=%s: %v", v, err)
		}
		_, err = readPodEnv(fakeEnv(map[string]string{"LOG_MAX_TOTAL": v,
			"PRIVATE_KEY_SECRET": "x"}))
		if err == nil || !strings.Contains(err.Error(), "LOG_MAX_TOTAL") {
			t.Errorf("readPodEnv with LOG_MAX_TOTAL=%s: %v", v, err)
		}
	}
	if got, err := logMaxTotal(fakeEnv(map[string]string{"LOG_MAX_TOTAL": "3"})); err != nil ||
		got != 3<<20 {
		t.Fatalf("LOG_MAX_TOTAL=3: %d, %v", got, err)
	}
	if got, err := logMaxTotal(fakeEnv(nil)); err != nil || got != logfile.DefaultMaxTotal {
		t.Fatalf("default: %d, %v", got, err)
	}
}
