package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/pki"
)

// maxCSRBody bounds the body of a CSR or certificate chain request.
const maxCSRBody = 64 << 10

// Server serves the REST API and the downloads of one service.
type Server struct {
	secrets  *Secrets
	members  *Members
	logger   *slog.Logger
	verifier *pki.Verifier

	doc      []byte // the network-signed contract
	contract *contract.Contract
	caChain  []byte
	data     []byte
}

// Config configures a Server.
type Config struct {
	// Secrets are the service's certificates and keys (required).
	Secrets *Secrets

	// Members keeps the service's members (required).
	Members *Members

	// Logger receives the server's log lines [discard].
	Logger *slog.Logger
}

// New returns a Server for cfg. It reads the network-signed contract kept by
// Init and refuses to start unless both its signatures verify.
func New(cfg Config) (*Server, error) {
	if cfg.Secrets == nil || cfg.Members == nil {
		return nil, errors.New("service: secrets and members are required")
	}
	s := &Server{secrets: cfg.Secrets, members: cfg.Members, logger: cfg.Logger,
		verifier: cfg.Secrets.Verifier()}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}

	paths, sid := s.secrets.Paths, s.secrets.ServiceID
	doc, err := os.ReadFile(paths.ServiceContract(sid))
	if err != nil {
		return nil, fmt.Errorf("reading the signed contract (run `byoda service init`): %w",
			err)
	}
	if s.contract, err = s.secrets.VerifyContract(doc); err != nil {
		return nil, fmt.Errorf("service contract %s: %w", paths.ServiceContract(sid), err)
	}
	s.doc = doc

	if s.caChain, err = os.ReadFile(paths.ServiceCAChain(sid)); err != nil {
		return nil, fmt.Errorf("reading the service CA chain: %w", err)
	}
	s.data = pki.EncodeCertChain(s.secrets.DataChain...)
	return s, nil
}

// Contract returns the service's network-signed contract.
func (s *Server) Contract() *contract.Contract { return s.contract }

// Handler returns the HTTP handler of the service.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, f api.HandlerFunc) {
		mux.Handle(pattern, api.Handle(s.logger, f))
	}
	net, sid := s.secrets.Paths.Network, s.secrets.ServiceID

	h("GET /service-contract.json", s.getContract)
	h(fmt.Sprintf("GET /network-%s-service-%d-ca-certchain.pem", net, sid), s.pem(s.caChain))
	h(fmt.Sprintf("GET /network-%s-service-%d-data-cert.pem", net, sid), s.pem(s.data))
	h("GET /member-certs/{file}", s.getMemberCert)
	h("GET /api/v1/status", s.status)
	h("GET /api/v1/service/service/{sid}", s.getService)
	h("POST /api/v1/service/member", s.postMember)
	h("PUT /api/v1/service/member/version/{version}", s.putMember)
	mux.HandleFunc("/", api.NotFound)
	return mux
}

// TLSConfig returns the TLS configuration of the service's listener: its
// TLS certificate, and client certificates requested but verified by the
// handlers that need them.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.secrets.TLS},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	return nil
}

func (s *Server) getContract(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.doc)
	return err
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) error {
	sid, err := pki.ParseServiceID(r.PathValue("sid"))
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}
	if sid != s.secrets.ServiceID {
		return api.Errorf(http.StatusNotFound, "this server serves service %d, not %d",
			s.secrets.ServiceID, sid)
	}
	return s.getContract(w, r)
}

func (s *Server) pem(data []byte) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, err := w.Write(data)
		return err
	}
}

// getMemberCert serves member-<id>-cert.pem and member-data-<id>-cert.pem,
// the fallback for a member whose pod is offline.
func (s *Server) getMemberCert(w http.ResponseWriter, r *http.Request) error {
	file := r.PathValue("file")
	rest, ok := strings.CutSuffix(file, "-cert.pem")
	if !ok {
		return api.Errorf(http.StatusNotFound, "no such file")
	}

	data := false
	id, ok := strings.CutPrefix(rest, "member-data-")
	if ok {
		data = true
	} else if id, ok = strings.CutPrefix(rest, "member-"); !ok {
		return api.Errorf(http.StatusNotFound, "no such file")
	}
	id, err := pki.ParseUUID(id)
	if err != nil {
		return api.Errorf(http.StatusNotFound, "no such file")
	}

	m, err := s.members.Get(r.Context(), id)
	if errors.Is(err, ErrUnknownMember) {
		return api.Errorf(http.StatusNotFound, "member %s is not known", id)
	}
	if err != nil {
		return err
	}

	out := m.TLSCert
	if data {
		out = m.DataCertChain
	}
	if out == nil {
		return api.Errorf(http.StatusNotFound, "member %s has no such certificate", id)
	}
	return s.pem(out)(w, r)
}

