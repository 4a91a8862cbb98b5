package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// appenderEnv names the database file that TestHelperAppender appends to.
const appenderEnv = "BYODA_STORE_TEST_APPENDER_DB"

// killAfter is how many acknowledged appends TestDurability waits for
// before it kills the appender.
const killAfter = 100

// TestHelperAppender is the appender process of TestDurability; run
// directly, it does nothing. It appends assets and prints each cursor once
// Append has returned, until it is killed.
func TestHelperAppender(t *testing.T) {
	path := os.Getenv(appenderEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, path, addressBook(t), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opening:", err)
		os.Exit(2)
	}
	for i := range 1_000_000 {
		e, err := s.Append(ctx, "network_assets", asset(i, time.Now()), owner)
		if err != nil {
			fmt.Fprintln(os.Stderr, "appending:", err)
			os.Exit(2)
		}
		fmt.Println("appended", e.Cursor)
	}
}

// TestDurability kills a process that is appending with SIGKILL and checks
// that every append it acknowledged is in the file, and that the file is
// sound.
func TestDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	addressBook(t) // skips the test here rather than in the child

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), appenderEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Lines still in the pipe after the kill are appends that returned too.
	var acked []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		cursor, ok := strings.CutPrefix(lines.Text(), "appended ")
		if !ok {
			continue
		}
		acked = append(acked, cursor)
		if len(acked) == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("the appender stopped after %d appends: %v\n%s", len(acked), err, stderr.Bytes())
	}
	t.Logf("the appender acknowledged %d appends before it died: %v", len(acked), err)

	s, err := Open(context.Background(), path, addressBook(t), nil)
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer s.Close()

	var check string
	if err := s.w.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
	stored := map[string]bool{}
	after := ""
	for range len(acked)/MaxPageSize + 2 {
		p, err := s.Query(context.Background(), "network_assets",
			QueryOptions{First: MaxPageSize, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Edges {
			stored[e.Cursor] = true
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor
	}
	for i, c := range acked {
		if !stored[c] {
			t.Errorf("acknowledged append %d, cursor %s, is lost", i, c)
		}
	}
}
