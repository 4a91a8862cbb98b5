package directory

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

// maxListCount is the most services one listing returns.
const maxListCount = 100

func serviceIDString(sid uint32) string { return strconv.FormatUint(uint64(sid), 10) }

// pathServiceID reads the {sid} path value.
func pathServiceID(r *http.Request) (uint32, error) {
	sid, err := pki.ParseServiceID(r.PathValue("sid"))
	if err != nil {
		return 0, api.Errorf(http.StatusBadRequest, "%v", err)
	}
	return sid, nil
}

// leafOf returns the first certificate of stored PEM.
func leafOf(pemData []byte) (*x509.Certificate, error) {
	certs, err := pki.ParseCerts(pemData)
	if err != nil {
		return nil, fmt.Errorf("reading stored certificate: %w", err)
	}
	return certs[0], nil
}

// postService signs a service CA CSR. Service ids are first come, first
// served: a second CSR for a taken id gets 409 and nothing changes.
func (s *Server) postService(w http.ResponseWriter, r *http.Request) error {
	csr, err := readCSR(w, r)
	if err != nil {
		return err
	}

	name, err := s.net.ServicesCA.Review(csr)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}

	_, err = s.store.Service(r.Context(), name.ServiceID)
	if err == nil {
		return api.Errorf(http.StatusConflict, "service %d already has a service CA",
			name.ServiceID)
	}
	if !errors.Is(err, dirstore.ErrNotFound) {
		return err
	}

	cert, _, err := s.net.ServicesCA.Sign(csr)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}

	chain := pki.EncodeCertChain(append([]*x509.Certificate{cert},
		s.net.ServicesCA.IssuerChain()...)...)
	err = s.store.CreateService(r.Context(), name.ServiceID, chain)
	if errors.Is(err, dirstore.ErrExists) {
		return api.Errorf(http.StatusConflict, "service %d already has a service CA",
			name.ServiceID)
	}
	if err != nil {
		return err
	}

	if err := s.setServiceAddress(r, name.ServiceID); err != nil {
		return err
	}

	s.logger.Info("signed service ca", "service_id", name.ServiceID)
	api.WriteJSON(w, http.StatusCreated, s.certResponse(cert, s.net.ServicesCA))
	return nil
}

func (s *Server) setServiceAddress(r *http.Request, sid uint32) error {
	addr, err := api.ClientAddr(r)
	if err != nil {
		return err
	}
	name := pki.NewName(pki.Service, s.net.Paths.Network, sid)
	return s.store.SetAddress(r.Context(), name.String(), addr)
}

// authenticateService checks that the client is the service sid, with a
// TLS certificate under the service CA the network signed for it.
func (s *Server) authenticateService(r *http.Request, sid uint32) (dirstore.Service, error) {
	svc, err := s.store.Service(r.Context(), sid)
	if err != nil {
		return dirstore.Service{}, s.storeError(err, "service "+serviceIDString(sid))
	}

	serviceCA, err := leafOf(svc.CACertChain)
	if err != nil {
		return dirstore.Service{}, err
	}

	_, err = s.authenticate(r, pki.Want{Types: []pki.IDType{pki.Service}, ServiceID: sid,
		ServiceCA: serviceCA})
	return svc, err
}

// certchainRequest is the body of PUT /network/service/service_id/{sid}.
type certchainRequest struct {
	CertChain string `json:"certchain"`
}

