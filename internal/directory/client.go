package directory

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/byoda/byoda-go/internal/api"
)

// maxReplyBytes bounds what a client reads of a directory's reply.
const maxReplyBytes = 8 << 20

// StatusError is a reply of the directory with a status other than success.
type StatusError struct {
	Status int
	Detail string
}

// Error reports the status and the server's detail.
func (e *StatusError) Error() string {
	return fmt.Sprintf("directory answered %d: %s", e.Status, e.Detail)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the directory's base URL, e.g. "https://dir.byoda.net" or, for
	// a private network, "https://127.0.0.1:8443" (required).
	URL string

	// Network is the network's domain; the directory's certificate is
	// verified for dir.<network> whatever host URL names (required).
	Network string

	// RootCAs verifies the directory's certificate; nil uses the system's
	// roots, as for a directory with a public certificate.
	RootCAs *x509.CertPool

	// Certificate, when set, is presented as the TLS client certificate.
	Certificate *tls.Certificate

	// LocalAddr, when valid, is the address requests are sent from: the
	// directory records the address a registration comes from.
	LocalAddr net.IP

	// Timeout bounds each request [30s].
	Timeout time.Duration
}

// Client calls a directory server's REST API.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("directory url %q must be https://HOST[:PORT]", cfg.URL)
	}
	if cfg.Network == "" {
		return nil, errors.New("directory client: network is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}

	tlsCfg := &tls.Config{
		RootCAs:    cfg.RootCAs,
		ServerName: "dir." + cfg.Network,
		MinVersion: tls.VersionTLS12,
	}
	if cfg.Certificate != nil {
		tlsCfg.Certificates = []tls.Certificate{*cfg.Certificate}
	}

	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if cfg.LocalAddr != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: cfg.LocalAddr}
	}

	return &Client{base: base, http: &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:     tlsCfg,
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConns:        4,
			IdleConnTimeout:     60 * time.Second,
		},
	}}, nil
}

// CertReply is the directory's answer to a CSR.
type CertReply struct {
	SignedCert           string `json:"signed_cert"`
	CertChain            string `json:"cert_chain"`
	NetworkDataCertChain string `json:"network_data_cert_chain"`
}

// AddressReply is the directory's answer to a registration.
type AddressReply = api.AddressReply

// ServiceSummary is one entry of the directory's service list.
type ServiceSummary struct {
	ServiceID    uint32 `json:"service_id"`
	Version      int    `json:"version"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	SupportEmail string `json:"supportemail"`
}

// RootCA downloads the network's root CA certificate.
func (c *Client) RootCA(ctx context.Context) ([]byte, error) {
	return c.raw(ctx, "GET", "/root-ca.pem", nil)
}

// RootData downloads the network data certificate.
func (c *Client) RootData(ctx context.Context) ([]byte, error) {
	return c.raw(ctx, "GET", "/root-data.pem", nil)
}

// SignAccountCSR has the accounts CA sign an account or account data CSR.
func (c *Client) SignAccountCSR(ctx context.Context, csrPEM []byte) (CertReply, error) {
	var r CertReply
	err := c.call(ctx, "POST", "/api/v1/network/account", map[string]string{
		"csr": string(csrPEM)}, &r)
	return r, err
}

// RegisterAccount records the client's address for its account.
func (c *Client) RegisterAccount(ctx context.Context) (AddressReply, error) {
	var r AddressReply
	err := c.call(ctx, "PUT", "/api/v1/network/account", nil, &r)
	return r, err
}

// SignServiceCSR has the services CA sign a service CA CSR.
func (c *Client) SignServiceCSR(ctx context.Context, csrPEM []byte) (CertReply, error) {
	var r CertReply
	err := c.call(ctx, "POST", "/api/v1/network/service", map[string]string{
		"csr": string(csrPEM)}, &r)
	return r, err
}

// RegisterService stores the service's data certificate chain and records
// the client's address for the service.
func (c *Client) RegisterService(ctx context.Context, sid uint32, dataChain []byte) (
	AddressReply, error) {
	var r AddressReply
	err := c.call(ctx, "PUT", servicePath(sid), map[string]string{
		"certchain": string(dataChain)}, &r)
	return r, err
}

// SubmitContract sends a service-signed contract for the network's
// signature.
func (c *Client) SubmitContract(ctx context.Context, sid uint32, doc []byte) error {
	var r struct {
		Status string   `json:"status"`
		Errors []string `json:"errors"`
	}
	if err := c.call(ctx, "PATCH", servicePath(sid), json.RawMessage(doc), &r); err != nil {
		return err
	}
	if r.Status != "ACCEPTED" {
		return fmt.Errorf("directory did not accept the contract: %s %v", r.Status, r.Errors)
	}
	return nil
}

// Contract downloads the network-signed contract of a service.
func (c *Client) Contract(ctx context.Context, sid uint32) ([]byte, error) {
	return c.raw(ctx, "GET", servicePath(sid), nil)
}

// Services lists the services of the network.
func (c *Client) Services(ctx context.Context) ([]ServiceSummary, error) {
	var r struct {
		Summaries []ServiceSummary `json:"service_summaries"`
	}
	err := c.call(ctx, "GET", "/api/v1/network/services", nil, &r)
	return r.Summaries, err
}

// RegisterMember records the client's address for its membership.
func (c *Client) RegisterMember(ctx context.Context) (AddressReply, error) {
	var r AddressReply
	err := c.call(ctx, "PUT", "/api/v1/network/member", nil, &r)
	return r, err
}

func servicePath(sid uint32) string {
	return "/api/v1/network/service/service_id/" + strconv.FormatUint(uint64(sid), 10)
}

// call sends body as JSON and decodes the reply into out.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
	}

	reply, err := c.raw(ctx, method, path, data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("decoding reply of %s %s: %w", method, path, err)
	}
	return nil
}

// raw sends a request and returns the body of a successful reply.
func (c *Client) raw(ctx context.Context, method, path string, body []byte) ([]byte, error) {
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
