package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

// Services of the networks that livePods join.
const (
	notesSID  = 4294967101
	notesSID2 = 4294967102
)

// startTestNet runs a network with two notes services.
func startTestNet(t *testing.T) *testnet.Net {
	t.Helper()
	notes := filepath.Join("..", "..", "internal", "service", "testdata", "notes.json")
	return testnet.Start(t, []string{notes, notes}, []uint32{notesSID, notesSID2})
}

var livePodAddr struct {
	sync.Mutex
	next byte
}

// livePodEnv returns the environment of a pod in n on a loopback address of
// its own, which joins the first notes service at start; vars are added.
func livePodEnv(t *testing.T, n *testnet.Net, vars map[string]string) map[string]string {
	t.Helper()
	livePodAddr.Lock()
	livePodAddr.next++
	addr := netip.AddrFrom4([4]byte{127, 0, 4, livePodAddr.next}).String()
	livePodAddr.Unlock()

	env := map[string]string{
		"NETWORK":            testnet.Network,
		"ACCOUNT_ID":         uuid.NewString(),
		"ACCOUNT_SECRET":     testAccountSecret,
		"PRIVATE_KEY_SECRET": testKeySecret,
		"ROOT_DIR":           filepath.Join(t.TempDir(), "root"),
		"LOGDIR":             filepath.Join(t.TempDir(), "logs"),
		"LOGLEVEL":           "INFO",
		"BIND_ADDRESS":       addr,
		"HTTPS_PORT":         strconv.Itoa(testnet.FreePort(t, addr)),
		"POD_PORT":           strconv.Itoa(testnet.FreePort(t, addr)),
		"SERVICE_PORT":       strconv.Itoa(n.ServicePort),
		"DIRECTORY_URL":      n.DirectoryURL,
		"DNS_SERVER":         n.DNS.String(),
		"NETWORK_ROOT_CA":    n.RootFile,
		"JOIN_SERVICE_IDS":   strconv.Itoa(notesSID),
	}
	maps.Copy(env, vars)
	return env
}

// livePod is `byoda pod` run in this process by podRunner.
type livePod struct {
	t      *testing.T
	net    *testnet.Net
	env    map[string]string
	stderr *lockedBuffer
	stop   func()
}

