// Package api holds what the HTTP servers of a Byoda network share at their
// boundary: handlers that return errors, one place that turns an error into a
// status code and a client-safe {"detail": ...} body, and bounded, strict
// reading of JSON request bodies.
package api

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"
)

// DefaultMaxBody is the largest request body read when a handler sets no
// limit of its own.
const DefaultMaxBody = 1 << 20

// Error is an error with the status code and the message a client may see.
// Err, the cause, is logged but never sent.
type Error struct {
	Status int
	Detail string
	Err    error
}

// Error returns the detail and the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Detail
	}
	return e.Detail + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with status and a detail made from format.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with status whose detail is detail and whose cause,
// logged only, is err.
func Wrap(status int, err error, detail string) *Error {
	return &Error{Status: status, Detail: detail, Err: err}
}

// HandlerFunc is an HTTP handler that returns an error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h to an http.Handler. An *Error becomes its status and
// detail; any other error, and any panic, becomes a 500 with a generic detail
// and one log line.
func Handle(logger *slog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				WriteDetail(w, http.StatusInternalServerError, "internal server error")
			}
		}()

		if err := h(w, r); err != nil {
			WriteError(logger, w, r, err)
		}
	})
}

// WriteError answers a request with err: see Handle.
func WriteError(logger *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		WriteDetail(w, http.StatusInternalServerError, "internal server error")
		return
	}

	if e.Status >= 500 {
		logger.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"status", e.Status, "err", err)
	} else {
		logger.Debug("request refused", "method", r.Method, "path", r.URL.Path,
			"status", e.Status, "err", err)
	}
	WriteDetail(w, e.Status, e.Detail)
}

// WriteDetail writes {"detail": detail} with status.
func WriteDetail(w http.ResponseWriter, status int, detail string) {
	WriteJSON(w, status, map[string]string{"detail": detail})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a JSON request body of at most max bytes (DefaultMaxBody
// when max is 0) into v. Unknown fields are ignored, as the reference's
// clients may send more than a server reads; trailing data is not.
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return Errorf(http.StatusUnsupportedMediaType,
				"request body must be application/json, not %q", ct)
		}
	}

	body, err := ReadBody(w, r, max)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Errorf(http.StatusBadRequest, "malformed JSON body: %s", jsonProblem(err))
	}
	return nil
}

// ReadBody reads a request body of at most max bytes (DefaultMaxBody when max
// is 0); a larger one is refused with 413.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBody
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, Errorf(http.StatusRequestEntityTooLarge,
			"request body is larger than %d bytes", max)
	}
	if err != nil {
		return nil, Wrap(http.StatusBadRequest, err, "reading request body failed")
	}
	return body, nil
}

// jsonProblem describes a JSON decoding error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("the body must be a JSON object, not %s", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "not valid JSON"
}

// NotFound answers every request that no route matched, in JSON.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteDetail(w, http.StatusNotFound, "Not Found")
}

// ReadCSR reads the body {"csr": "<PEM>"} of the endpoints that sign
// certificate requests, of at most max bytes, and returns the PEM.
func ReadCSR(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	var req struct {
		CSR string `json:"csr"`
	}
	if err := DecodeJSON(w, r, max, &req); err != nil {
		return nil, err
	}
	if req.CSR == "" {
		return nil, Errorf(http.StatusBadRequest, "field \"csr\" is required")
	}
	return []byte(req.CSR), nil
}

// ClientAddr returns the address a request came from, without a zone and
// with IPv4-mapped IPv6 addresses as IPv4.
func ClientAddr(r *http.Request) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}

	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, Wrap(http.StatusBadRequest, err,
			"cannot tell the address of the client")
	}
	return addr.Unmap().WithZone(""), nil
}

// AddressReply is the answer of the registration endpoints: the address
// that was recorded, in the field of its family.
type AddressReply struct {
	IPv4 *string `json:"ipv4_address"`
	IPv6 *string `json:"ipv6_address"`
}

// NewAddressReply returns the AddressReply for addr.
func NewAddressReply(addr netip.Addr) AddressReply {
	s := addr.String()
	if addr.Is4() {
		return AddressReply{IPv4: &s}
	}
	return AddressReply{IPv6: &s}
}

// NewServer returns an HTTP server for handler with the timeouts and limits
// every server of the network uses.
func NewServer(handler http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
