package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// logged returns a logger writing into the returned buffer.
func logged() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		&buf
}

func TestHandleMapsErrors(t *testing.T) {
	tests := []struct {
		name    string
		h       HandlerFunc
		status  int
		detail  string
		logHas  string
		logNone string
	}{
		{"api error", func(w http.ResponseWriter, r *http.Request) error {
			return Errorf(http.StatusConflict, "service %d exists", 7)
		}, 409, "service 7 exists", "request refused", ""},
		{"wrapped cause stays out of the reply", func(w http.ResponseWriter,
			r *http.Request) error {
			return Wrap(http.StatusBadRequest, errors.New("secret cause"), "bad thing")
		}, 400, "bad thing", "secret cause", ""},
		{"plain error is a 500 without its text", func(w http.ResponseWriter,
			r *http.Request) error {
			return errors.New("disk on fire")
		}, 500, "internal server error", "disk on fire", ""},
		{"panic is a 500", func(w http.ResponseWriter, r *http.Request) error {
			var m map[string]int
			m["x"] = 1
			return nil
		}, 500, "internal server error", "handler panicked", ""},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := logged()
			rec := httptest.NewRecorder()
			Handle(logger, tt.h).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))

			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil ||
				body["detail"] != tt.detail {
				t.Fatalf("body %s, want detail %q", rec.Body, tt.detail)
			}
			if strings.Contains(rec.Body.String(), "secret cause") ||
				strings.Contains(rec.Body.String(), "disk on fire") {
				t.Fatalf("the cause reached the client: %s", rec.Body)
			}
			if !strings.Contains(buf.String(), tt.logHas) {
				t.Fatalf("log %q does not mention %q", buf, tt.logHas)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		CSR string `json:"csr"`
		N   int    `json:"n"`
	}
	tests := []struct {
		name   string
		ctype  string
		body   string
		max    int64
		status int
		detail string
	}{
		{"good", "application/json", `{"csr": "x", "n": 1}`, 0, 0, ""},
		{"unknown fields ignored", "", `{"csr": "x", "other": true}`, 0, 0, ""},
		{"charset", "application/json; charset=utf-8", `{}`, 0, 0, ""},
		{"syntax", "application/json", `{"csr": `, 0, 400, "malformed JSON"},
		{"type", "application/json", `{"n": "one"}`, 0, 400, `field "n" must be int`},
		{"trailing data", "application/json", `{} {}`, 0, 400, "malformed JSON"},
		{"empty", "application/json", ``, 0, 400, "malformed JSON"},
		{"too big", "application/json", `{"csr": "` + strings.Repeat("a", 100) + `"}`, 50,
			413, "larger than 50 bytes"},
		{"wrong type", "text/plain", `{}`, 0, 415, "must be application/json"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			var v body
			err := DecodeJSON(httptest.NewRecorder(), req, tt.max, &v)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}

			var e *Error
			if !errors.As(err, &e) || e.Status != tt.status ||
				!strings.Contains(e.Detail, tt.detail) {
				t.Fatalf("DecodeJSON err = %v, want %d with %q", err, tt.status, tt.detail)
			}
			if strings.Contains(e.Detail, "aaaa") {
				t.Fatal("the detail echoes the input")
			}
		})
	}
}

func TestClientStatusError(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			WriteJSON(w, 200, map[string]int{"n": 3})
		case "/plain":
			http.Error(w, "nope", http.StatusTeapot)
		default:
			WriteDetail(w, http.StatusForbidden, "not yours")
		}
	}))
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := NewClient(ClientConfig{URL: srv.URL, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var out struct{ N int }
	if err := c.Call(ctx, "GET", "/ok", nil, &out); err != nil || out.N != 3 {
		t.Fatalf("Call = %v, %+v", err, out)
	}

	var se *StatusError
	err = c.Call(ctx, "POST", "/denied", map[string]string{"a": "b"}, &out)
	if !errors.As(err, &se) || se.Status != 403 || se.Detail != "not yours" {
		t.Fatalf("Call of a refusal: %v", err)
	}
	_, err = c.Raw(ctx, "GET", "/plain", nil)
	if !errors.As(err, &se) || se.Status != 418 || se.Detail != "I'm a teapot" {
		t.Fatalf("Raw of a non-JSON refusal: %v", err)
	}

	if _, err := NewClient(ClientConfig{URL: "http://x", TLS: &tls.Config{}}); err == nil {
		t.Fatal("NewClient accepted a plain http URL")
	}
}
