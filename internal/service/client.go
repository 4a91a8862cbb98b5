package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/pki"
)

// ClientConfig configures a Client of one service's server.
type ClientConfig struct {
	// Network is the network's domain (required).
	Network string

	// ServiceID is the service (required).
	ServiceID uint32

	// URL is the service's base URL [https://service.service-<sid>.<network>].
	URL string

	// Root is the network's root CA, which the service's certificate must
	// chain to (required).
	Root *x509.Certificate

	// Certificate, when set, is presented as the TLS client certificate: a
	// member's, for requests that need one.
	Certificate *tls.Certificate

	// Dial opens connections; it is where a caller binds its own address or
	// resolves names through the network's DNS server.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client calls the server of a service.
type Client struct {
	c   *api.Client
	net string
	sid uint32
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Network == "" || cfg.Root == nil {
		return nil, fmt.Errorf("service client: network and root are required")
	}
	host := pki.NewName(pki.Service, cfg.Network, cfg.ServiceID).String()
	if cfg.URL == "" {
		cfg.URL = "https://" + host
	}

	roots := x509.NewCertPool()
	roots.AddCert(cfg.Root)
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.Certificate != nil {
		tlsCfg.Certificates = []tls.Certificate{*cfg.Certificate}
	}

	c, err := api.NewClient(api.ClientConfig{URL: cfg.URL, TLS: tlsCfg, Dial: cfg.Dial})
	if err != nil {
		return nil, fmt.Errorf("service client: %w", err)
	}
	return &Client{c: c, net: cfg.Network, sid: cfg.ServiceID}, nil
}

// Contract downloads the service's network-signed contract.
func (c *Client) Contract(ctx context.Context) ([]byte, error) {
	return c.c.Raw(ctx, "GET", "/service-contract.json", nil)
}

// DataCert downloads the service's data certificate chain.
func (c *Client) DataCert(ctx context.Context) ([]*x509.Certificate, error) {
	return c.certs(ctx, fmt.Sprintf("/network-%s-service-%d-data-cert.pem", c.net, c.sid))
}

// CAChain downloads the service CA chain: the service CA, the services CA
// and the root.
func (c *Client) CAChain(ctx context.Context) ([]*x509.Certificate, error) {
	return c.certs(ctx, fmt.Sprintf("/network-%s-service-%d-ca-certchain.pem", c.net, c.sid))
}

func (c *Client) certs(ctx context.Context, path string) ([]*x509.Certificate, error) {
	data, err := c.c.Raw(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return certs, nil
}

// MemberCertReply is the service's answer to a member CSR.
type MemberCertReply struct {
	SignedCert           string `json:"signed_cert"`
	CertChain            string `json:"cert_chain"`
	ServiceDataCertChain string `json:"service_data_cert_chain"`
}

// SignMemberCSR has the members CA sign a member TLS or member data CSR.
func (c *Client) SignMemberCSR(ctx context.Context, csrPEM []byte) (MemberCertReply, error) {
	var r MemberCertReply
	err := c.c.Call(ctx, "POST", "/api/v1/service/member",
		map[string]string{"csr": string(csrPEM)}, &r)
	return r, err
}

// RegisterMember registers the client's membership at a contract version,
// with its member data certificate chain.
func (c *Client) RegisterMember(ctx context.Context, version int, dataChain []byte) (
	api.AddressReply, error) {
	var r api.AddressReply
	err := c.c.Call(ctx, "PUT", "/api/v1/service/member/version/"+strconv.Itoa(version),
		map[string]string{"certchain": string(dataChain)}, &r)
	return r, err
}