// startLivePod runs the pod of env until the test ends or stop is called,
// and returns once it has registered and joined.
func startLivePod(t *testing.T, n *testnet.Net, env map[string]string) *livePod {
	t.Helper()
	lp := &livePod{t: t, net: n, env: env, stderr: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	r := podRunner{stderr: lp.stderr, ready: func(_, _ net.Addr) { close(ready) }}
	go func() { done <- r.run(ctx, nil, fakeEnv(env)) }()

	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("byoda pod exited: %v\n%s", err, lp.stderr.tail())
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("byoda pod did not start within two minutes:\n%s", lp.stderr.tail())
	}
	var once sync.Once
	lp.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("byoda pod stopped with %v", err)
			}
		})
	}
	t.Cleanup(lp.stop)

	for range 600 {
		if status, _ := lp.do("GET", lp.httpsURL("/readyz"), "", nil, ""); status == 200 {
			return lp
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("byoda pod not ready within a minute:\n%s", lp.stderr.tail())
	return nil
}

// tail is the end of what the buffer holds, for test failures.
func (b *lockedBuffer) tail() string {
	s := b.String()
	return s[max(0, len(s)-8000):]
}

func (lp *livePod) paths() pki.Paths {
	return pki.Paths{Root: lp.env["ROOT_DIR"], Network: testnet.Network}
}

func (lp *livePod) accountName() string {
	return pki.AccountName(testnet.Network, lp.env["ACCOUNT_ID"]).String()
}

// memberName is the DNS name of the pod's membership of sid, read from its
// certificate.
func (lp *livePod) memberName(sid uint32) string {
	lp.t.Helper()
	certs, err := pki.LoadCerts(lp.paths().MemberCert(sid))
	if err != nil {
		lp.t.Fatal(err)
	}
	return certs[0].Subject.CommonName
}

func (lp *livePod) httpsURL(path string) string {
	return "https://" + net.JoinHostPort(lp.env["BIND_ADDRESS"], lp.env["HTTPS_PORT"]) + path
}

func (lp *livePod) podURL(path string) string {
	return "https://" + net.JoinHostPort(lp.env["BIND_ADDRESS"], lp.env["POD_PORT"]) + path
}

func (lp *livePod) dataURL(sid uint32, class, action string) string {
	return lp.httpsURL(fmt.Sprintf("/api/v1/data/%d/%s/%s", sid, class, action))
}

// client returns an HTTPS client that trusts the network's root, asks for
// serverName (the account's name when empty) and presents cert when set.
func (lp *livePod) client(serverName string, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(lp.net.Root)
	if serverName == "" {
		serverName = lp.accountName()
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}
}

// do sends a request with a JSON body, when set, and a bearer token, when
// set, to the name serverName; it returns the status, -1 when no answer
// came, and the body.
func (lp *livePod) do(method, url, serverName string, body any, token string) (int, []byte) {
	return lp.doWith(lp.client(serverName, nil), method, url, body, token)
}

func (lp *livePod) doWith(c *http.Client, method, url string, body any, token string) (
	int, []byte) {
	lp.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			lp.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		lp.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// login returns a token for the account, or for its membership of sid when
// sid is not 0.
func (lp *livePod) login(sid uint32) string {
	lp.t.Helper()
	body := map[string]any{"username": lp.env["ACCOUNT_ID"][:8],
		"password": lp.env["ACCOUNT_SECRET"]}
	if sid == 0 {
		body["target_type"] = "accounts"
	} else {
		body["service_id"] = sid
	}
	status, data := lp.do("POST", lp.httpsURL("/api/v1/pod/authtoken"), "", body, "")
	if status != 200 {
		lp.t.Fatalf("login: %d %s", status, data)
	}
	var out struct {
		AuthToken string `json:"auth_token"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.AuthToken == "" {
		lp.t.Fatalf("login answered %s", data)
	}
	return out.AuthToken
}

// note is a record of the notes class.
func note(title string) map[string]any {
	return map[string]any{"note_id": uuid.NewString(),
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano), "title": title}
}

// appendNote appends a note with title to the membership of sid; it
// reports whether the pod acknowledged it.
func (lp *livePod) appendNote(c *http.Client, sid uint32, token, title string) bool {
	status, _ := lp.doWith(c, "POST", lp.dataURL(sid, "notes", "append"),
		map[string]any{"data": note(title)}, token)
	return status == 200
}

// noteTitles returns the titles of every note of the membership of sid.
func (lp *livePod) noteTitles(sid uint32, token string) []string {
	lp.t.Helper()
	c := lp.client(lp.memberName(sid), nil)
	var titles []string
	after := ""
	for range 1000 {
		body := map[string]any{"first": 200}
		if after != "" {
			body["after"] = after
		}
		status, data := lp.doWith(c, "POST", lp.dataURL(sid, "notes", "query"), body, token)
		if status != 200 {
			lp.t.Fatalf("query: %d %s", status, data)
		}
		var page struct {
			Edges []struct {
				Cursor string         `json:"cursor"`
				Node   map[string]any `json:"node"`
			} `json:"edges"`
			PageInfo struct {
				HasNextPage bool   `json:"has_next_page"`
				EndCursor   string `json:"end_cursor"`
			} `json:"page_info"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			lp.t.Fatalf("query answered %s", data)
		}
		for _, e := range page.Edges {
			title, _ := e.Node["title"].(string)
			titles = append(titles, title)
		}
		if !page.PageInfo.HasNextPage || len(page.Edges) == 0 {
			return titles
		}
		after = page.Edges[len(page.Edges)-1].Cursor
	}
	lp.t.Fatal("more than 1000 pages of notes")
	return nil
}

// missing returns the first of want that titles lacks.
func missing(titles, want []string) (string, bool) {
	have := map[string]bool{}
	for _, t := range titles {
		have[t] = true
	}
	for _, w := range want {
		if !have[w] {
			return w, true
		}
	}
	return "", false
}

// containsAny returns the first of needles in text.
func containsAny(text string, needles ...string) (string, bool) {
	for _, n := range needles {
		if n != "" && strings.Contains(text, n) {
			return n, true
		}
	}
	return "", false
}
