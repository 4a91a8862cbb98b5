package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/byoda/byoda-go/internal/contracts"
	"github.com/byoda/byoda-go/internal/devnet"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
	"github.com/byoda/byoda-go/internal/web"
)

// The services of the test's devnet: the address book, which the pods join
// at start, and the notes service of the service tests, which they do not.
const (
	addressBookSID = 4294929430
	notesSID       = 4294967001
)

// chromium returns the path of Debian's chromium. Without it the test
// skips, or fails under CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; the browser test needs Debian's chromium package")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// startDevnet runs a devnet until the test ends and returns its
// description once it is ready.
func startDevnet(t *testing.T, cfg devnet.Config) *devnet.Info {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *devnet.Info, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	cfg.Ready = func(i *devnet.Info) { ready <- i }
	cfg.Out = &out

	go func() { done <- devnet.Run(ctx, cfg) }()
	select {
	case info := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("devnet stopped with %v", err)
			}
		})
		return info
	case err := <-done:
		cancel()
		t.Fatalf("devnet failed: %v\n%s", err, out.String())
	case <-time.After(4 * time.Minute):
		cancel()
		<-done
		t.Fatalf("devnet not ready in 4 minutes:\n%s", out.String())
	}
	return nil
}

// page is the browser tab the test drives.
type page struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string

	mu       sync.Mutex
	problems []string // exceptions and policy violations the page logged
}

// newPage starts chromium for pod: the account's name resolves to the
// pod's loopback address and nothing else resolves, and only the pod's own
// key is trusted despite its private CA.
func newPage(t *testing.T, exe string, info *devnet.Info, pod devnet.PodInfo) *page {
	t.Helper()
	host := pki.AccountName(info.Network, pod.AccountID).String()
	port := pod.HTTPSURL[strings.LastIndex(pod.HTTPSURL, ":")+1:]
	certs, err := pki.LoadCerts(pod.AccountCert)
	if err != nil {
		t.Fatal(err)
	}
	return startChromium(t, exe, "https://"+host+":"+port, certs[0],
		fmt.Sprintf("MAP %s %s, MAP * ~NOTFOUND", host, pod.Address))
}

// startChromium starts a headless chromium that trusts the key of cert
// despite its unknown CA and resolves names by rules, and returns a page
// for the site at base.
func startChromium(t *testing.T, exe, base string, cert *x509.Certificate,
	rules string) *page {
	t.Helper()
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("host-resolver-rules", rules),
		chromedp.Flag("ignore-certificate-errors-spki-list",
			base64.StdEncoding.EncodeToString(sum[:])),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})

	p := &page{t: t, ctx: ctx, base: base, shots: screenshotDir(t)}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") ||
				strings.Contains(m.Text, "Trusted Type") {
				p.mu.Lock()
				p.problems = append(p.problems, m.String())
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// takeProblems returns the problems the page logged so far and forgets
// them.
func (p *page) takeProblems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}

// screenshotDir is where screenshots go: BYODA_SCREENSHOTS, relative to the
// repository's root, or nowhere when it is unset.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("BYODA_SCREENSHOTS")
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// do runs actions, failing the test with a screenshot of the page when one
// fails.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%v", err)
	}
}

// fail ends the test, keeping a screenshot and the text of the page.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		file := filepath.Join(p.t.TempDir(), "failure.png")
		if os.WriteFile(file, png, 0o644) == nil {
			msg += "\nscreenshot: " + file
		}
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		"document.body.innerText")); err == nil {
		msg += "\npage text:\n" + text
	}
	p.t.Fatal(msg)
}

// eval evaluates a JavaScript expression, awaiting a promise, into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds, for at most 30
// seconds. Polling from the test rather than in the page keeps the page's
// content security policy, which forbids eval, in force.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if eval[bool](p, "Boolean("+cond+")") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.fail("waiting for %s: %s never held", what, cond)
}

// text returns the visible text of the first element sel matches.
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf("document.querySelector(%s)?.innerText ?? ''", js(sel)))
}

// waitText waits until the element sel matches shows want.
func (p *page) waitText(sel, want string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%q in %s", want, sel), fmt.Sprintf(
		"(document.querySelector(%s)?.innerText ?? '').includes(%s)", js(sel), js(want)))
}

// rows counts the body rows of the table sel.
func (p *page) rows(sel string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf("document.querySelectorAll(%s).length",
		js(sel+" tbody tr")))
}