// putService stores the service's data certificate chain and records the
// client's address as the service's address.
func (s *Server) putService(w http.ResponseWriter, r *http.Request) error {
	sid, err := pathServiceID(r)
	if err != nil {
		return err
	}
	svc, err := s.authenticateService(r, sid)
	if err != nil {
		return err
	}

	var req certchainRequest
	if err := api.DecodeJSON(w, r, maxCSRBody, &req); err != nil {
		return err
	}
	certs, err := pki.ParseCerts([]byte(req.CertChain))
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "field \"certchain\": %v", err)
	}

	serviceCA, err := leafOf(svc.CACertChain)
	if err != nil {
		return err
	}
	if _, err := s.verifier.Verify(certs, pki.Want{Types: []pki.IDType{pki.ServiceData},
		ServiceID: sid, ServiceCA: serviceCA}); err != nil {
		return api.Errorf(http.StatusBadRequest, "field \"certchain\": %v", err)
	}

	if err := s.store.SetServiceDataCert(r.Context(), sid,
		pki.EncodeCertChain(certs...)); err != nil {
		return s.storeError(err, "service "+serviceIDString(sid))
	}
	s.logger.Info("stored service data certificate", "service_id", sid)

	return s.register(w, r, pki.NewName(pki.Service, s.net.Paths.Network, sid))
}

// getService returns the network-signed contract of a service.
func (s *Server) getService(w http.ResponseWriter, r *http.Request) error {
	sid, err := pathServiceID(r)
	if err != nil {
		return err
	}

	svc, err := s.store.Service(r.Context(), sid)
	if err != nil {
		return s.storeError(err, "service "+serviceIDString(sid))
	}
	if svc.Contract == nil {
		return api.Errorf(http.StatusNotFound, "service %d has no accepted contract", sid)
	}

	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(svc.Contract)
	return err
}

// serviceSummary is one entry of the service listing.
type serviceSummary struct {
	ServiceID    uint32  `json:"service_id"`
	Version      int     `json:"version"`
	Name         string  `json:"name"`
	Title        *string `json:"title"`
	Description  string  `json:"description"`
	SupportEmail string  `json:"supportemail"`
}

// listServices lists the services that have an accepted contract.
func (s *Server) listServices(w http.ResponseWriter, r *http.Request) error {
	skip, err := queryInt(r, "skip")
	if err != nil {
		return err
	}
	count, err := queryInt(r, "count")
	if err != nil {
		return err
	}
	if count == 0 || count > maxListCount {
		count = maxListCount
	}

	services, err := s.store.Services(r.Context(), skip, count)
	if err != nil {
		return err
	}

	summaries := make([]serviceSummary, 0, len(services))
	for _, svc := range services {
		var c serviceSummary
		if err := json.Unmarshal(svc.Contract, &c); err != nil {
			s.logger.Warn("stored contract does not parse", "service_id", svc.ID, "err", err)
			continue
		}
		c.ServiceID, c.Version = svc.ID, svc.Version
		summaries = append(summaries, c)
	}

	api.WriteJSON(w, http.StatusOK, map[string]any{"service_summaries": summaries})
	return nil
}

func queryInt(r *http.Request, key string) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return 0, nil
	}

	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, api.Errorf(http.StatusBadRequest,
			"query parameter %q must be a whole number of 0 or more", key)
	}
	return n, nil
}

// contractKeys are the top-level keys of a contract. The reference verifies
// signatures over exactly these, so a contract with more or fewer would
// verify here and fail in its pods.
var contractKeys = []string{"cors_origins", "description", "jsonschema", "listen_relations",
	"max_query_depth", "name", "owner", "service_id", "signatures", "supportemail", "version",
	"website"}

// reviewResponse is the answer to a contract submission.
type reviewResponse struct {
	Detail    string   `json:"detail,omitempty"`
	Status    string   `json:"status"`
	Errors    []string `json:"errors"`
	Timestamp string   `json:"timestamp"`
}

