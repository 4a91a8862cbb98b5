package pod

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/dataapi"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/service"
	"github.com/byoda/byoda-go/internal/store"
)

// Errors of the join flow that a client caused.
var (
	ErrAlreadyMember = errors.New("already a member")
	ErrNotMember     = errors.New("not a member")
	ErrWrongVersion  = errors.New("the service does not publish that version")
)

// Membership is the pod's membership of one service.
type Membership struct {
	ServiceID uint32
	MemberID  string

	// Contract is the accepted contract, with both signatures verified.
	Contract *contract.Contract

	// Network is the network's domain.
	Network string

	// ServiceCA anchors the certificates of the service's members, and
	// CAChain is the service CA, the services CA and the root.
	ServiceCA *x509.Certificate
	CAChain   []*x509.Certificate

	// ServiceData is the service data certificate that signed Contract.
	ServiceData []*x509.Certificate

	// Store holds the membership's data, and API serves it.
	Store *store.Store
	API   *dataapi.API

	tls  *secret
	data *secret
	doc  []byte
}

// Name returns the membership's DNS name.
func (m *Membership) Name() string {
	return pki.MemberName(m.Network, m.MemberID, m.ServiceID).String()
}

// serviceFiles names the files a membership keeps about its service.
type serviceFiles struct {
	contract, dataCert, caChain string
}

func (p *Pod) serviceFiles(sid uint32) serviceFiles {
	return serviceFiles{
		contract: filepath.Join(p.paths.MemberDir(sid), "service-contract.json"),
		dataCert: p.paths.ServiceDataCert(sid),
		caChain:  p.paths.ServiceCAChain(sid),
	}
}

// loadMemberships loads every complete membership under the account
// directory. A membership whose join did not finish has no contract file and
// is removed.
func (p *Pod) loadMemberships() error {
	entries, err := os.ReadDir(p.paths.AccountDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "service-")
		if !e.IsDir() || !ok {
			continue
		}
		sid, err := pki.ParseServiceID(rest)
		if err != nil {
			continue
		}

		m, err := p.loadMembership(sid)
		if errors.Is(err, os.ErrNotExist) {
			p.logger.Warn("removing an unfinished join", "service_id", sid)
			p.removeMembershipFiles(sid)
			continue
		}
		if err != nil {
			return fmt.Errorf("loading membership of service %d: %w", sid, err)
		}

		p.mu.Lock()
		p.members[sid] = m
		p.mu.Unlock()
		p.logger.Info("loaded membership", "service_id", sid, "member_id", m.MemberID,
			"version", m.Contract.Version)
	}
	return nil
}

func (p *Pod) loadMembership(sid uint32) (*Membership, error) {
	files := p.serviceFiles(sid)
	doc, err := os.ReadFile(files.contract)
	if err != nil {
		return nil, err
	}

	pw := p.cfg.PrivateKeySecret
	tlsSecret, err := loadSecret(p.paths.MemberCert(sid), p.paths.MemberKey(sid), pw)
	if err != nil || tlsSecret == nil {
		return nil, fmt.Errorf("member certificate: %w", errors.Join(err, os.ErrNotExist))
	}
	dataSecret, err := loadSecret(p.paths.MemberDataCert(sid), p.paths.MemberDataKey(sid), pw)
	if err != nil || dataSecret == nil {
		return nil, fmt.Errorf("member data certificate: %w",
			errors.Join(err, os.ErrNotExist))
	}
	dataCert, err := pki.LoadCerts(files.dataCert)
	if err != nil {
		return nil, err
	}
	caChain, err := pki.LoadCerts(files.caChain)
	if err != nil {
		return nil, err
	}

	m, err := p.checkService(sid, doc, dataCert, caChain)
	if err != nil {
		return nil, err
	}
	m.tls, m.data = tlsSecret, dataSecret
	if err := p.checkMember(m); err != nil {
		return nil, err
	}
	if m.Store, err = p.openStore(context.Background(), m); err != nil {
		return nil, err
	}
	p.newAPI(m)
	return m, nil
}

// newAPI gives m its Data API, which reaches the other pods of the network
// with m's current certificates.
func (p *Pod) newAPI(m *Membership) {
	sid := m.ServiceID
	current := func() *Membership {
		if cur, ok := p.Membership(sid); ok {
			return cur
		}
		return m
	}

	m.API = dataapi.New(sid, m.MemberID, m.Store, p.logger)
	m.API.Net = &dataapi.Network{
		Domain:    p.cfg.Network,
		PodPort:   p.cfg.PodPort,
		Root:      p.root,
		ServiceCA: m.ServiceCA,
		Dial:      p.dialer.DialContext,
		Cert:      func() *tls.Certificate { return clientCert(current().tls) },
		DataKey:   func() crypto.Signer { return current().data.key },
	}
}