// open opens a view of the page by its address.
func (p *page) open(hash string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf("window.location.hash = %s", js(hash))))
}

// fill types text into the input sel, after clearing it.
func (p *page) fill(sel, text string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%s).value = ''",
		js(sel))), chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// choose selects value in the select sel, as a person would.
func (p *page) choose(sel, value string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const s = document.querySelector(%s);
		s.value = %s;
		s.dispatchEvent(new Event('change', { bubbles: true }));
	})()`, js(sel), js(value))))
}

// shot keeps a screenshot of the whole page as name.png, when asked to.
func (p *page) shot(name string) {
	p.t.Helper()
	if p.shots == "" {
		return
	}
	// Let fonts and layout settle, and keep the caret out of the picture.
	p.do(chromedp.Evaluate[chromedp.Void]("document.activeElement?.blur()"),
		chromedp.Sleep(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.fail("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// labelled checks that every control on the page has a label.
func (p *page) labelled(where string) {
	p.t.Helper()
	missing := eval[[]string](p, `[...document.querySelectorAll('input, select, textarea')]
		.filter((e) => e.type !== 'hidden' && (!e.labels || e.labels.length === 0) &&
			!e.getAttribute('aria-label'))
		.map((e) => e.name || e.id || e.outerHTML)`)
	if len(missing) > 0 {
		p.fail("%s: controls without a label: %v", where, missing)
	}
}

// fitsWidth checks that the page does not scroll sideways.
func (p *page) fitsWidth(where string) {
	p.t.Helper()
	if !eval[bool](p, "document.documentElement.scrollWidth <= window.innerWidth") {
		wide := eval[[]string](p, `[...document.querySelectorAll('body *')]
			.filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
			.slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' +
				Math.round(e.getBoundingClientRect().right))`)
		p.fail("%s is wider than the window: %v", where, wide)
	}
}

// sessionStatus asks the pod, from the page, whether it is signed in.
func (p *page) sessionStatus() int {
	p.t.Helper()
	return eval[int](p, `fetch('/api/v1/pod/web/session',
		{ headers: { 'X-Byoda-Web': '1' } }).then((r) => r.status)`)
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// cli runs `byoda data` against the devnet.
type cli struct {
	t        *testing.T
	bin, dir string
}

func (c cli) data(pod int, args ...string) string {
	c.t.Helper()
	full := append([]string{"data"}, args...)
	full = append(full, "--devnet", c.dir, "--pod", strconv.Itoa(pod))
	out, err := exec.Command(c.bin, full...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("byoda %v: %v\n%s", full, err, out)
	}
	return string(out)
}

// query returns the records of class on a pod through the Data API.
func (c cli) query(pod int, class string) []map[string]any {
	c.t.Helper()
	var page struct {
		Edges []struct {
			Node map[string]any `json:"node"`
		} `json:"edges"`
	}
	out := c.data(pod, "query", class)
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		c.t.Fatalf("query %s: %v\n%s", class, err, out)
	}
	nodes := make([]map[string]any, len(page.Edges))
	for i, e := range page.Edges {
		nodes[i] = e.Node
	}
	return nodes
}

// accountClient returns a client of pod's REST API with the account's
// certificate.
func accountClient(t *testing.T, info *devnet.Info, pod devnet.PodInfo) *http.Client {
	t.Helper()
	cfg, err := info.TLSConfig(pod.AccountCert, pod.AccountKey,
		pki.AccountName(info.Network, pod.AccountID).String())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}
}

// TestBrowser drives the web page in headless Chromium against a devnet of
// two pods, as the pod's owner would: a wrong password, signing in, the
// overview, joining a service, adding a person, adding and removing network
// links, accepting an invite another pod sent, paging and filtering records,
// a phone's screen, and signing out. Each step checks what the page shows
// and, through the pod's APIs, what the pod holds.
//
// With BYODA_SCREENSHOTS=docs/screenshots it keeps screenshots of the main
// screens there.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	bin := testnet.BuildByoda(t)
	notes, err := os.ReadFile(filepath.Join("..", "service", "testdata", "notes.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := devnet.Config{Dir: t.TempDir(), Pods: 2, Binary: bin,
		Contracts: [][]byte{contracts.AddressBook(), notes}, Unjoined: []uint32{notesSID}}
	info := startDevnet(t, cfg)
	pod, other := info.Pods[0], info.Pods[1]
	if len(pod.Members) != 1 || pod.Members[0].ServiceID != addressBookSID {
		t.Fatalf("pod 1 is a member of %+v, want the address book only", pod.Members)
	}
	me, them := pod.Members[0].MemberID, other.Members[0].MemberID
	c := cli{t: t, bin: bin, dir: cfg.Dir}
	p := newPage(t, exe, info, pod)
	book := fmt.Sprintf("#/service/%d", addressBookSID)

	step := func(name string, f func()) {
		ok := t.Run(name, func(st *testing.T) {
			p.t = st
			defer func() { p.t = t }()
			f()
		})
		if !ok {
			t.FailNow()
		}
	}

	step("wrong password", func() {
		p.do(chromedp.Navigate(p.base + "/"))
		p.waitFor("the sign-in form", "document.querySelector('#signin-form')")
		p.labelled("sign-in")
		p.shot("01-signin")

		p.fill("#username", pod.Username)
		p.fill("#password", "not the password\r")
		p.waitText("#signin-error", "Wrong username or password")
		if got := p.text("#signin-error"); got !=
			"Signing in failed: Wrong username or password." {
			p.fail("the error reads %q", got)
		}
		p.fill("#username", pod.Username)
		p.shot("02-signin-error")
	})

	step("sign in", func() {
		p.fill("#password", pod.Password+"\r")
		p.waitText("#account-id", pod.AccountID)
		if cookies := eval[string](p, "document.cookie"); strings.Contains(cookies, "byoda") {
			p.fail("scripts can read the session cookie: %q", cookies)
		}
		if p.sessionStatus() != 200 {
			p.fail("the pod does not know the session")
		}

		facts := p.text("#account-facts")
		for _, want := range []string{info.Network, pod.Username} {
			if !strings.Contains(facts, want) {
				p.fail("the account facts lack %q: %q", want, facts)
			}
		}
		if n := p.rows("#certificates"); n != 4 {
			p.fail("%d certificates shown, want 4 (account and member, with data)", n)
		}
		if !strings.Contains(p.text("#disk-used"), "B") {
			p.fail("disk used reads %q", p.text("#disk-used"))
		}
		// byoda pod keeps its newest log records for the page.
		p.waitText("#log-lines", "pod started")
		p.shot("03-overview")
	})

	step("join a service", func() {
		p.click(`#nav a[href="#/services"]`)
		join := fmt.Sprintf(`button[data-join="%d"]`, notesSID)
		p.waitFor("the join button", "document.querySelector("+js(join)+")")
		p.waitText(fmt.Sprintf(`[data-service-id="%d"]`, addressBookSID), "Member")
		p.shot("04-services")

		p.click(join)
		card := fmt.Sprintf(`[data-service-id="%d"]`, notesSID)
		p.waitText(card, "Open data")
		p.waitText("#status", "You joined notes.")

		// The pod is a member now: its REST API says so.
		resp, err := accountClient(t, info, pod).Get(fmt.Sprintf(
			"%s/api/v1/pod/member/service_id/%d", pod.PodURL, notesSID))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			MemberID string `json:"member_id"`
		}
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != 200 || m.MemberID == "" {
			p.fail("the pod's membership of notes: %d %+v", resp.StatusCode, m)
		}
	})

	step("service classes", func() {
		p.open(book)
		p.waitFor("the classes", "document.querySelector('#class-list')")
		person := p.text(`[data-class="person"]`)
		for _, want := range []string{"Network", "members linked to you as friend or family, " +
			"up to 1 link away", "read, change, delete", "Service"} {
			if !strings.Contains(person, want) {
				p.fail("the rules of person lack %q:\n%s", want, person)
			}
		}
		if got := p.text("#member-id"); got != me {
			p.fail("member id %q, want %q", got, me)
		}
		p.shot("05-service")
	})

	step("add a person", func() {
		p.open(book + "/class/person")
		p.waitText("#no-records", "no person records yet")
		p.click("#add-record")
		p.waitFor("the form", "document.querySelector('dialog[open] input')")
		if !eval[bool](p, "document.activeElement?.closest('dialog') !== null") {
			p.fail("the form does not take the focus")
		}
		p.labelled("the person form")
		p.fill(`dialog input[name="given_name"]`, "Ada")
		p.fill(`dialog input[name="family_name"]`, "Lovelace")
		p.fill(`dialog input[name="email"]`, "ada@example.test")
		p.fill(`dialog input[name="homepage_url"]`, "https://ada.example.test/")
		p.shot("06-record-form")
		p.click(`dialog button[type="submit"]`)
		p.waitText(`#records td[data-field="given_name"]`, "Ada")
		p.waitText("#status", "Saved person.")

		got := c.query(1, "person")
		if len(got) != 1 || got[0]["given_name"] != "Ada" ||
			got[0]["email"] != "ada@example.test" || got[0]["family_name"] != "Lovelace" {
			p.fail("the pod holds the person %+v", got)
		}
	})

	step("edit the person", func() {
		p.click(`#records button[aria-label^="Edit"]`)
		p.waitFor("the form", "document.querySelector('dialog[open] input')")
		p.fill(`dialog input[name="given_name"]`, "Augusta Ada")
		p.click(`dialog button[type="submit"]`)
		p.waitText(`#records td[data-field="given_name"]`, "Augusta Ada")
		if got := c.query(1, "person"); len(got) != 1 || got[0]["given_name"] != "Augusta Ada" {
			p.fail("after the edit the pod holds %+v", got)
		}
	})

	step("add a network link", func() {
		p.click(`#nav a[href="#/network"]`)
		p.waitText("#no-invites", "No invites")
		p.waitText("#own-member-id", me)
		p.labelled("the network view")
		p.fill(`#add-link input[name="member_id"]`, them)
		p.fill(`#add-link input[name="relation"]`, "colleague")
		p.click(`#add-link button[type="submit"]`)
		p.waitText("#links", them)

		links := c.query(1, "network_links")
		if len(links) != 1 || links[0]["member_id"] != them ||
			links[0]["relation"] != "colleague" {
			p.fail("the pod holds the links %+v", links)
		}
	})

	step("see and accept an invite", func() {
		c.data(2, "append", "network_invites", "--set", "member_id="+them,
			"--set", "relation=friend", "--set", "text=Hello from pod 2",
			"--set", "created_timestamp="+time.Now().UTC().Format(time.RFC3339Nano),
			"--depth", "1", "--remote-member-id", me)
		p.do(chromedp.Reload())
		p.waitText("#invites", "Hello from pod 2")
		p.waitText("#invites", them)
		p.shot("07-network")

		p.click(fmt.Sprintf(`button[aria-label="Accept the invite from %s"]`, them))
		p.waitText("#no-invites", "No invites")
		p.waitFor("two links", "document.querySelectorAll('#links tbody tr').length === 2")
		if got := c.query(1, "network_invites"); len(got) != 0 {
			p.fail("the accepted invite is still there: %+v", got)
		}
		relations := map[any]bool{}
		for _, l := range c.query(1, "network_links") {
			relations[l["relation"]] = l["member_id"] == them
		}
		if !relations["friend"] || !relations["colleague"] {
			p.fail("links after accepting: %+v", relations)
		}
	})

	step("filter records", func() {
		p.open(book + "/class/network_links")
		p.waitFor("the records", "document.querySelectorAll('#records tbody tr').length === 2")
		p.choose(".filters select", "relation")
		p.fill(".filters input", "friend")
		p.click(`.filters button[type="submit"]`)
		p.waitFor("one record", "document.querySelectorAll('#records tbody tr').length === 1")
		p.waitText(`#records td[data-field="relation"]`, "friend")
		p.waitText(".chips", "Relation is friend")
		p.labelled("the records view")
		p.shot("08-records")

		p.click(".chip-remove")
		p.waitFor("both records", "document.querySelectorAll('#records tbody tr').length === 2")
	})

	step("page through records", func() {
		p.open(book + "/class/datalogs")
		p.waitFor("the records", "document.querySelector('#records')")
		p.choose(".pager select", "10")
		p.waitFor("ten records", "document.querySelectorAll('#records tbody tr').length === 10")
		first := p.text("#records tbody tr")
		p.click(`.pager button:last-of-type`)
		p.waitText(".pager", "Page 2")
		if p.rows("#records") == 0 || p.text("#records tbody tr") == first {
			p.fail("page 2 shows the rows of page 1")
		}
		p.click(`.pager button:first-of-type`)
		p.waitText(".pager", "Page 1")
	})

	step("remove a link", func() {
		p.open("#/network")
		p.waitFor("two links", "document.querySelectorAll('#links tbody tr').length === 2")
		p.click(fmt.Sprintf(`button[aria-label="Remove the colleague link with %s"]`, them))
		p.waitFor("the question", "document.querySelector('dialog[open] .button.danger')")
		p.click("dialog[open] .button.danger")
		p.waitFor("one link", "document.querySelectorAll('#links tbody tr').length === 1")
		links := c.query(1, "network_links")
		if len(links) != 1 || links[0]["relation"] != "friend" {
			p.fail("after removing the colleague link the pod holds %+v", links)
		}
	})

	step("errors in words", func() {
		p.open(fmt.Sprintf("#/service/%d/class/no_such_class", addressBookSID))
		p.waitText("#status", "Opening the class failed: Addressbook has no data class")
		p.open("#/service/12345")
		p.waitText("#status", "Loading service 12345 failed: Not a member of service 12345.")
	})

	step("phone screen", func() {
		p.do(chromedp.EmulateViewport(390, 844))
		p.open("#/overview")
		p.waitText("#account-id", pod.AccountID)
		p.fitsWidth("the overview")
		p.shot("09-phone-overview")

		p.open("#/network")
		p.waitFor("the links", "document.querySelector('#links')")
		p.fitsWidth("the network view")
		p.shot("10-phone-network")
		p.do(chromedp.EmulateViewport(1280, 900))
	})

	step("session ends", func() {
		p.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, network.ClearBrowserCookies, cdp.Empty{})
			return err
		}))
		p.click(`#nav a[href="#/services"]`)
		p.waitText("#signin-error", "Not signed in: sign in with the account's username")
		p.fill("#username", pod.Username)
		p.fill("#password", pod.Password+"\r")
		p.waitFor("the services", "document.querySelector('#service-list')")
	})

	step("sign out", func() {
		p.click("#signout")
		p.waitFor("the sign-in form", "document.querySelector('#signin-form')")
		p.waitText("#status", "You are signed out.")
		if p.sessionStatus() != 401 {
			p.fail("the session still counts after signing out")
		}
		p.do(chromedp.Reload())
		p.waitFor("the sign-in form", "document.querySelector('#signin-form')")
		if !eval[bool](p, "document.querySelector('#nav').hidden") {
			p.fail("the navigation shows after signing out")
		}
	})

	if problems := p.takeProblems(); len(problems) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(problems, "\n"))
	}
}

