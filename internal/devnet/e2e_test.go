package devnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contracts"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

// cli runs `byoda data` against the devnet.
type cli struct {
	t   *testing.T
	bin string
	dir string
}

func (c cli) run(pod int, args ...string) (string, error) {
	c.t.Helper()
	full := append([]string{"data"}, args...)
	full = append(full, "--devnet", c.dir, "--pod", strconv.Itoa(pod))
	out, err := exec.Command(c.bin, full...).CombinedOutput()
	return string(out), err
}

func (c cli) must(pod int, args ...string) string {
	c.t.Helper()
	out, err := c.run(pod, args...)
	if err != nil {
		c.t.Fatalf("byoda data %v on pod %d: %v\n%s", args, pod, err, out)
	}
	return out
}

type edges struct {
	Edges []struct {
		Origin string         `json:"origin"`
		Node   map[string]any `json:"node"`
	} `json:"edges"`
	Unanswered []string `json:"unanswered_peers"`
}

func (c cli) query(pod int, args ...string) edges {
	c.t.Helper()
	var e edges
	out := c.must(pod, append([]string{"query"}, args...)...)
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		c.t.Fatalf("query output %q: %v", out, err)
	}
	return e
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// TestEndToEnd runs a devnet with three pods and the address book, and
// uses it through `byoda data` as a person would.
func TestEndToEnd(t *testing.T) {
	bin := testnet.BuildByoda(t)
	cfg := Config{Dir: t.TempDir(), Pods: 3, Contracts: [][]byte{contracts.AddressBook()},
		Binary: bin}
	info, stop := runDevnet(t, cfg)
	defer stop()
	c := cli{t: t, bin: bin, dir: cfg.Dir}
	member := func(pod int) string { return info.Pods[pod-1].Members[0].MemberID }
	const a, b, cPod = 1, 2, 3

	// Each pod stores and reads its person.
	for pod := 1; pod <= 3; pod++ {
		name := fmt.Sprintf("Person%d", pod)
		c.must(pod, "mutate", "person", "--set", "given_name="+name,
			"--set", "family_name=Tester", "--set", "email=p"+strconv.Itoa(pod)+"@example.test")
		got := c.query(pod, "person")
		if len(got.Edges) != 1 || got.Edges[0].Node["given_name"] != name {
			t.Fatalf("pod %d person: %+v", pod, got)
		}
	}

	// An updates subscription on A sees what is appended to A meanwhile.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := exec.CommandContext(ctx, bin, "data", "updates", "network_links", "--devnet",
		cfg.Dir, "--pod", "1")
	subOut, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Wait()
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(subOut)
		if s.Scan() {
			line <- s.Text()
		}
	}()

	// A follows B, and B counts A as a friend. The subscription may still be
	// starting, so A's link is appended again until it shows, a few times
	// at most.
	c.must(b, "append", "network_links", "--set", "member_id="+member(a),
		"--set", "relation=friend", "--set", "created_timestamp="+now())
	var got string
	for attempt := 0; attempt < 10 && got == ""; attempt++ {
		c.must(a, "append", "network_links", "--set", "member_id="+member(b),
			"--set", "relation=friend", "--set", "created_timestamp="+now())
		select {
		case got = <-line:
		case <-time.After(3 * time.Second):
		}
	}
	if !strings.Contains(got, member(b)) {
		t.Fatalf("the updates subscription on A received %q", got)
	}
	cancel()

	// C invites A by remote append: A sees it, B does not.
	c.must(cPod, "append", "network_invites", "--set", "member_id="+member(cPod),
		"--set", "relation=friend", "--set", "created_timestamp="+now(), "--depth", "1",
		"--remote-member-id", member(a))
	if got := c.query(a, "network_invites"); len(got.Edges) != 1 ||
		got.Edges[0].Node["member_id"] != member(cPod) {
		t.Fatalf("A's invites: %+v", got)
	}
	if got := c.query(b, "network_invites"); len(got.Edges) != 0 {
		t.Fatalf("B's invites: %+v", got)
	}

	// B adds an asset; A's depth-1 query finds it with B as origin, C's
	// does not.
	c.must(b, "append", "network_assets", "--set", "asset_id="+uuid.NewString(),
		"--set", "asset_type=note", "--set", "created_timestamp="+now(),
		"--set", "title=B's asset")
	assetsOf := func(pod int) int {
		n := 0
		for _, e := range c.query(pod, "network_assets", "--depth", "1").Edges {
			if e.Origin == member(b) && e.Node["title"] == "B's asset" {
				n++
			}
		}
		return n
	}
	if assetsOf(a) != 1 {
		t.Fatal("A's depth-1 query did not return B's asset")
	}
	if assetsOf(cPod) != 0 {
		t.Fatal("C, not linked, got B's asset")
	}

	// kill -9 of B: the devnet brings it back with the same identity and
	// data, registered again, and A reaches it.
	pid := podPID(t, info.Pods[b-1].RootDir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool {
		p := podPID(t, info.Pods[b-1].RootDir)
		return p != 0 && p != pid && readyz(t, info, b-1) == nil
	})
	if got := c.query(b, "person"); len(got.Edges) != 1 ||
		got.Edges[0].Node["given_name"] != "Person2" {
		t.Fatalf("B's person after a restart: %+v", got)
	}
	if assetsOf(a) != 1 {
		t.Fatal("A's depth-1 query did not reach B after its restart")
	}
}

// podPID returns the process id of the pod with root dir root, or 0.
func podPID(t *testing.T, root string) int {
	t.Helper()
	pids := processes(func(env, cmdline string) bool {
		return strings.Contains(env, "ROOT_DIR="+root+"\x00") &&
			strings.HasSuffix(cmdline, "pod\x00")
	})
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

func readyz(t *testing.T, info *Info, i int) error {
	p := info.Pods[i]
	c := podClient(t, info, p.AccountCert, p.AccountKey,
		pki.AccountName(info.Network, p.AccountID).String())
	resp, err := c.Get(p.HTTPSURL + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s", limit)
}