// writeMemberObject records the membership in its own "member" object, as
// pods of the network expect to find it.
func (p *Pod) writeMemberObject(ctx context.Context, m *Membership) error {
	autoUpgrade := slices.Contains(p.cfg.JoinServiceIDs, m.ServiceID)
	_, err := m.Store.Mutate(ctx, "member", store.Record{
		"member_id":       m.MemberID,
		"joined":          p.now().UTC().Format(time.RFC3339Nano),
		"schema_versions": []any{strconv.Itoa(m.Contract.Version)},
		"auto_upgrade":    autoUpgrade,
	}, store.Origin{ID: m.MemberID, IDType: "members-"})
	if err != nil {
		return fmt.Errorf("writing the member object of service %d: %w", m.ServiceID, err)
	}
	return nil
}

// dataStorePath is where a membership's data lives, in the reference's
// layout.
func (p *Pod) dataStorePath(m *Membership) string {
	net := p.cfg.Network
	return filepath.Join(p.paths.PrivateDir(), "network-"+net, "account-pod", "data",
		fmt.Sprintf("network-%s-member-%s", net, m.MemberID),
		fmt.Sprintf("data-%d-%s.db", m.ServiceID, m.MemberID))
}

// openStore opens, creating it when needed, the data store of m.
func (p *Pod) openStore(ctx context.Context, m *Membership) (*store.Store, error) {
	path := p.dataStorePath(m)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the data store of service %d: %w", m.ServiceID, err)
	}
	return store.Open(ctx, path, m.Contract, p.logger)
}

// checkService verifies what a service published: its CA chain under the
// network root, its data certificate under its own CA, and both signatures
// of its contract. It returns a membership without member secrets.
func (p *Pod) checkService(sid uint32, doc []byte, dataChain, caChain []*x509.Certificate,
) (*Membership, error) {
	if _, err := p.verifier.Verify(caChain, pki.Want{Types: []pki.IDType{pki.ServiceCA},
		ServiceID: sid}); err != nil {
		return nil, fmt.Errorf("service CA chain: %w", err)
	}
	serviceCA := caChain[0]

	if _, err := p.verifier.Verify(dataChain, pki.Want{Types: []pki.IDType{pki.ServiceData},
		ServiceID: sid, ServiceCA: serviceCA}); err != nil {
		return nil, fmt.Errorf("service data certificate: %w", err)
	}
	if err := contract.Verify(doc, contract.SignerService, dataChain[0]); err != nil {
		return nil, err
	}
	if err := contract.Verify(doc, contract.SignerNetwork, p.netData); err != nil {
		return nil, err
	}

	c, err := contract.Parse(doc)
	if err != nil {
		return nil, err
	}
	if c.ServiceID != sid {
		return nil, fmt.Errorf("the contract is for service %d, not %d", c.ServiceID, sid)
	}
	return &Membership{ServiceID: sid, Network: p.cfg.Network, Contract: c,
		ServiceCA: serviceCA, CAChain: caChain, ServiceData: dataChain, doc: doc}, nil
}

// checkMember verifies that the membership's certificates are one member of
// its service, under the service's own CA.
func (p *Pod) checkMember(m *Membership) error {
	want := pki.Want{ServiceID: m.ServiceID, ServiceCA: m.ServiceCA}
	want.Types = []pki.IDType{pki.Member}
	name, err := p.verifier.Verify(m.tls.chain, want)
	if err != nil {
		return fmt.Errorf("member certificate: %w", err)
	}
	want.Types = []pki.IDType{pki.MemberData}
	dataName, err := p.verifier.Verify(m.data.chain, want)
	if err != nil {
		return fmt.Errorf("member data certificate: %w", err)
	}
	if dataName.ID != name.ID {
		return fmt.Errorf("member data certificate is for member %s, not %s", dataName.ID,
			name.ID)
	}
	m.MemberID = name.ID
	return nil
}

// serviceClient returns a client of service sid's server, presenting cert
// when set.
func (p *Pod) serviceClient(sid uint32, cert *tls.Certificate) (*service.Client, error) {
	host := pki.NewName(pki.Service, p.cfg.Network, sid).String()
	return service.NewClient(service.ClientConfig{
		Network:     p.cfg.Network,
		ServiceID:   sid,
		URL:         "https://" + hostPort(host, p.cfg.ServicePort),
		Root:        p.root,
		Certificate: cert,
		Dial:        p.dialer.DialContext,
	})
}

// Join makes the pod a member of service sid at contract version: it
// downloads and verifies the contract, has the service sign new member
// certificates, registers with the service and the directory, and serves
// the membership at once. On any failure nothing is kept.
func (p *Pod) Join(ctx context.Context, sid uint32, version int) (*Membership, error) {
	p.joinMu.Lock()
	defer p.joinMu.Unlock()
	if _, ok := p.Membership(sid); ok {
		return nil, fmt.Errorf("service %d: %w", sid, ErrAlreadyMember)
	}

	m, err := p.fetchService(ctx, sid)
	if err != nil {
		return nil, err
	}
	if m.Contract.Version != version {
		return nil, fmt.Errorf("service %d publishes version %d, not %d: %w", sid,
			m.Contract.Version, version, ErrWrongVersion)
	}

	if err := p.newMemberSecrets(ctx, m); err != nil {
		return nil, err
	}
	if err := p.registerMember(ctx, m); err != nil {
		return nil, err
	}
	if m.Store, err = p.openStore(ctx, m); err != nil {
		return nil, err
	}
	p.newAPI(m)
	if err := p.writeMemberObject(ctx, m); err == nil {
		err = p.saveMembership(m)
	}
	if err != nil {
		m.Store.Close()
		p.removeMembershipFiles(sid)
		os.RemoveAll(filepath.Dir(p.dataStorePath(m)))
		return nil, err
	}

	p.mu.Lock()
	p.members[sid] = m
	p.mu.Unlock()
	p.logger.Info("joined service", "service_id", sid, "member_id", m.MemberID,
		"version", version)
	p.vhostsChanged(ctx)
	return m, nil
}

