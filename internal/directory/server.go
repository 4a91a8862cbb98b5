// Package directory is the directory server of a Byoda network: it signs the
// certificates of accounts and service CAs, registers services and their
// contracts, adds the network's signature to contracts, records where every
// account, member and service is, and answers DNS for the network's names.
//
// The REST API has the paths, JSON field names and success codes of the
// reference. Client certificates are optional at the TLS layer and verified
// in-process, so a bad one gets a clear {"detail": ...} instead of a TLS
// alert.
package directory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

// MaxContractBytes is the largest contract a service may submit.
const MaxContractBytes = 4 << 20

// maxCSRBody bounds the body of a CSR request; an RSA-4096 CSR is about 2 KB.
const maxCSRBody = 64 << 10

// Server serves the REST API of a network's directory.
type Server struct {
	net      *pki.Network
	store    dirstore.Store
	verifier *pki.Verifier
	logger   *slog.Logger
	now      func() time.Time
}

// Config configures a Server.
type Config struct {
	// Network holds the network's CAs and data secret (required).
	Network *pki.Network

	// Store keeps addresses and services (required).
	Store dirstore.Store

	// Logger receives the server's log lines [discard].
	Logger *slog.Logger

	// Now returns the current time [time.Now].
	Now func() time.Time
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Network == nil || cfg.Store == nil {
		return nil, errors.New("directory: network and store are required")
	}

	s := &Server{
		net:    cfg.Network,
		store:  cfg.Store,
		logger: cfg.Logger,
		now:    cfg.Now,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.verifier = &pki.Verifier{Network: cfg.Network.Paths.Network, Root: cfg.Network.Root,
		Now: s.now}
	return s, nil
}

// Handler returns the HTTP handler of the REST API and the certificate
// downloads.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, f api.HandlerFunc) {
		mux.Handle(pattern, api.Handle(s.logger, f))
	}

	h("GET /root-ca.pem", s.rootCA)
	h("GET /root-data.pem", s.rootData)
	h("GET /api/v1/status", s.status)
	h("POST /api/v1/network/account", s.postAccount)
	h("PUT /api/v1/network/account", s.putAccount)
	h("GET /api/v1/network/services", s.listServices)
	h("GET /api/v1/network/service/service_id/{sid}", s.getService)
	h("POST /api/v1/network/service", s.postService)
	h("PUT /api/v1/network/service/service_id/{sid}", s.putService)
	h("PATCH /api/v1/network/service/service_id/{sid}", s.patchService)
	h("PUT /api/v1/network/member", s.putMember)
	mux.HandleFunc("/", api.NotFound)
	return mux
}

// TLSConfig returns the TLS configuration of the directory's HTTPS listener:
// cert as the server certificate, and client certificates requested but not
// required, so that they are checked by the handlers that need them.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

func (s *Server) rootCA(w http.ResponseWriter, r *http.Request) error {
	return writePEM(w, pki.EncodeCert(s.net.Root))
}

func (s *Server) rootData(w http.ResponseWriter, r *http.Request) error {
	return writePEM(w, pki.EncodeCertChain(s.net.DataCert))
}

func writePEM(w http.ResponseWriter, data []byte) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(data)
	return err
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	return nil
}

// certResponse is the answer to a signed CSR.
type certResponse struct {
	SignedCert           string `json:"signed_cert"`
	CertChain            string `json:"cert_chain"`
	NetworkDataCertChain string `json:"network_data_cert_chain"`
}

func (s *Server) certResponse(cert *x509.Certificate, ca *pki.CA) certResponse {
	return certResponse{
		SignedCert:           string(pki.EncodeCertChain(cert)),
		CertChain:            string(pki.EncodeCertChain(ca.IssuerChain()...)),
		NetworkDataCertChain: string(pki.EncodeCert(s.net.DataCert)),
	}
}

func readCSR(w http.ResponseWriter, r *http.Request) (*x509.CertificateRequest, error) {
	data, err := api.ReadCSR(w, r, maxCSRBody)
	if err != nil {
		return nil, err
	}

	csr, err := pki.ParseCSR(data)
	if err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "%v", err)
	}
	return csr, nil
}

func (s *Server) storeError(err error, what string) error {
	if errors.Is(err, dirstore.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "%s not found", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}