// TestPagePolicyInBrowser serves the page alone and checks, in Chromium,
// that its content security policy holds: no inline code and nothing from
// another origin. Without the pod's API behind it, the page says in words
// that it could not check the session.
func TestPagePolicyInBrowser(t *testing.T) {
	exe := chromium(t)
	pg, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(pg)
	defer srv.Close()
	p := startChromium(t, exe, srv.URL, srv.Certificate(),
		"MAP * ~NOTFOUND, EXCLUDE "+srv.Listener.Addr().(*net.TCPAddr).IP.String())

	p.do(chromedp.Navigate(p.base + "/"))
	p.waitFor("the sign-in form", "document.querySelector('#signin-form')")
	p.waitText("#status", "Checking the session failed: Not Found.")
	if problems := p.takeProblems(); len(problems) > 0 {
		t.Fatalf("the page logged problems:\n%s", strings.Join(problems, "\n"))
	}

	// Trusted Types refuse inline code outright; the policy refuses other
	// origins, and says so on the console.
	refusedInline := eval[bool](p, `(() => {
		try {
			document.body.setAttribute('onclick', 'window.inline = true');
		} catch (e) {
			return e instanceof TypeError;
		}
		document.body.click();
		return false;
	})()`)
	p.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const img = document.createElement('img');
		img.src = 'https://elsewhere.test/pixel.png';
		document.body.appendChild(img);
	})()`))
	deadline := time.Now().Add(10 * time.Second)
	var refused []string
	for time.Now().Before(deadline) && len(refused) == 0 {
		refused = append(refused, p.takeProblems()...)
		time.Sleep(100 * time.Millisecond)
	}
	joined := strings.Join(refused, "\n")
	if !refusedInline || eval[bool](p, "window.inline === true") ||
		!strings.Contains(joined, "elsewhere.test") {
		t.Fatalf("the policy let inline code or another origin through:\n%s", joined)
	}
}
