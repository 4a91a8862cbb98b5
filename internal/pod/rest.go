package pod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/pki"
)

// lookupTimeout bounds the directory look-ups a request makes.
const lookupTimeout = 10 * time.Second

// serviceInfo is one service in the account's overview.
type serviceInfo struct {
	ServiceID               uint32 `json:"service_id"`
	Name                    string `json:"name"`
	LatestContractVersion   *int   `json:"latest_contract_version"`
	Member                  bool   `json:"member"`
	AcceptedContractVersion *int   `json:"accepted_contract_version"`
}

// getAccount describes the account and the services of the network. Unlike
// the reference, it carries no secrets.
func (p *Pod) getAccount(w http.ResponseWriter, r *http.Request) error {
	if err := p.requireAccount(r); err != nil {
		return err
	}

	services := map[uint32]*serviceInfo{}
	for _, m := range p.Memberships() {
		v := m.Contract.Version
		services[m.ServiceID] = &serviceInfo{ServiceID: m.ServiceID, Name: m.Contract.Name,
			Member: true, AcceptedContractVersion: &v}
	}
	listed, err := p.listServices(r.Context())
	if err != nil {
		p.logger.Warn("listing services for the account overview", "err", err)
	}
	for _, s := range listed {
		v := s.Version
		info, ok := services[s.ServiceID]
		if !ok {
			info = &serviceInfo{ServiceID: s.ServiceID, Name: s.Name}
			services[s.ServiceID] = info
		}
		info.LatestContractVersion = &v
	}

	list := make([]*serviceInfo, 0, len(services))
	for _, s := range services {
		list = append(list, s)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"account_id":     p.cfg.AccountID,
		"network":        p.cfg.Network,
		"started":        p.started.UTC().Format(time.RFC3339),
		"cloud":          "LOCAL",
		"root_directory": p.cfg.RootDir,
		"services":       list,
	})
	return nil
}

func (p *Pod) listServices(ctx context.Context) ([]directory.ServiceSummary, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	dir, err := p.directory(nil)
	if err != nil {
		return nil, err
	}
	return dir.Services(ctx)
}

// memberResponse describes a membership. Unlike the reference, it carries
// no private key.
func (p *Pod) memberResponse(m *Membership) map[string]any {
	c := m.Contract
	return map[string]any{
		"account_id":   p.cfg.AccountID,
		"network":      p.cfg.Network,
		"member_id":    m.MemberID,
		"service_id":   m.ServiceID,
		"version":      c.Version,
		"name":         c.Name,
		"owner":        c.Owner,
		"website":      c.Website,
		"supportemail": c.SupportEmail,
		"description":  c.Description,
		"certificate":  string(pki.EncodeCertChain(m.tls.chain...)),
	}
}

func pathServiceID(r *http.Request) (uint32, error) {
	sid, err := pki.ParseServiceID(r.PathValue("sid"))
	if err != nil {
		return 0, api.Errorf(http.StatusBadRequest, "%v", err)
	}
	return sid, nil
}

func pathVersion(r *http.Request) (int, error) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return 0, api.Errorf(http.StatusBadRequest,
			"version must be a whole number of 1 or more")
	}
	return v, nil
}

// accountRequest authenticates the account and reads the {sid} path value.
func (p *Pod) accountRequest(r *http.Request) (uint32, error) {
	if err := p.requireAccount(r); err != nil {
		return 0, err
	}
	return pathServiceID(r)
}

// accountMembership authenticates the account and returns the membership
// the {sid} path value names.
func (p *Pod) accountMembership(r *http.Request) (*Membership, error) {
	sid, err := p.accountRequest(r)
	if err != nil {
		return nil, err
	}
	m, ok := p.Membership(sid)
	if !ok {
		return nil, api.Errorf(http.StatusNotFound, "not a member of service %d", sid)
	}
	return m, nil
}

func (p *Pod) getMember(w http.ResponseWriter, r *http.Request) error {
	m, err := p.accountMembership(r)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, p.memberResponse(m))
	return nil
}

// postMember joins a service at a version the directory lists.
func (p *Pod) postMember(w http.ResponseWriter, r *http.Request) error {
	sid, err := p.accountRequest(r)
	if err != nil {
		return err
	}
	version, err := pathVersion(r)
	if err != nil {
		return err
	}
	if _, ok := p.Membership(sid); ok {
		return api.Errorf(http.StatusConflict, "already a member of service %d", sid)
	}
	if err := p.checkListed(r.Context(), sid, version); err != nil {
		return err
	}

	m, err := p.Join(r.Context(), sid, version)
	if err != nil {
		return joinError(sid, err)
	}
	api.WriteJSON(w, http.StatusOK, p.memberResponse(m))
	return nil
}