// patchService adds the network's signature to a contract the service
// signed. The reference answers a refusal with 200 and status REJECTED; here
// a refusal is a 4xx that carries both that body and a detail.
func (s *Server) patchService(w http.ResponseWriter, r *http.Request) error {
	sid, err := pathServiceID(r)
	if err != nil {
		return err
	}
	svc, err := s.authenticateService(r, sid)
	if err != nil {
		return err
	}

	body, err := api.ReadBody(w, r, MaxContractBytes)
	if err != nil {
		return err
	}

	signed, version, err := s.reviewContract(svc, body)
	if err != nil {
		return s.reject(w, err)
	}

	err = s.store.SetContract(r.Context(), sid, version, signed)
	if errors.Is(err, dirstore.ErrStaleVersion) {
		return s.reject(w, api.Errorf(http.StatusConflict,
			"version %d is not higher than the accepted version", version))
	}
	if err != nil {
		return err
	}

	s.logger.Info("accepted contract", "service_id", sid, "version", version)
	api.WriteJSON(w, http.StatusOK, reviewResponse{Status: "ACCEPTED", Errors: []string{},
		Timestamp: s.now().UTC().Format("2006-01-02T15:04:05.000000+00:00")})
	return nil
}

func (s *Server) reject(w http.ResponseWriter, err error) error {
	var e *api.Error
	if !errors.As(err, &e) {
		return err
	}
	api.WriteJSON(w, e.Status, reviewResponse{Detail: e.Detail, Status: "REJECTED",
		Errors: []string{e.Detail}, Timestamp: s.now().UTC().Format(
			"2006-01-02T15:04:05.000000+00:00")})
	return nil
}

// reviewContract checks a service-signed contract and returns it with the
// network's signature added, and its version.
func (s *Server) reviewContract(svc dirstore.Service, body []byte) ([]byte, int, error) {
	bad := func(format string, args ...any) ([]byte, int, error) {
		return nil, 0, api.Errorf(http.StatusBadRequest, "contract: "+format, args...)
	}

	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return bad("not a JSON object")
	}

	var missing, extra []string
	for _, k := range contractKeys {
		if _, ok := doc[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range doc {
		if !slices.Contains(contractKeys, k) {
			extra = append(extra, k)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		slices.Sort(extra)
		return bad("top-level keys must be exactly %v; missing %v, unknown %v",
			contractKeys, missing, extra)
	}

	var head struct {
		ServiceID json.Number `json:"service_id"`
		Version   json.Number `json:"version"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return bad("service_id and version must be numbers")
	}
	if head.ServiceID.String() != serviceIDString(svc.ID) {
		return bad("service_id %s does not match service %d", head.ServiceID, svc.ID)
	}
	version, err := strconv.Atoi(head.Version.String())
	if err != nil || version < 1 {
		return bad("version must be a whole number of 1 or more")
	}
	if version <= svc.Version {
		return nil, 0, api.Errorf(http.StatusConflict,
			"contract: version %d is not higher than the accepted version %d",
			version, svc.Version)
	}

	signed, err := s.signContract(svc, body)
	if err != nil {
		return nil, 0, err
	}
	return signed, version, nil
}

func (s *Server) signContract(svc dirstore.Service, body []byte) ([]byte, error) {
	sigs, err := contract.Signatures(body)
	if err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "contract: %v", err)
	}
	if _, ok := sigs[contract.SignerService]; !ok {
		return nil, api.Errorf(http.StatusBadRequest,
			"contract: the service signature is missing")
	}
	if _, ok := sigs[contract.SignerNetwork]; ok {
		return nil, api.Errorf(http.StatusBadRequest,
			"contract: it already has a network signature")
	}

	if svc.DataCertChain == nil {
		return nil, api.Errorf(http.StatusConflict, "contract: service %d has not registered "+
			"its data certificate (PUT /api/v1/network/service/service_id/%d)", svc.ID, svc.ID)
	}
	dataCert, err := leafOf(svc.DataCertChain)
	if err != nil {
		return nil, err
	}
	if err := contract.Verify(body, contract.SignerService, dataCert); err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "contract: %v", err)
	}

	signed, err := contract.Sign(body, contract.SignerNetwork, s.net.DataKey,
		s.net.DataCert.Subject.CommonName, s.now())
	if err != nil {
		return nil, fmt.Errorf("adding network signature: %w", err)
	}
	return signed, nil
}
