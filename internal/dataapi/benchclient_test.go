package dataapi_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var httpClient = flag.String("dataapi.http", "wire",
	"the HTTP client of the benchmarks: wire, a lean HTTP/1.1 client of the "+
		"benchmark's own, or std, net/http's Client")

// caller posts the calls of a benchmark over one connection of its own,
// which has made its TLS handshake before the first call.
//
// The benchmarks measure the server, and on a machine of two cores their
// clients take CPU time from it. So by default they use wireCaller, which,
// like the load generators of the field, writes each request with one
// write and reads the answer by its length, and spends far less time per
// call than net/http's Client with its goroutines per connection;
// -dataapi.http=std measures with the latter.
type caller interface {
	// post sends body to url and returns the body of a 200 answer, read
	// into buf, which it resets first; the answer is good until buf's next
	// use. Reusing one buffer spares the client an allocation of every
	// answer, which for pages of records costs more than the call's TLS.
	post(buf *bytes.Buffer, url string, body []byte) ([]byte, error)
	close()
}

// callTimeout bounds each call of a benchmark.
const callTimeout = time.Minute

// dialCaller returns a caller of the kind -dataapi.http names, of the pod
// whose Data API is at base.
func dialCaller(base string, roots *x509.CertPool, serverName string,
	cert tls.Certificate) (caller, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName,
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	host, _, _ := strings.Cut(strings.TrimPrefix(base, "https://"), "/")
	switch *httpClient {
	case "wire":
		return dialWire(host, cfg)
	case "std":
		return dialStd(host, cfg)
	default:
		return nil, fmt.Errorf("-dataapi.http is %q, not wire or std", *httpClient)
	}
}

// stdCaller calls with net/http's Client, over a transport of its own that
// speaks HTTP/1.1 and keeps its connection open between calls.
type stdCaller struct {
	c *http.Client
}

func dialStd(host string, cfg *tls.Config) (*stdCaller, error) {
	c := &http.Client{Timeout: callTimeout, Transport: &http.Transport{
		TLSClientConfig: cfg, MaxIdleConnsPerHost: 1,
	}}
	resp, err := c.Get("https://" + host + "/ping")
	if err != nil {
		return nil, fmt.Errorf("opening a connection: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("ping answered %s", resp.Status)
	}
	return &stdCaller{c: c}, nil
}

func (s *stdCaller) post(buf *bytes.Buffer, url string, body []byte) ([]byte, error) {
	resp, err := s.c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %s", url, resp.Status, data)
	}
	return data, nil
}

func (s *stdCaller) close() { s.c.CloseIdleConnections() }

// wireCaller speaks HTTP/1.1 on a TLS connection itself: it asks for what
// the benchmarks ask, and takes only answers that keep the connection open
// and give their length, as the pod's do.
type wireCaller struct {
	conn *tls.Conn
	r    *bufio.Reader
	host string
	req  []byte // the request being written, kept for its capacity
}

func dialWire(host string, cfg *tls.Config) (*wireCaller, error) {
	conn, err := tls.Dial("tcp", host, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening a connection: %w", err)
	}
	return &wireCaller{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), host: host}, nil
}

func (w *wireCaller) post(buf *bytes.Buffer, url string, body []byte) ([]byte, error) {
	path := url
	if rest, ok := strings.CutPrefix(url, "https://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			path = rest[i:]
		}
	}
	w.req = append(w.req[:0], "POST "...)
	w.req = append(w.req, path...)
	w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, w.host...)
	w.req = append(w.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	w.req = strconv.AppendInt(w.req, int64(len(body)), 10)
	w.req = append(w.req, "\r\n\r\n"...)
	w.req = append(w.req, body...)

	if err := w.conn.SetDeadline(time.Now().Add(callTimeout)); err != nil {
		return nil, err
	}
	if _, err := w.conn.Write(w.req); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	status, length, err := w.readHead()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	buf.Reset()
	if _, err := io.CopyN(buf, w.r, length); err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", url, err)
	}
	data := buf.Bytes()
	if status != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", url, status, data)
	}
	return data, nil
}

// readHead reads the status line and the header of an answer and returns
// its status and the length of its body.
func (w *wireCaller) readHead() (status int, length int64, err error) {
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("reading the answer: %w", err)
	}
	proto, rest, _ := strings.Cut(string(bytes.TrimRight(line, "\r\n")), " ")
	code, _, _ := strings.Cut(rest, " ")
	if status, err = strconv.Atoi(code); proto != "HTTP/1.1" || err != nil {
		return 0, 0, fmt.Errorf("the answer starts with %q, not a status line", line)
	}

	length = -1
	for {
		line, err := w.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("reading the header: %w", err)
		}
		field := bytes.TrimRight(line, "\r\n")
		if len(field) == 0 {
			break
		}
		name, value, _ := bytes.Cut(field, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil ||
				length < 0 {
				return 0, 0, fmt.Errorf("the answer's length is %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, 0, fmt.Errorf("the answer came in a %s encoding, not with its length",
				value)
		case bytes.EqualFold(name, []byte("Connection")) &&
			bytes.EqualFold(value, []byte("close")):
			return 0, 0, errors.New("the server closes the connection")
		}
	}
	if length < 0 {
		return 0, 0, errors.New("the answer does not give its length")
	}
	return status, length, nil
}

func (w *wireCaller) close() { w.conn.Close() }

// TestWireCaller checks the benchmarks' own client against net/http's
// server: it reads answers that give their length, over one connection,
// and refuses the others rather than misread them.
func TestWireCaller(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		case "/missing":
			http.Error(w, `{"detail":"no such thing"}`, http.StatusNotFound)
		case "/chunked":
			w.Write(body)
			w.(http.Flusher).Flush()
			w.Write(body)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write(body)
		}
	}))
	var opened atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	dial := func() *wireCaller {
		w, err := dialWire(strings.TrimPrefix(srv.URL, "https://"),
			&tls.Config{RootCAs: roots, ServerName: "example.com"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.close)
		return w
	}

	w := dial()
	var buf bytes.Buffer
	for i, body := range []string{`{"a":1}`, "", strings.Repeat("x", 100_000)} {
		got, err := w.post(&buf, srv.URL+"/echo", []byte(body))
		if err != nil || string(got) != body {
			t.Errorf("call %d: %.40q, %v; want %.40q", i, got, err, body)
		}
	}
	if _, err := w.post(&buf, srv.URL+"/missing", nil); err == nil ||
		!strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such thing") {
		t.Errorf("a 404 gave %v", err)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("%d connections were opened for five calls; want 1", n)
	}

	for _, path := range []string{"/chunked", "/close"} {
		if _, err := dial().post(&buf, srv.URL+path, []byte("x")); err == nil {
			t.Errorf("%s was taken", path)
		}
	}
}
