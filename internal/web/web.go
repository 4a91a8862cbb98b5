// Package web is the pod's management page: the HTML, CSS and JavaScript
// that a person's browser loads from the pod's HTTPS port to sign in, look
// after the account, join services and keep the data of its memberships.
//
// Everything the page needs is embedded in the binary, so it works offline
// and loads nothing from anywhere else. The page is plain HTML, CSS and
// JavaScript modules with no build step. It talks to the pod's API only,
// with the session cookie the pod sets at sign-in and the X-Byoda-Web header
// that the pod requires before it believes that cookie.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/api"
)

// Header is the request header the page adds to every API call; the pod
// accepts the session cookie only on requests that carry it.
const Header = "X-Byoda-Web"

// ContentSecurityPolicy allows the page only its own scripts, styles,
// images and API, never inline code or another origin, and no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed static
var static embed.FS

// contentTypes are the types of the files the page is made of, set here
// rather than taken from the host's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Page serves the web page: the document at "/" and its files under
// "/app/". Its zero value is not usable; call New.
type Page struct {
	assets map[string]asset // by URL path
}

// New returns the page, with its embedded files loaded.
func New() (*Page, error) {
	p := &Page{assets: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		urlPath := strings.TrimPrefix(name, "static")
		p.assets[urlPath] = asset{body: body, contentType: ct,
			etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ServeHTTP answers GET and HEAD for the document and its files. A browser
// revalidates them on every load, which costs a 304 when the binary has not
// changed.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path
	if name == "/" {
		name = "/index.html"
	}
	a, ok := p.assets[name]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		api.NotFound(w, r)
		return
	}

	SetSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// SetSecurityHeaders sets the headers every response of the page carries:
// the content security policy, no framing, no type sniffing and no
// referrer.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}
