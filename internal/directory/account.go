package directory

import (
	"errors"
	"net/http"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

// postAccount signs an account or account data CSR.
//
// A new account needs no client certificate; its TLS CSR creates its DNS
// name. Once the account's name exists, every CSR for its id, the data CSR
// included, must come with the account's own client certificate. The
// reference lets anyone obtain an account data certificate for an existing
// account id, because it looks up the DNS name of the data CN, which never
// exists.
func (s *Server) postAccount(w http.ResponseWriter, r *http.Request) error {
	csr, err := readCSR(w, r)
	if err != nil {
		return err
	}

	name, err := s.net.AccountsCA.Review(csr)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}
	account := pki.AccountName(name.Network, name.ID)

	_, err = s.store.Address(r.Context(), account.String())
	exists := err == nil
	if err != nil && !errors.Is(err, dirstore.ErrNotFound) {
		return err
	}

	if err := s.authorizeAccountCSR(r, name, exists); err != nil {
		return err
	}

	cert, _, err := s.net.AccountsCA.Sign(csr)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "%v", err)
	}

	if !exists && name.Type == pki.Account {
		addr, err := api.ClientAddr(r)
		if err != nil {
			return err
		}
		if err := s.store.SetAddress(r.Context(), account.String(), addr); err != nil {
			return err
		}
	}

	s.logger.Info("signed account certificate", "name", name.String(),
		"renewal", exists)
	api.WriteJSON(w, http.StatusCreated, s.certResponse(cert, s.net.AccountsCA))
	return nil
}

func (s *Server) authorizeAccountCSR(r *http.Request, name pki.Name, exists bool) error {
	if peerChain(r) == nil {
		if exists {
			return api.Errorf(http.StatusUnauthorized,
				"account %s exists: a renewal needs its TLS client certificate", name.ID)
		}
		if name.Type == pki.AccountData {
			return api.Errorf(http.StatusUnauthorized,
				"request the account certificate of %s before its data certificate", name.ID)
		}
		return nil
	}

	client, err := s.authenticate(r, pki.Want{Types: []pki.IDType{pki.Account}})
	if err != nil {
		return err
	}
	if client.ID != name.ID {
		return api.Errorf(http.StatusForbidden,
			"the client certificate is for account %s, the request for account %s",
			client.ID, name.ID)
	}
	return nil
}

// putAccount records the client's address as its account's address.
func (s *Server) putAccount(w http.ResponseWriter, r *http.Request) error {
	name, err := s.authenticate(r, pki.Want{Types: []pki.IDType{pki.Account}})
	if err != nil {
		return err
	}
	return s.register(w, r, name)
}

// putMember records the client's address as its membership's address. The
// member certificate must lead through the stored CA of its own service.
func (s *Server) putMember(w http.ResponseWriter, r *http.Request) error {
	chain := peerChain(r)
	if chain == nil {
		return api.Errorf(http.StatusUnauthorized,
			"a TLS client certificate is required for this request")
	}
	// The name says which service's CA the chain must lead through; the
	// verification that follows checks the name too.
	claimed, err := pki.ParseName(chain[0].Subject.CommonName, s.net.Paths.Network)
	if err != nil || claimed.Type != pki.Member {
		return api.Errorf(http.StatusForbidden,
			"client certificate not accepted: it is not a member certificate")
	}

	svc, err := s.store.Service(r.Context(), claimed.ServiceID)
	if err != nil {
		return s.storeError(err, "service "+serviceIDString(claimed.ServiceID))
	}
	serviceCA, err := leafOf(svc.CACertChain)
	if err != nil {
		return err
	}

	name, err := s.authenticate(r, pki.Want{Types: []pki.IDType{pki.Member},
		ServiceID: claimed.ServiceID, ServiceCA: serviceCA})
	if err != nil {
		return err
	}
	return s.register(w, r, name)
}
