package pod

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/pki"
)

// Requester is who sent a request, as the pod established it.
type Requester struct {
	// Type is pki.Account, pki.Member or pki.Service; zero is anonymous.
	Type pki.IDType

	// ID is the account or member id.
	ID string

	// ServiceID is the service of a member or service.
	ServiceID uint32

	// Token says the requester proved itself with a JWT rather than a
	// client certificate.
	Token bool
}

// requesterKey keys the requester the pod port's middleware verified in a
// request's context, so that handlers do not verify the chain again.
type requesterKey struct{}

// requester authenticates a request: a client certificate of the network on
// the pod port, a JWT the pod issued on either port, the web page's session
// cookie on the HTTPS port, or nobody. A credential that is present but not
// good is an error.
func (p *Pod) requester(r *http.Request) (Requester, error) {
	if who, ok := r.Context().Value(requesterKey{}).(Requester); ok {
		return who, nil
	}
	if certs := peerCertificates(r); len(certs) > 0 {
		return p.certRequester(certs)
	}

	authz := r.Header.Get("Authorization")
	if authz == "" {
		return p.sessionRequester(r)
	}
	scheme, token, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return Requester{}, api.Errorf(http.StatusUnauthorized,
			"the Authorization header must be \"Bearer <token>\"")
	}
	return p.tokenRequester(strings.TrimSpace(token))
}

// certRequester verifies a client certificate chain: our own account, a
// member of a service we are a member of (under that service's own CA), or
// such a service.
func (p *Pod) certRequester(chain []*x509.Certificate) (Requester, error) {
	name, err := pki.ParseName(chain[0].Subject.CommonName, p.cfg.Network)
	if err != nil {
		return Requester{}, api.Errorf(http.StatusForbidden,
			"client certificate not accepted: %v", err)
	}

	want := pki.Want{Types: []pki.IDType{name.Type}, ServiceID: name.ServiceID,
		Usage: x509.ExtKeyUsageClientAuth}
	switch name.Type {
	case pki.Account:
	case pki.Member, pki.Service:
		m, ok := p.Membership(name.ServiceID)
		if !ok {
			return Requester{}, api.Errorf(http.StatusForbidden,
				"this pod is not a member of service %d", name.ServiceID)
		}
		want.ServiceCA = m.ServiceCA
	default:
		return Requester{}, api.Errorf(http.StatusForbidden,
			"a %v certificate cannot be used as a client certificate", name.Type)
	}

	if _, err := p.verifier.Verify(chain, want); err != nil {
		return Requester{}, api.Errorf(http.StatusForbidden,
			"client certificate not accepted: %v", err)
	}
	return Requester{Type: name.Type, ID: name.ID, ServiceID: name.ServiceID}, nil
}

// tokenRequester verifies a JWT. A pod accepts only tokens it issued: its
// account's, signed with the account TLS key, and its memberships',
// signed with their member data keys.
func (p *Pod) tokenRequester(token string) (Requester, error) {
	iss, err := auth.UnverifiedIssuer(token)
	if err != nil {
		return Requester{}, tokenError(err)
	}
	issuer := p.tokenIssuer()

	switch iss.Type {
	case auth.Account:
		if iss.ID.String() != p.cfg.AccountID {
			return Requester{}, api.Errorf(http.StatusUnauthorized,
				"the token was issued by another account")
		}
		p.mu.RLock()
		pub := p.account.key.Public()
		p.mu.RUnlock()
		if _, err := auth.Verify(token, pub, issuer.ExpectAccount(iss.ID)); err != nil {
			return Requester{}, tokenError(err)
		}
		return Requester{Type: pki.Account, ID: p.cfg.AccountID, Token: true}, nil

	case auth.Member:
		m := p.membershipByMember(iss.ID.String())
		if m == nil {
			return Requester{}, api.Errorf(http.StatusUnauthorized,
				"the token was issued by a member of another pod")
		}
		claims, err := auth.Verify(token, m.data.key.Public(),
			issuer.ExpectMember(iss.ID, m.ServiceID))
		if err != nil {
			return Requester{}, tokenError(err)
		}
		return Requester{Type: pki.Member, ID: m.MemberID, ServiceID: claims.ServiceID,
			Token: true}, nil
	}
	return Requester{}, api.Errorf(http.StatusUnauthorized, "unknown token issuer")
}

// tokenError maps a token problem to its status: a scope that does not
// cover the request is 403, everything else 401.
func tokenError(err error) error {
	status := http.StatusUnauthorized
	if errors.Is(err, auth.ErrWrongScope) {
		status = http.StatusForbidden
	}

	msg := "token not accepted"
	for _, e := range []error{auth.ErrExpired, auth.ErrNotYetValid, auth.ErrBadSignature,
		auth.ErrWrongAudience, auth.ErrWrongIssuer, auth.ErrWrongScope,
		auth.ErrLifetimeTooLong, auth.ErrMalformed} {
		if errors.Is(err, e) {
			msg += ": " + e.Error()
			break
		}
	}
	return api.Wrap(status, err, msg)
}

func (p *Pod) tokenIssuer() auth.Issuer {
	return auth.Issuer{Network: p.cfg.Network, Lifetime: p.cfg.TokenLifetime}
}

// membershipByMember returns the membership with member id id, or nil.
func (p *Pod) membershipByMember(id string) *Membership {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, m := range p.members {
		if m.MemberID == id {
			return m
		}
	}
	return nil
}

// requireAccount authenticates the pod's own account, by certificate or
// token.
func (p *Pod) requireAccount(r *http.Request) error {
	who, err := p.requester(r)
	if err != nil {
		return err
	}
	if who.Type == 0 {
		return api.Errorf(http.StatusUnauthorized,
			"authenticate with the account's client certificate or an account token")
	}
	if who.Type != pki.Account || who.ID != p.cfg.AccountID {
		return api.Errorf(http.StatusForbidden, "only this pod's account may do this")
	}
	return nil
}

// parseMemberUUID converts a member id to a UUID.
func parseMemberUUID(id string) uuid.UUID {
	u, _ := uuid.Parse(id)
	return u
}
