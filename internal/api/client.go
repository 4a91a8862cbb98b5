package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxReplyBytes bounds what a client reads of a reply.
const maxReplyBytes = 8 << 20

// StatusError is a reply with a status other than 2xx, with the server's
// detail.
type StatusError struct {
	Status int
	Detail string
}

// Error reports the status and the server's detail.
func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Detail)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the server's base URL, https://HOST[:PORT] (required).
	URL string

	// TLS verifies the server and may carry a client certificate
	// (required).
	TLS *tls.Config

	// Dial opens connections [a net.Dialer with a 10s timeout].
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Timeout bounds each request [30s].
	Timeout time.Duration
}

// Client calls the JSON REST API of another party of the network.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("url %q must be https://HOST[:PORT]", cfg.URL)
	}
	if cfg.TLS == nil {
		return nil, fmt.Errorf("client for %s: a TLS configuration is required", cfg.URL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}

	return &Client{base: base, http: &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:     cfg.TLS,
			DialContext:         cfg.Dial,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConns:        4,
			IdleConnTimeout:     60 * time.Second,
		},
	}}, nil
}

// Call sends body (when not nil) as JSON and decodes the reply into out.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
	}

	reply, err := c.Raw(ctx, method, path, data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("decoding reply of %s %s: %w", method, path, err)
	}
	return nil
}

// Raw sends a request with body, JSON when not nil, and returns the body of
// a successful reply. Any other reply is a *StatusError.
func (c *Client) Raw(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var d struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(data, &d) != nil || d.Detail == "" {
			d.Detail = http.StatusText(resp.StatusCode)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path,
			&StatusError{Status: resp.StatusCode, Detail: d.Detail})
	}
	return data, nil
}

// CloseIdle closes idle connections, for a client about to be replaced.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }
