package directory

import (
	"crypto/x509"
	"net/http"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/pki"
)

// peerChain returns the certificates the client sent, leaf first, or nil.
func peerChain(r *http.Request) []*x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates
}

// authenticate verifies the client's certificate chain against want. It
// answers 401 when the client sent none and 403 when the one it sent is not
// acceptable.
func (s *Server) authenticate(r *http.Request, want pki.Want) (pki.Name, error) {
	chain := peerChain(r)
	if chain == nil {
		return pki.Name{}, api.Errorf(http.StatusUnauthorized,
			"a TLS client certificate is required for this request")
	}

	want.Usage = x509.ExtKeyUsageClientAuth
	name, err := s.verifier.Verify(chain, want)
	if err != nil {
		return pki.Name{}, api.Errorf(http.StatusForbidden,
			"client certificate not accepted: %v", err)
	}
	return name, nil
}

// register records the client's address as the address of name and answers
// with it.
func (s *Server) register(w http.ResponseWriter, r *http.Request, name pki.Name) error {
	addr, err := api.ClientAddr(r)
	if err != nil {
		return err
	}

	if err := s.store.SetAddress(r.Context(), name.String(), addr); err != nil {
		return err
	}

	s.logger.Info("registered address", "name", name.String(), "address", addr.String())
	api.WriteJSON(w, http.StatusOK, api.NewAddressReply(addr))
	return nil
}
