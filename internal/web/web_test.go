package web

import (
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, p *Page, method, target string, header map[string]string,
) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec
}

func TestPageServesItsFiles(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, target string
		status         int
		typ            string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/app/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/app/views/data.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/app/app.css", 200, "text/css; charset=utf-8"},
		{"GET", "/app/icon.svg", 200, "image/svg+xml"},
		{"GET", "/app/", 404, "application/json"},
		{"GET", "/app/none.js", 404, "application/json"},
		{"GET", "/index.html/../app/app.js", 404, "application/json"},
		{"POST", "/", 404, "application/json"},
	} {
		rec := serve(t, p, tc.method, tc.target, nil)
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.typ {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.target, rec.Code,
				rec.Header().Get("Content-Type"), tc.status, tc.typ)
		}
		if tc.status == 200 && (rec.Header().Get("Content-Security-Policy") !=
			ContentSecurityPolicy || rec.Header().Get("X-Frame-Options") != "DENY" ||
			rec.Header().Get("Cache-Control") != "no-cache") {
			t.Errorf("%s %s: headers %v", tc.method, tc.target, rec.Header())
		}
	}
}

func TestPageRevalidates(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	first := serve(t, p, "GET", "/app/app.css", nil)
	etag := first.Header().Get("ETag")
	if etag == "" || first.Body.Len() == 0 {
		t.Fatalf("no ETag or body: %v", first.Header())
	}
	again := serve(t, p, "GET", "/app/app.css", map[string]string{"If-None-Match": etag})
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidation answered %d with %d bytes", again.Code, again.Body.Len())
	}
	other := serve(t, p, "GET", "/app/app.js", nil).Header().Get("ETag")
	if other == etag {
		t.Errorf("two files share the ETag %s", etag)
	}
}

// TestPageReferencesResolve checks that every file the document and the
// scripts load is one the page serves, and that none comes from elsewhere.
func TestPageReferencesResolve(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"|from '([^']+)'|import\('([^']+)'\)`)
	checked := 0
	for name, a := range p.assets {
		if !strings.HasSuffix(name, ".html") && !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range refs.FindAllStringSubmatch(string(a.body), -1) {
			ref := m[1] + m[2] + m[3]
			if strings.Contains(ref, "://") || strings.HasPrefix(ref, "//") {
				t.Errorf("%s loads %s from another origin", name, ref)
				continue
			}
			if !strings.HasPrefix(ref, "/") {
				ref = path.Join(path.Dir(name), ref)
			}
			if _, ok := p.assets[ref]; !ok {
				t.Errorf("%s refers to %s, which the page does not serve", name, ref)
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("found only %d references; the pattern misses some", checked)
	}
}
