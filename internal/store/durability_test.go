package store

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// appenderEnv names the database file that TestHelperAppender appends to,
// and appendersEnv how many goroutines append, 1 when unset.
const (
	appenderEnv  = "BYODA_STORE_TEST_APPENDER_DB"
	appendersEnv = "BYODA_STORE_TEST_APPENDERS"
)

// killAfter is how many acknowledged appends TestDurability waits for
// before it kills the appender.
const killAfter = 100

// TestHelperAppender is the appender process of TestDurability; run
// directly, it does nothing. It appends assets, from as many goroutines as
// appendersEnv says, and prints each cursor once Append has returned, until
// it is killed.
func TestHelperAppender(t *testing.T) {
	path := os.Getenv(appenderEnv)
	if path == "" {
		return
	}
	appenders, err := strconv.Atoi(cmp.Or(os.Getenv(appendersEnv), "1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading appenders:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	s, err := Open(ctx, path, addressBook(t), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opening:", err)
		os.Exit(2)
	}

	var stdout sync.Mutex
	for range appenders - 1 {
		go appendForever(ctx, s, &stdout)
	}
	appendForever(ctx, s, &stdout)
}

// appendForever appends assets to s, printing each cursor, until the
// process is killed; it ends the process if an append fails.
func appendForever(ctx context.Context, s *Store, stdout *sync.Mutex) {
	for i := range 1_000_000 {
		e, err := s.Append(ctx, "network_assets", asset(i, time.Now()), owner)
		if err != nil {
			fmt.Fprintln(os.Stderr, "appending:", err)
			os.Exit(2)
		}
		stdout.Lock()
		fmt.Println("appended", e.Cursor)
		stdout.Unlock()
	}
}

// TestDurability kills a process that is appending with SIGKILL and checks
// that every append it acknowledged is in the file, and that the file is
// sound: with one appender, whose appends commit one by one, and with
// eight, whose appends share commits.
func TestDurability(t *testing.T) {
	for _, appenders := range []int{1, 8} {
		t.Run(fmt.Sprintf("appenders=%d", appenders), func(t *testing.T) {
			testDurability(t, appenders)
		})
	}
}

func testDurability(t *testing.T, appenders int) {
	path := filepath.Join(t.TempDir(), "data.db")
	addressBook(t) // skips the test here rather than in the child

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), appenderEnv+"="+path,
		fmt.Sprintf("%s=%d", appendersEnv, appenders))
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
