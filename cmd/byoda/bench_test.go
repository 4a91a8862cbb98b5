package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/testnet"
)

// BenchmarkPodProcess runs the `byoda pod` binary against a network in this
// process, with one membership whose keys already exist, and reports the
// cold start (exec to /readyz answering 200) and the resident memory of the
// idle pod.
//
//	go test ./cmd/byoda -run '^$' -bench PodProcess -benchtime 5x
func BenchmarkPodProcess(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "byoda")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("building byoda: %v\n%s", err, out)
	}

	n := testnet.Start(b, []string{filepath.Join("..", "..", "internal", "service",
		"testdata", "notes.json")}, nil)
	var sid uint32
	for id := range n.Services {
		sid = id
	}
	env := []string{
		"NETWORK=" + testnet.Network,
		"ACCOUNT_ID=" + uuid.NewString(),
		"ACCOUNT_SECRET=benchmark",
		"PRIVATE_KEY_SECRET=benchmark key secret",
		"ROOT_DIR=" + b.TempDir(),
		"LOGDIR=" + b.TempDir(),
		"LOGLEVEL=WARNING",
		"HTTPS_PORT=" + strconv.Itoa(testnet.FreePort(b, "127.0.3.1")),
		"POD_PORT=" + strconv.Itoa(testnet.FreePort(b, "127.0.3.1")),
		"SERVICE_PORT=" + strconv.Itoa(n.ServicePort),
		"BIND_ADDRESS=127.0.3.1",
		"DIRECTORY_URL=" + n.DirectoryURL,
		"DNS_SERVER=" + n.DNS.String(),
		"NETWORK_ROOT_CA=" + n.RootFile,
		fmt.Sprintf("JOIN_SERVICE_IDS=%d", sid),
	}
	client := readyClient(n, env)

	// The first start makes the keys and joins; it is not measured.
	stop := startPodProcess(b, bin, env, client)
	stop()

	var start time.Duration
	var rssKB int
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		cmd, stop := startPodProcessCmd(b, bin, env, client)
		start += time.Since(t0)

		time.Sleep(2 * time.Second)
		rssKB += residentKB(b, cmd.Process.Pid)
		stop()
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(b.N), "ms/start")
	b.ReportMetric(float64(rssKB)/1024/float64(b.N), "MB-rss")
}

// readyProbe asks a pod's /readyz.
type readyProbe struct {
	http *http.Client
	url  string
}

func readyClient(n *testnet.Net, env []string) (c readyProbe) {
	pool := x509.NewCertPool()
	pool.AddCert(n.Root)
	var host, port, account string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ACCOUNT_ID="); ok {
			account = v
		}
		if v, ok := strings.CutPrefix(kv, "BIND_ADDRESS="); ok {
			host = v
		}
		if v, ok := strings.CutPrefix(kv, "HTTPS_PORT="); ok {
			port = v
		}
	}
	c.http = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool,
			ServerName: account + ".accounts." + testnet.Network},
		DisableKeepAlives: true}}
	c.url = "https://" + host + ":" + port + "/readyz"
	return c
}

func startPodProcess(b *testing.B, bin string, env []string, c readyProbe) func() {
	_, stop := startPodProcessCmd(b, bin, env, c)
	return stop
}

// startPodProcessCmd starts the pod and returns once /readyz answers 200.
func startPodProcessCmd(b *testing.B, bin string, env []string, c readyProbe) (*exec.Cmd, func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "pod")
	cmd.Env = env
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		cancel()
		cmd.Wait()
	}

	for i := 0; i < 1200; i++ {
		resp, err := c.http.Get(c.url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, stop
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	b.Fatal("the pod did not become ready")
	return nil, nil
}

// residentKB reads VmRSS of a process from /proc.
func residentKB(b *testing.B, pid int) int {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(
				strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
