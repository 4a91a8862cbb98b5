package pod

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/logring"
	"github.com/byoda/byoda-go/internal/testnet"
	"github.com/byoda/byoda-go/internal/web"
)

// browser sends requests as the pod's web page does, on the account's
// name, with the session cookie it was given.
type browser struct {
	tp     *testPod
	c      *http.Client
	cookie *http.Cookie
}

// webReq is one request of the page; header adds or, with an empty value,
// removes headers of the page's usual set.
type webReq struct {
	method, path string
	body         any
	header       map[string]string
}

func (b *browser) send(q webReq) (reply, *http.Response) {
	b.tp.t.Helper()
	var rd io.Reader
	if q.body != nil {
		data, _ := json.Marshal(q.body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(q.method, b.tp.httpsURL(q.path), rd)
	if err != nil {
		b.tp.t.Fatal(err)
	}
	req.Header.Set(web.Header, "1")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if q.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}

	resp, err := b.c.Do(req)
	if err != nil {
		b.tp.t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	b.tp.bodies.Write(data)
	return reply{status: resp.StatusCode, body: data}, resp
}

func (b *browser) must(q webReq, v any) {
	b.tp.t.Helper()
	r, _ := b.send(q)
	want(b.tp.t, r, 200, q.method+" "+q.path)
	if v != nil {
		r.json(b.tp.t, v)
	}
}

// signIn signs the page in and keeps the cookie.
func (b *browser) signIn() {
	b.tp.t.Helper()
	r, resp := b.send(webReq{method: "POST", path: "/api/v1/pod/web/session",
		body: map[string]string{"username": b.tp.cfg.Username, "password": accountPwd}})
	want(b.tp.t, r, 200, "sign in")
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			b.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
			checkSessionCookie(b.tp.t, resp.Header.Values("Set-Cookie"), c)
			return
		}
	}
	b.tp.t.Fatalf("sign-in set no session cookie: %v", resp.Header)
}

func checkSessionCookie(t *testing.T, raw []string, c *http.Cookie) {
	t.Helper()
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" ||
		c.Domain != "" || c.MaxAge <= 0 || c.Value == "" {
		t.Fatalf("session cookie %q", raw)
	}
}