// fetchService downloads and checks what service sid publishes.
func (p *Pod) fetchService(ctx context.Context, sid uint32) (*Membership, error) {
	svc, err := p.serviceClient(sid, nil)
	if err != nil {
		return nil, err
	}
	doc, err := svc.Contract(ctx)
	if err != nil {
		return nil, fmt.Errorf("downloading the contract of service %d: %w", sid, err)
	}
	dataChain, err := svc.DataCert(ctx)
	if err != nil {
		return nil, fmt.Errorf("downloading the data certificate of service %d: %w", sid, err)
	}
	caChain, err := svc.CAChain(ctx)
	if err != nil {
		return nil, fmt.Errorf("downloading the CA chain of service %d: %w", sid, err)
	}
	return p.checkService(sid, doc, dataChain, caChain)
}

// newMemberSecrets makes a member id and keys and has the service sign
// them: the TLS certificate first, then the data certificate with the TLS
// certificate as the client's.
func (p *Pod) newMemberSecrets(ctx context.Context, m *Membership) error {
	m.MemberID = uuid.NewString()
	name := pki.MemberName(p.cfg.Network, m.MemberID, m.ServiceID)

	tlsSecret, err := p.newMemberSecret(ctx, m, name, nil)
	if err != nil {
		return err
	}
	m.tls = tlsSecret

	dataName := pki.Name{Type: pki.MemberData, ID: m.MemberID, ServiceID: m.ServiceID,
		Network: p.cfg.Network}
	if m.data, err = p.newMemberSecret(ctx, m, dataName, tlsSecret); err != nil {
		return err
	}
	return p.checkMember(m)
}

// newMemberSecret makes a key for name and has m's service sign it; client,
// when set, authenticates the request.
func (p *Pod) newMemberSecret(ctx context.Context, m *Membership, name pki.Name,
	client *secret) (*secret, error) {
	return newSecret(name, func(csr []byte) (string, string, error) {
		svc, err := p.serviceClient(m.ServiceID, clientCertOf(client))
		if err != nil {
			return "", "", err
		}
		reply, err := svc.SignMemberCSR(ctx, csr)
		return reply.SignedCert, reply.CertChain, err
	})
}

// registerMember registers the membership with its service and records its
// address with the directory.
func (p *Pod) registerMember(ctx context.Context, m *Membership) error {
	cert := m.tls.tls()
	svc, err := p.serviceClient(m.ServiceID, &cert)
	if err != nil {
		return err
	}
	if _, err := svc.RegisterMember(ctx, m.Contract.Version,
		pki.EncodeCertChain(m.data.chain...)); err != nil {
		return fmt.Errorf("registering with service %d: %w", m.ServiceID, err)
	}

	dir, err := p.directory(&cert)
	if err != nil {
		return err
	}
	if _, err := dir.RegisterMember(ctx); err != nil {
		return fmt.Errorf("registering member of service %d with the directory: %w",
			m.ServiceID, err)
	}
	return nil
}

// saveMembership writes a membership's files; the contract, written last,
// marks the membership complete.
func (p *Pod) saveMembership(m *Membership) error {
	sid, pw := m.ServiceID, p.cfg.PrivateKeySecret
	files := p.serviceFiles(sid)

	if err := m.tls.save(p.paths.MemberCert(sid), p.paths.MemberKey(sid), pw); err != nil {
		return err
	}
	if err := m.data.save(p.paths.MemberDataCert(sid), p.paths.MemberDataKey(sid),
		pw); err != nil {
		return err
	}
	if err := pki.SaveCertChain(files.dataCert, m.ServiceData...); err != nil {
		return err
	}
	if err := pki.SaveCertChain(files.caChain, m.CAChain...); err != nil {
		return err
	}
	return pki.WriteFile(files.contract, m.doc, 0o644)
}

// removeMembershipFiles removes what a membership of sid wrote.
func (p *Pod) removeMembershipFiles(sid uint32) {
	for _, f := range []string{p.paths.MemberKey(sid), p.paths.MemberDataKey(sid)} {
		os.Remove(f)
	}
	os.RemoveAll(p.paths.MemberDir(sid))
}

// Membership returns the membership of service sid.
func (p *Pod) Membership(sid uint32) (*Membership, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	m, ok := p.members[sid]
	return m, ok
}