// checkListed checks that the directory lists service sid at version.
func (p *Pod) checkListed(ctx context.Context, sid uint32, version int) error {
	services, err := p.listServices(ctx)
	if err != nil {
		return api.Wrap(http.StatusBadGateway, err, "the directory could not be reached")
	}
	for _, s := range services {
		if s.ServiceID != sid {
			continue
		}
		if s.Version != version {
			return api.Errorf(http.StatusNotFound, "service %d is at version %d, not %d",
				sid, s.Version, version)
		}
		return nil
	}
	return api.Errorf(http.StatusNotFound, "the network has no service %d", sid)
}

// joinError maps a failed join to a status: the pod's own refusals are the
// client's problem, a service that could not be reached or that published
// something that does not verify is the service's.
func joinError(sid uint32, err error) error {
	var se *api.StatusError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrAlreadyMember):
		return api.Errorf(http.StatusConflict, "already a member of service %d", sid)
	case errors.Is(err, ErrWrongVersion):
		return api.Wrap(http.StatusNotFound, err, err.Error())
	case errors.As(err, &se):
		return api.Wrap(http.StatusBadGateway, err,
			fmt.Sprintf("service %d refused: %s", sid, se.Detail))
	case errors.As(err, &dnsErr):
		return api.Wrap(http.StatusNotFound, err,
			fmt.Sprintf("service %d cannot be found", sid))
	case errors.Is(err, pki.ErrUntrusted), isSignatureError(err):
		return api.Wrap(http.StatusBadGateway, err,
			fmt.Sprintf("service %d published something that does not verify: %v", sid, err))
	}
	return api.Wrap(http.StatusBadGateway, err,
		fmt.Sprintf("joining service %d failed", sid))
}

// putMember re-registers a membership at its version, or moves it to a
// newer version the service publishes.
func (p *Pod) putMember(w http.ResponseWriter, r *http.Request) error {
	m, err := p.accountMembership(r)
	if err != nil {
		return err
	}
	sid := m.ServiceID
	version, err := pathVersion(r)
	if err != nil {
		return err
	}

	switch {
	case version < m.Contract.Version:
		return api.Errorf(http.StatusConflict,
			"version %d is older than the accepted version %d", version, m.Contract.Version)
	case version > m.Contract.Version:
		if m, err = p.upgrade(r.Context(), m, version); err != nil {
			return joinError(sid, err)
		}
	}

	if err := p.registerMember(r.Context(), m); err != nil {
		return joinError(sid, err)
	}
	api.WriteJSON(w, http.StatusOK, p.memberResponse(m))
	return nil
}

// upgrade accepts a newer contract of a membership's service.
func (p *Pod) upgrade(ctx context.Context, m *Membership, version int) (*Membership, error) {
	p.joinMu.Lock()
	defer p.joinMu.Unlock()

	fresh, err := p.fetchService(ctx, m.ServiceID)
	if err != nil {
		return nil, err
	}
	if fresh.Contract.Version != version {
		return nil, fmt.Errorf("service %d publishes version %d, not %d: %w", m.ServiceID,
			fresh.Contract.Version, version, ErrWrongVersion)
	}

	if err := m.Store.Upgrade(ctx, fresh.Contract); err != nil {
		return nil, err
	}
	next := *m
	next.Contract, next.doc = fresh.Contract, fresh.doc
	next.ServiceData, next.CAChain, next.ServiceCA = fresh.ServiceData, fresh.CAChain,
		fresh.ServiceCA
	if err := p.checkMember(&next); err != nil {
		return nil, err
	}
	if err := p.saveMembership(&next); err != nil {
		return nil, err
	}

	p.mu.Lock()
	p.members[m.ServiceID] = &next
	p.mu.Unlock()
	p.logger.Info("accepted new contract version", "service_id", m.ServiceID,
		"version", version)
	return &next, nil
}

// tokenRequest is the body of the login endpoint.
type tokenRequest struct {
	Username   string  `json:"username"`
	Password   string  `json:"password"`
	TargetType string  `json:"target_type"`
	ServiceID  *uint32 `json:"service_id"`
}

// postAuthToken logs in with the account's username and password and
// returns an account or member token. Failed attempts are slowed down per
// client address.
func (p *Pod) postAuthToken(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := api.DecodeJSON(w, r, 4<<10, &req); err != nil {
		return err
	}
	if err := p.checkLogin(w, r, req); err != nil {
		return err
	}
	return p.issueToken(w, req)
}

