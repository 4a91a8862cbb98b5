package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/byoda/byoda-go/internal/api"
)

// StatusError is a reply of the directory with a status other than success.
type StatusError = api.StatusError

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

	// InsecureSkipVerify skips checking the directory's certificate: only for
	// downloading a root CA that is then checked against a pinned
	// fingerprint.
	InsecureSkipVerify bool

	// Certificate, when set, is presented as the TLS client certificate.
	Certificate *tls.Certificate

	// LocalAddr, when set, is the address requests are sent from: the
	// directory records the address a registration comes from.
	LocalAddr net.IP

	// Dial, when set, opens connections instead of a dialer bound to
	// LocalAddr: a pod resolves names through its network's DNS server.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Timeout bounds each request [30s].
	Timeout time.Duration
}

// Client calls a directory server's REST API.
type Client struct {
	c *api.Client
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Network == "" {
		return nil, errors.New("directory client: network is required")
	}

	tlsCfg := &tls.Config{
		RootCAs:    cfg.RootCAs,
		ServerName: "dir." + cfg.Network,
		MinVersion: tls.VersionTLS12,
		// A pinned fingerprint stands in for the certificate check.
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec
	}
	if cfg.Certificate != nil {
		tlsCfg.Certificates = []tls.Certificate{*cfg.Certificate}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if cfg.LocalAddr != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: cfg.LocalAddr}
	}

	dial := cfg.Dial
	if dial == nil {
		dial = dialer.DialContext
	}

	c, err := api.NewClient(api.ClientConfig{URL: cfg.URL, TLS: tlsCfg, Dial: dial,
		Timeout: cfg.Timeout})
	if err != nil {
		return nil, fmt.Errorf("directory client: %w", err)
	}
	return &Client{c: c}, nil
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
	return c.c.Raw(ctx, "GET", "/root-ca.pem", nil)
}

// RootData downloads the network data certificate.
func (c *Client) RootData(ctx context.Context) ([]byte, error) {
	return c.c.Raw(ctx, "GET", "/root-data.pem", nil)
}

// SignAccountCSR has the accounts CA sign an account or account data CSR.
func (c *Client) SignAccountCSR(ctx context.Context, csrPEM []byte) (CertReply, error) {
	var r CertReply
	err := c.c.Call(ctx, "POST", "/api/v1/network/account", map[string]string{
		"csr": string(csrPEM)}, &r)
	return r, err
}

// RegisterAccount records the client's address for its account.
func (c *Client) RegisterAccount(ctx context.Context) (AddressReply, error) {
	var r AddressReply
	err := c.c.Call(ctx, "PUT", "/api/v1/network/account", nil, &r)
	return r, err
}

// SignServiceCSR has the services CA sign a service CA CSR.
func (c *Client) SignServiceCSR(ctx context.Context, csrPEM []byte) (CertReply, error) {
	var r CertReply
	err := c.c.Call(ctx, "POST", "/api/v1/network/service", map[string]string{
		"csr": string(csrPEM)}, &r)
	return r, err
}

// RegisterService stores the service's data certificate chain and records
// the client's address for the service.
func (c *Client) RegisterService(ctx context.Context, sid uint32, dataChain []byte) (
	AddressReply, error) {
	var r AddressReply
	err := c.c.Call(ctx, "PUT", servicePath(sid), map[string]string{
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
	if err := c.c.Call(ctx, "PATCH", servicePath(sid), json.RawMessage(doc), &r); err != nil {
		return err
	}
	if r.Status != "ACCEPTED" {
		return fmt.Errorf("directory did not accept the contract: %s %v", r.Status, r.Errors)
	}
	return nil
}

// Contract downloads the network-signed contract of a service.
func (c *Client) Contract(ctx context.Context, sid uint32) ([]byte, error) {
	return c.c.Raw(ctx, "GET", servicePath(sid), nil)
}

// Services lists the services of the network.
func (c *Client) Services(ctx context.Context) ([]ServiceSummary, error) {
	var r struct {
		Summaries []ServiceSummary `json:"service_summaries"`
	}
	err := c.c.Call(ctx, "GET", "/api/v1/network/services", nil, &r)
	return r.Summaries, err
}

// RegisterMember records the client's address for its membership.
func (c *Client) RegisterMember(ctx context.Context) (AddressReply, error) {
	var r AddressReply
	err := c.c.Call(ctx, "PUT", "/api/v1/network/member", nil, &r)
	return r, err
}

func servicePath(sid uint32) string {
	return "/api/v1/network/service/service_id/" + strconv.FormatUint(uint64(sid), 10)
}