func TestWebPage(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	m, _ := tp.pod.Membership(notesSID)
	c := tp.client(nil, "")

	req, _ := http.NewRequest("GET", tp.httpsURL("/"), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		!bytes.Contains(page, []byte(`src="/app/app.js"`)) {
		t.Fatalf("GET / on the account name: %d %s", resp.StatusCode, h.Get("Content-Type"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, part := range []string{"script-src 'self'", "frame-ancestors 'none'",
		"default-src 'none'"} {
		if !strings.Contains(csp, part) || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, part)
		}
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("ETag") == "" {
		t.Errorf("page headers %v", h)
	}

	for _, tc := range []struct {
		name, path, server string
		status             int
		typ                string
	}{
		{"script", "/app/app.js", "", 200, "text/javascript"},
		{"style", "/app/app.css", "", 200, "text/css"},
		{"missing asset", "/app/none.js", "", 404, "application/json"},
		{"member name", "/", m.Name(), 404, "application/json"},
		{"api on member name", "/api/v1/status", m.Name(), 200, "application/json"},
	} {
		r := tp.do(tp.client(nil, tc.server), "GET", tp.httpsURL(tc.path), nil, "")
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, r.status, tc.status)
		}
	}
	want(t, tp.do(tp.client(tp.accountCert(), ""), "GET", tp.podURL("/"), nil, ""), 404,
		"the page on the pod port")
}

func TestWebSession(t *testing.T) {
	n := startNet(t)
	cfg := newPodConfig(t, n, notesSID)
	tp := startPod(t, n, cfg)
	b := &browser{tp: tp, c: tp.client(nil, "")}
	session := "/api/v1/pod/web/session"
	creds := map[string]string{"username": cfg.Username, "password": accountPwd}

	r, _ := b.send(webReq{method: "POST", path: session, body: creds,
		header: map[string]string{web.Header: ""}})
	want(t, r, 400, "sign-in without the page's header")
	r, resp := b.send(webReq{method: "POST", path: session,
		body: map[string]string{"username": cfg.Username, "password": "wrong"}})
	want(t, r, 401, "wrong password")
	if r.detail() != "wrong username or password" || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong password: %q, cookies %v", r.detail(), resp.Cookies())
	}
	r, _ = b.send(webReq{method: "GET", path: session})
	want(t, r, 401, "session before sign-in")

	b.signIn()
	r, resp = b.send(webReq{method: "GET", path: session})
	var who struct {
		AccountID string `json:"account_id"`
	}
	r.json(t, &who)
	if r.status != 200 || who.AccountID != cfg.AccountID ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("session: %d %s, Cache-Control %q", r.status, r.body,
			resp.Header.Get("Cache-Control"))
	}

	// The cookie is the account's on the pod's REST API, and only from the
	// page itself.
	b.must(webReq{method: "GET", path: "/api/v1/pod/account"}, nil)
	for _, tc := range []struct {
		name   string
		q      webReq
		status int
	}{
		{"without the header", webReq{method: "GET", path: "/api/v1/pod/account",
			header: map[string]string{web.Header: ""}}, 401},
		{"cross-site fetch", webReq{method: "GET", path: "/api/v1/pod/account",
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"foreign origin", webReq{method: "POST", path: fmt.Sprintf(
			"/api/v1/pod/member/service_id/%d/version/1", otherSID),
			header: map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.test"}}, 403},
		{"as data credential", webReq{method: "POST", path: fmt.Sprintf(
			"/api/v1/data/%d/notes/query", notesSID), body: map[string]any{}}, 403},
	} {
		if r, _ := b.send(tc.q); r.status != tc.status || r.detail() == "" {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}

	// The pod port never reads the cookie, even with the page's header.
	req := httptest.NewRequest("GET", "/api/v1/pod/account", nil)
	req.AddCookie(b.cookie)
	req.Header.Set(web.Header, "1")
	if who, err := tp.pod.requester(req); err != nil || who.Type != 0 {
		t.Errorf("a request not from the HTTPS port is %+v, %v", who, err)
	}

	// A cookie that holds no valid token says so.
	bad := &browser{tp: tp, c: b.c, cookie: &http.Cookie{Name: sessionCookie, Value: "x.y.z"}}
	r, _ = bad.send(webReq{method: "GET", path: session})
	if r.status != 401 || !strings.Contains(r.detail(), "sign in again") {
		t.Errorf("a broken cookie: %d %s", r.status, r.body)
	}

	r, resp = b.send(webReq{method: "DELETE", path: session})
	want(t, r, 200, "sign out")
	cleared := resp.Cookies()
	if len(cleared) != 1 || cleared[0].Name != sessionCookie || cleared[0].MaxAge >= 0 {
		t.Fatalf("sign-out cookies %v", resp.Header.Values("Set-Cookie"))
	}
}

func TestWebSessionThrottle(t *testing.T) {
	n := startNet(t)
	cfg := newPodConfig(t, n)
	tp := startPod(t, n, cfg)
	b := &browser{tp: tp, c: tp.client(nil, "")}

	var r reply
	var resp *http.Response
	for i := 0; i < 10 && r.status != 429; i++ {
		r, resp = b.send(webReq{method: "POST", path: "/api/v1/pod/web/session",
			body: map[string]string{"username": cfg.Username, "password": "guess"}})
	}
	want(t, r, 429, "repeated wrong passwords")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", resp.Header)
	}
}

func TestWebAccountViews(t *testing.T) {
	n := startNet(t)
	cfg := newPodConfig(t, n, notesSID)
	cfg.RecentLog = logring.New(10)
	text := slog.NewTextHandler(io.Discard, nil)
	slog.New(cfg.RecentLog.Handler(text)).Info("marker line", "k", "v")
	tp := startPod(t, n, cfg)
	m, _ := tp.pod.Membership(notesSID)
	b := &browser{tp: tp, c: tp.client(nil, "")}
	b.signIn()

	var o struct {
		AccountID    string    `json:"account_id"`
		Network      string    `json:"network"`
		Certificates []webCert `json:"certificates"`
		Disk         diskUsage `json:"disk"`
		Memberships  []webMembership
		RecentLog    []logring.Record `json:"recent_log"`
	}
	b.must(webReq{method: "GET", path: "/api/v1/pod/web/overview"}, &o)
	if o.AccountID != cfg.AccountID || o.Network != testnet.Network ||
		len(o.Certificates) != 4 || o.Certificates[0].Use != "account" ||
		o.Certificates[0].DaysLeft < 300 || !o.Disk.Complete || o.Disk.Bytes == 0 ||
		len(o.Memberships) != 1 || o.Memberships[0].MemberID != m.MemberID {
		t.Fatalf("overview %+v", o)
	}
	if len(o.RecentLog) != 1 || o.RecentLog[0].Message != "marker line" ||
		o.RecentLog[0].Attrs != "k=v" {
		t.Fatalf("recent log %+v", o.RecentLog)
	}

	// The services list the one joined; joining the other with the session
	// works and shows.
	var list struct {
		Services []webServiceInfo `json:"services"`
		DirErr   string           `json:"directory_error"`
	}
	b.must(webReq{method: "GET", path: "/api/v1/pod/web/services"}, &list)
	joined := map[uint32]bool{}
	for _, s := range list.Services {
		joined[s.ServiceID] = s.Member
	}
	if len(list.Services) != 2 || !joined[notesSID] || joined[otherSID] || list.DirErr != "" {
		t.Fatalf("services %+v", list)
	}
	b.must(webReq{method: "POST", path: fmt.Sprintf(
		"/api/v1/pod/member/service_id/%d/version/1", otherSID)}, nil)
	b.must(webReq{method: "GET", path: "/api/v1/pod/web/services"}, &list)
	for _, s := range list.Services {
		if !s.Member || s.MemberID == "" || s.AcceptedVersion != 1 {
			t.Fatalf("after the join: %+v", s)
		}
	}
}

func TestWebServiceAndData(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	m, _ := tp.pod.Membership(notesSID)
	b := &browser{tp: tp, c: tp.client(nil, "")}
	b.signIn()

	var svc struct {
		MemberID string     `json:"member_id"`
		Classes  []webClass `json:"classes"`
	}
	b.must(webReq{method: "GET", path: fmt.Sprintf("/api/v1/pod/web/service/%d", notesSID)},
		&svc)
	classes := map[string]webClass{}
	for _, cl := range svc.Classes {
		classes[cl.Name] = cl
	}
	notes, messages := classes["notes"], classes["messages"]
	if svc.MemberID != m.MemberID || len(svc.Classes) != len(m.Contract.Classes) ||
		notes.Kind != "array" || notes.Record != "note" ||
		notes.Owner != (webOwnerRights{Read: true, Add: true, Edit: true, Delete: true}) ||
		messages.Owner != (webOwnerRights{Read: true, Add: true, Delete: true}) {
		t.Fatalf("classes %+v", svc.Classes)
	}
	wantGrant := webGrant{
		Entity:  "network",
		Label:   "Network",
		Who:     "network (distance 3)",
		Meaning: "members you have a network link with, up to 3 links away",
		What:    []string{"read"},
		Words:   "read",
	}
	if len(notes.Access) != 3 || fmt.Sprint(notes.Access[1]) != fmt.Sprint(wantGrant) ||
		notes.Access[2].Words != "nothing" || notes.Access[0].Words !=
		"read, change, delete, add, follow changes" {
		t.Fatalf("access of notes %+v", notes.Access)
	}
	r, _ := b.send(webReq{method: "GET", path: "/api/v1/pod/web/service/12345"})
	want(t, r, 404, "a service the pod is not a member of")

	// The page reads and writes as the owner.
	data := func(action string) string {
		return fmt.Sprintf("/api/v1/pod/web/data/%d/notes/%s", notesSID, action)
	}
	note := map[string]any{"note_id": uuid.NewString(), "title": "from the page",
		"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
	var count int
	b.must(webReq{method: "POST", path: data("append"), body: map[string]any{"data": note}},
		&count)
	var page struct {
		Edges []struct {
			Origin string         `json:"origin"`
			Node   map[string]any `json:"node"`
		} `json:"edges"`
	}
	b.must(webReq{method: "POST", path: data("query"), body: map[string]any{"first": 5}}, &page)
	if count != 1 || len(page.Edges) != 1 || page.Edges[0].Origin != m.MemberID ||
		page.Edges[0].Node["title"] != "from the page" {
		t.Fatalf("append %d, query %+v", count, page)
	}
	r, _ = b.send(webReq{method: "POST", path: data("mutate"), body: map[string]any{}})
	want(t, r, 404, "an action the class does not have")

	anon := &browser{tp: tp, c: b.c}
	r, _ = anon.send(webReq{method: "POST", path: data("query"), body: map[string]any{}})
	want(t, r, 401, "the page's data without a session")
}

func TestGrantMeaning(t *testing.T) {
	for _, tc := range []struct {
		right contract.Right
		want  string
	}{
		{contract.Right{Entity: contract.EntityNetwork}, "members you have a network link with"},
		{contract.Right{Entity: contract.EntityNetwork, Distance: 1,
			Relations: []string{"friend", "family", "colleague"}},
			"members linked to you as friend, family or colleague, up to 1 link away"},
		{contract.Right{Entity: contract.EntityNetwork, Relations: []string{"friend"}},
			"members linked to you as friend"},
		{contract.Right{Entity: contract.EntityService, Permission: contract.PermissionSearch,
			Match: contract.MatchSubstring}, "the service itself (match substring, " +
			"case-insensitive)"},
		{contract.Right{Entity: contract.EntityAnonymous}, "anyone, signed in or not"},
	} {
		tc.right.Permission = cmp.Or(tc.right.Permission, contract.PermissionRead)
		grants := contract.AccessControl{tc.right}.Describe()
		g := grants[slices.IndexFunc(grants, func(g contract.Grant) bool {
			return g.Entity == tc.right.Entity
		})]
		if got := grantMeaning(g); got != tc.want {
			t.Errorf("grantMeaning(%s) = %q, want %q", g.Who, got, tc.want)
		}
	}
}
