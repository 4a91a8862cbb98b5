package devnet

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

// runDevnet runs a devnet until the returned stop is called, and returns
// its description once it is ready.
func runDevnet(t *testing.T, cfg Config) (*Info, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Info, 1)
	done := make(chan error, 1)
	cfg.Ready = func(i *Info) { ready <- i }
	var out bytes.Buffer
	cfg.Out = &out

	go func() { done <- Run(ctx, cfg) }()
	select {
	case info := <-ready:
		return info, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("devnet stopped with %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("devnet failed: %v\n%s", err, out.String())
	case <-time.After(4 * time.Minute):
		cancel()
		<-done
		t.Fatalf("devnet not ready in 4 minutes:\n%s", out.String())
	}
	return nil, nil
}

func TestDevnetStartStopRestart(t *testing.T) {
	bin := testnet.BuildByoda(t)
	doc, err := os.ReadFile(filepath.Join("..", "service", "testdata", "notes.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: t.TempDir(), Pods: 2, Contracts: [][]byte{doc}, Binary: bin}

	info, stop := runDevnet(t, cfg)
	if len(info.Pods) != 2 || len(info.Services) != 1 || info.Network != Network {
		t.Fatalf("devnet.json: %+v", info)
	}
	var onDisk Info
	data, err := os.ReadFile(filepath.Join(cfg.Dir, "devnet.json"))
	if err != nil || json.Unmarshal(data, &onDisk) != nil || len(onDisk.Pods) != 2 {
		t.Fatalf("devnet.json on disk: %v", err)
	}

	// Every pod answers on its pod port to its account certificate, the
	// way the printed curl command does it.
	for _, p := range info.Pods {
		if p.Address == info.Pods[0].Address && p.AccountID != info.Pods[0].AccountID {
			t.Fatal("two pods share an address")
		}
		if len(p.Members) != 1 {
			t.Fatalf("pod %s has %d memberships", p.AccountID, len(p.Members))
		}
		c := podClient(t, info, p.AccountCert, p.AccountKey,
			pki.AccountName(info.Network, p.AccountID).String())
		resp, err := c.Get(p.PodURL + "/api/v1/pod/account")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("pod account: status %d", resp.StatusCode)
		}
	}

	pids := pidsOf(t, cfg.Dir)
	stop()
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d still runs after the devnet stopped", pid)
		}
	}

	// A restart brings back the same pods and memberships.
	again, stop := runDevnet(t, cfg)
	defer stop()
	for i, p := range again.Pods {
		if p.AccountID != info.Pods[i].AccountID ||
			p.Members[0].MemberID != info.Pods[i].Members[0].MemberID {
			t.Fatalf("pod %d changed identity across a restart", i+1)
		}
	}
}

// pidsOf finds the processes running the devnet's binary with dir in their
// arguments or environment.
func pidsOf(t *testing.T, dir string) []int {
	t.Helper()
	pids := processes(func(env, cmdline string) bool {
		return strings.Contains(env+cmdline, dir)
	})
	if len(pids) < 4 {
		t.Fatalf("found %d devnet processes, want at least 4", len(pids))
	}
	return pids
}

// processes returns the ids of the processes whose environment and command
// line, as /proc has them, satisfy match.
func processes(match func(env, cmdline string) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if match(string(env), string(cmdline)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func podClient(t *testing.T, info *Info, certPath, keyPath, serverName string) *http.Client {
	t.Helper()
	cfg, err := info.TLSConfig(certPath, keyPath, serverName)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}
}