// checkLogin checks req's username and password. Failed attempts are
// slowed down per client address; a client told to wait gets Retry-After.
func (p *Pod) checkLogin(w http.ResponseWriter, r *http.Request, req tokenRequest) error {
	if p.cfg.Password == (auth.Password{}) {
		return api.Errorf(http.StatusForbidden,
			"password login is disabled: ACCOUNT_SECRET is not set")
	}

	addr, err := api.ClientAddr(r)
	if err != nil {
		return err
	}
	now := p.now()
	if wait, ok := p.throttle.Allow(addr, now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return api.Errorf(http.StatusTooManyRequests,
			"too many failed logins; try again in %s", wait.Round(time.Second))
	}

	// An argon2id check takes tens of megabytes: two at a time at most.
	select {
	case p.checking <- struct{}{}:
	case <-r.Context().Done():
		return api.Errorf(http.StatusServiceUnavailable, "the request was cancelled")
	}
	ok := p.credentialsMatch(req)
	<-p.checking

	if !ok {
		p.throttle.Failure(addr, now)
		p.logger.Info("failed login", "client", addr.String())
		return api.Errorf(http.StatusUnauthorized, "wrong username or password")
	}
	p.throttle.Success(addr)
	return nil
}

// credentialsMatch checks the username and, always, the password, so that
// a wrong username costs as much as a wrong password.
func (p *Pod) credentialsMatch(req tokenRequest) bool {
	passwordOK := p.cfg.Password.Check(req.Password)
	userOK := req.Username == p.cfg.Username
	if req.ServiceID != nil {
		if m, ok := p.Membership(*req.ServiceID); ok && req.Username == m.MemberID[:8] {
			userOK = true
		}
	}
	return passwordOK && userOK
}

func (p *Pod) issueToken(w http.ResponseWriter, req tokenRequest) error {
	switch req.TargetType {
	case "accounts":
		return p.writeAccountToken(w)
	case "", "members-", "service-":
		if req.ServiceID == nil {
			return api.Errorf(http.StatusBadRequest,
				"service_id is required for a member token")
		}
		m, ok := p.Membership(*req.ServiceID)
		if !ok {
			return api.Errorf(http.StatusUnauthorized, "not a member of service %d",
				*req.ServiceID)
		}
		if req.TargetType == "service-" {
			return p.writeServiceToken(w, m)
		}
		return p.writeMemberToken(w, m)
	}
	return api.Errorf(http.StatusBadRequest,
		"target_type must be \"accounts\", \"members-\" or \"service-\", not %q",
		req.TargetType)
}

// accountToken signs a token of the pod's account.
func (p *Pod) accountToken() (string, error) {
	p.mu.RLock()
	key := p.account.key
	p.mu.RUnlock()

	claims := p.tokenIssuer().AccountClaims(parseMemberUUID(p.cfg.AccountID), p.now())
	token, err := auth.Sign(key, claims)
	if err != nil {
		return "", fmt.Errorf("signing account token: %w", err)
	}
	return token, nil
}

func (p *Pod) writeAccountToken(w http.ResponseWriter) error {
	token, err := p.accountToken()
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"auth_token": token,
		"account_id": p.cfg.AccountID, "id_type": "accounts"})
	return nil
}

func (p *Pod) writeMemberToken(w http.ResponseWriter, m *Membership) error {
	claims := p.tokenIssuer().MemberClaims(parseMemberUUID(m.MemberID), m.ServiceID, p.now())
	token, err := auth.Sign(m.data.key, claims)
	if err != nil {
		return fmt.Errorf("signing member token: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"auth_token": token,
		"member_id": m.MemberID, "id_type": "members-"})
	return nil
}

// writeServiceToken issues a token the member presents to its service,
// signed with the member TLS key, whose certificate the service knows.
func (p *Pod) writeServiceToken(w http.ResponseWriter, m *Membership) error {
	claims := p.tokenIssuer().ServiceClaims(parseMemberUUID(m.MemberID), m.ServiceID,
		p.now())
	token, err := auth.Sign(m.tls.key, claims)
	if err != nil {
		return fmt.Errorf("signing service token: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"auth_token": token,
		"member_id": m.MemberID, "id_type": "service-"})
	return nil
}

// postMemberToken gives the account a token of one of its memberships.
func (p *Pod) postMemberToken(w http.ResponseWriter, r *http.Request) error {
	m, err := p.accountMembership(r)
	if err != nil {
		return err
	}
	return p.writeMemberToken(w, m)
}

// isSignatureError reports whether err is a contract that does not verify
// or does not parse.
func isSignatureError(err error) bool {
	var ve *contract.ValidationError
	return errors.Is(err, contract.ErrSignature) || errors.Is(err, contract.ErrMalformed) ||
		errors.As(err, &ve)
}