// authenticateMember verifies the client's certificate as a member of this
// service under its own service CA.
func (s *Server) authenticateMember(r *http.Request) (pki.Name, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return pki.Name{}, api.Errorf(http.StatusUnauthorized,
			"a member TLS client certificate is required for this request")
	}

	name, err := s.verifier.Verify(r.TLS.PeerCertificates, pki.Want{
		Types:     []pki.IDType{pki.Member},
		ServiceID: s.secrets.ServiceID,
		ServiceCA: s.secrets.ServiceCA,
		Usage:     x509.ExtKeyUsageClientAuth,
	})
	if err != nil {
		return pki.Name{}, api.Errorf(http.StatusForbidden,
			"client certificate not accepted: %v", err)
	}
	return name, nil
}

// postMember signs a member TLS or member data CSR with the members CA.
//
// A new member needs no client certificate for its TLS CSR. Once the
// service knows the member, every CSR for its id, the data CSR included,
// must come with the member's own certificate. The reference accepts a data
// CSR for any member id without one, and does not compare a renewing
// member's id with its certificate's.
func (s *Server) postMember(w http.ResponseWriter, r *http.Request) error {
	data, err := api.ReadCSR(w, r, maxCSRBody)
	if err != nil {
		return err
	}
	csr, err := pki.ParseCSR(data)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}
	name, err := s.secrets.MembersCA.Review(csr)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}

	_, err = s.members.Get(r.Context(), name.ID)
	known := err == nil
	if err != nil && !errors.Is(err, ErrUnknownMember) {
		return err
	}
	if err := s.authorizeCSR(r, name, known); err != nil {
		return err
	}

	cert, _, err := s.secrets.MembersCA.Sign(csr)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}
	chain := append([]*x509.Certificate{cert}, s.secrets.MembersCA.IssuerChain()...)

	if name.Type == pki.Member {
		addr, err := api.ClientAddr(r)
		if err != nil {
			return err
		}
		if err := s.members.Signed(r.Context(), name.ID, addr,
			pki.EncodeCertChain(chain...)); err != nil {
			return err
		}
	}

	s.logger.Info("signed member certificate", "name", name.String(), "renewal", known)
	api.WriteJSON(w, http.StatusCreated, map[string]string{
		"signed_cert":             string(pki.EncodeCertChain(cert)),
		"cert_chain":              string(pki.EncodeCertChain(chain[1:]...)),
		"service_data_cert_chain": string(pki.EncodeCert(s.secrets.DataChain[0])),
	})
	return nil
}

func (s *Server) authorizeCSR(r *http.Request, name pki.Name, known bool) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		if known {
			return api.Errorf(http.StatusUnauthorized,
				"member %s exists: a renewal needs its TLS client certificate", name.ID)
		}
		if name.Type == pki.MemberData {
			return api.Errorf(http.StatusUnauthorized,
				"request the member certificate of %s before its data certificate", name.ID)
		}
		return nil
	}

	client, err := s.authenticateMember(r)
	if err != nil {
		return err
	}
	if client.ID != name.ID {
		return api.Errorf(http.StatusForbidden,
			"the client certificate is for member %s, the request for member %s",
			client.ID, name.ID)
	}
	return nil
}

// putMember registers a member: the contract version it uses and its data
// certificate, which others download when its pod is offline.
func (s *Server) putMember(w http.ResponseWriter, r *http.Request) error {
	name, err := s.authenticateMember(r)
	if err != nil {
		return err
	}

	version, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || version < 1 || version > s.contract.Version {
		return api.Errorf(http.StatusBadRequest,
			"version must be a contract version of this service, from 1 to %d",
			s.contract.Version)
	}

	var req struct {
		CertChain string `json:"certchain"`
	}
	if err := api.DecodeJSON(w, r, maxCSRBody, &req); err != nil {
		return err
	}
	chain, err := pki.ParseCerts([]byte(req.CertChain))
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "field \"certchain\": %v", err)
	}
	dataName, err := s.verifier.Verify(chain, pki.Want{Types: []pki.IDType{pki.MemberData},
		ServiceID: s.secrets.ServiceID, ServiceCA: s.secrets.ServiceCA})
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "field \"certchain\": %v", err)
	}
	if dataName.ID != name.ID {
		return api.Errorf(http.StatusBadRequest,
			"field \"certchain\" is the data certificate of member %s, not %s",
			dataName.ID, name.ID)
	}

	addr, err := api.ClientAddr(r)
	if err != nil {
		return err
	}
	if err := s.members.Registered(r.Context(), name.ID, addr, version,
		pki.EncodeCertChain(chain...)); err != nil {
		return err
	}

	s.logger.Info("registered member", "member_id", name.ID, "version", version)
	api.WriteJSON(w, http.StatusOK, api.NewAddressReply(addr))
	return nil
}
