package pod

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
)

// due reports whether s expires within the renewal window.
func (p *Pod) due(s *secret) bool {
	return s.leaf().NotAfter.Sub(p.now()) < time.Duration(p.renewBefore.Load())
}

// renewDue renews every certificate of the pod that expires within the
// renewal window, with a new key each, while the pod keeps serving: a
// renewed certificate replaces the old one only once it is signed and saved.
func (p *Pod) renewDue(ctx context.Context) error {
	var errs []error
	if err := p.renewAccount(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, m := range p.Memberships() {
		if err := p.renewMember(ctx, m); err != nil {
			errs = append(errs, fmt.Errorf("service %d: %w", m.ServiceID, err))
		}
	}
	p.vhostsChanged(ctx)
	return errors.Join(errs...)
}

func (p *Pod) renewAccount(ctx context.Context) error {
	p.mu.RLock()
	account, data := p.account, p.accountData
	p.mu.RUnlock()
	paths, pw := p.paths, p.cfg.PrivateKeySecret

	if p.due(account) {
		renewed, err := p.newAccountSecret(ctx, pki.Account, account)
		if err != nil {
			return err
		}
		if err := p.checkAccount(renewed, pki.Account); err != nil {
			return err
		}
		if err := renewed.save(paths.AccountCert(), paths.AccountKey(), pw); err != nil {
			return err
		}
		p.mu.Lock()
		p.account = renewed
		p.mu.Unlock()
		account = renewed
		p.logger.Info("renewed account certificate", "not_after", renewed.leaf().NotAfter)
	}

	if p.due(data) {
		renewed, err := p.newAccountSecret(ctx, pki.AccountData, account)
		if err != nil {
			return err
		}
		if err := p.checkAccount(renewed, pki.AccountData); err != nil {
			return err
		}
		if err := renewed.save(paths.AccountDataCert(), paths.AccountDataKey(),
			pw); err != nil {
			return err
		}
		p.mu.Lock()
		p.accountData = renewed
		p.mu.Unlock()
		p.logger.Info("renewed account data certificate", "not_after",
			renewed.leaf().NotAfter)
	}
	return nil
}

func (p *Pod) renewMember(ctx context.Context, m *Membership) error {
	if !p.due(m.tls) && !p.due(m.data) {
		return nil
	}

	// A renewed membership is a copy, so that requests being served keep a
	// consistent view of the old one.
	next := *m
	name := pki.MemberName(p.cfg.Network, m.MemberID, m.ServiceID)
	if p.due(m.tls) {
		renewed, err := p.newMemberSecret(ctx, m, name, m.tls)
		if err != nil {
			return err
		}
		next.tls = renewed
	}
	if p.due(m.data) {
		dataName := pki.Name{Type: pki.MemberData, ID: m.MemberID, ServiceID: m.ServiceID,
			Network: p.cfg.Network}
		renewed, err := p.newMemberSecret(ctx, m, dataName, next.tls)
		if err != nil {
			return err
		}
		next.data = renewed
	}
	if err := p.checkMember(&next); err != nil {
		return err
	}

	sid, pw := m.ServiceID, p.cfg.PrivateKeySecret
	if err := next.tls.save(p.paths.MemberCert(sid), p.paths.MemberKey(sid), pw); err != nil {
		return err
	}
	if err := next.data.save(p.paths.MemberDataCert(sid), p.paths.MemberDataKey(sid),
		pw); err != nil {
		return err
	}

	p.mu.Lock()
	p.members[sid] = &next
	p.mu.Unlock()
	p.logger.Info("renewed member certificates", "service_id", sid,
		"not_after", next.tls.leaf().NotAfter)
	return p.registerMember(ctx, &next)
}

// clientCert returns s as a TLS client certificate.
func clientCert(s *secret) *tls.Certificate {
	c := s.tls()
	return &c
}
