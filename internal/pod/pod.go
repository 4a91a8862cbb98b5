// Package pod is a person's personal data store: it holds the account's
// certificates and its memberships of services, registers them with the
// network, and serves them on two ports, one for browsers and JWT clients
// and one for other pods and services, which must present a certificate of
// the network.
package pod

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/domaincert"
	"github.com/byoda/byoda-go/internal/pki"
)

// maintenanceInterval is how often the pod checks its registrations and the
// expiry of its certificates; retryInterval is how soon it tries again after
// a registration failed.
const (
	maintenanceInterval = time.Hour
	retryInterval       = time.Minute
)

// Cache-only rows are dropped every expiryInterval, expiryMargin before
// they expire.
const (
	expiryInterval = 5 * time.Minute
	expiryMargin   = 15 * time.Minute
)

// Pod is a running pod.
type Pod struct {
	cfg    Config
	paths  pki.Paths
	logger *slog.Logger
	dialer *dialer
	now    func() time.Time

	root       *x509.Certificate
	netData    *x509.Certificate
	verifier   *pki.Verifier
	throttle   *auth.Throttle
	checking   chan struct{} // limits concurrent password checks
	started    time.Time
	ready      atomic.Bool
	registered atomic.Bool

	// renewBefore is cfg.RenewBefore, changeable while the pod runs.
	renewBefore atomic.Int64

	// shared is set while the pod serves behind a shared web server.
	shared *sharedServer

	// domain is the custom domain's certificate source, set by listen.
	domain *domaincert.Source

	joinMu      sync.Mutex // serialises joins
	mu          sync.RWMutex
	account     *secret
	accountData *secret
	members     map[uint32]*Membership
}

// New returns a pod for cfg, which must have passed Validate.
func New(cfg Config, logger *slog.Logger) *Pod {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pod{
		cfg:      cfg,
		paths:    cfg.Paths(),
		logger:   logger,
		dialer:   newDialer(cfg.BindAddress, cfg.DNSServer),
		now:      time.Now,
		throttle: auth.NewThrottle(auth.ThrottleConfig{}),
		checking: make(chan struct{}, 2),
		members:  map[uint32]*Membership{},
	}
	p.renewBefore.Store(int64(cfg.RenewBefore))
	return p
}

// Bootstrap loads the pod's identity, creating it on first start, and its
// memberships. It is idempotent: a restart loads what exists and never
// makes a second identity.
func (p *Pod) Bootstrap(ctx context.Context) error {
	if err := p.pinRoot(ctx); err != nil {
		return err
	}
	if err := p.loadNetworkData(ctx); err != nil {
		return err
	}
	if err := p.loadAccount(ctx); err != nil {
		return err
	}
	return p.loadMemberships()
}

// register records the account's and every membership's address with the
// directory and the services, and joins the services of JoinServiceIDs that
// the pod is not a member of yet.
func (p *Pod) register(ctx context.Context) error {
	errs := []error{p.registerAccount(ctx)}

	for _, m := range p.Memberships() {
		if err := p.registerMember(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}

	for _, sid := range p.cfg.JoinServiceIDs {
		if _, ok := p.Membership(sid); ok {
			continue
		}
		if err := p.joinListed(ctx, sid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// joinListed joins service sid at the version the directory lists.
func (p *Pod) joinListed(ctx context.Context, sid uint32) error {
	dir, err := p.directory(nil)
	if err != nil {
		return err
	}
	services, err := dir.Services(ctx)
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}

	for _, s := range services {
		if s.ServiceID == sid {
			_, err := p.Join(ctx, sid, s.Version)
			return err
		}
	}
	return fmt.Errorf("JOIN_SERVICE_IDS: the directory lists no service %d", sid)
}

// Memberships returns the pod's memberships.
func (p *Pod) Memberships() []*Membership {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*Membership, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, m)
	}
	return out
}

// Run bootstraps the pod and serves it until ctx ends. ready, when set, is
// called with the two listeners' addresses once they are bound.
func (p *Pod) Run(ctx context.Context, ready func(https, pod net.Addr)) error {
	p.started = p.now()
	if err := p.Bootstrap(ctx); err != nil {
		return errors.Join(err, p.closeStores())
	}

	srv, err := p.listen(ctx)
	if err != nil {
		return errors.Join(err, p.closeStores())
	}
	errs := srv.serve()
	p.logger.Info("pod started", "account_id", p.cfg.AccountID,
		"https", srv.https.Addr().String(), "pod", srv.pod.Addr().String())

	maintCtx, stopMaint := context.WithCancel(ctx)
	maintDone := make(chan struct{})
	go func() {
		defer close(maintDone)
		p.maintain(maintCtx)
	}()
	expireDone := make(chan struct{})
	go func() {
		defer close(expireDone)
		p.expireCaches(maintCtx)
	}()
	p.ready.Store(true)
	if ready != nil {
		ready(srv.https.Addr(), srv.pod.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	stopMaint()
	<-maintDone
	<-expireDone

	err = errors.Join(srv.shutdown(), p.closeStores())
	p.logger.Info("pod stopped")
	return errors.Join(runErr, err)
}

// maintain registers the pod at start and then keeps its registrations and
// certificates fresh until ctx ends.
func (p *Pod) maintain(ctx context.Context) {
	for {
		wait := maintenanceInterval
		if err := p.register(ctx); ctx.Err() != nil {
			return
		} else if err != nil {
			wait = retryInterval
			p.registered.Store(false)
			p.logger.Warn("registration incomplete; trying again", "err", err,
				"retry_in", wait)
		} else {
			p.registered.Store(true)
		}
		if err := p.renewDue(ctx); ctx.Err() != nil {
			return
		} else if err != nil {
			wait = retryInterval
			p.logger.Warn("certificate renewal failed; trying again", "err", err,
				"retry_in", wait)
		}

		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// closeStores closes the data stores of every membership.
func (p *Pod) closeStores() error {
	var errs []error
	for _, m := range p.Memberships() {
		if m.API != nil {
			m.API.Close()
		}
		if m.Store != nil {
			errs = append(errs, m.Store.Close())
		}
	}
	return errors.Join(errs...)
}

// expireCaches drops the expired rows of every membership's cache-only
// classes until ctx ends.
func (p *Pod) expireCaches(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(expiryInterval):
		}
		for _, m := range p.Memberships() {
			n, err := m.Store.Expire(ctx, p.now().Add(expiryMargin))
			if err != nil && ctx.Err() == nil {
				p.logger.Warn("expiring cached rows failed", "service_id", m.ServiceID,
					"err", err)
			} else if n > 0 {
				p.logger.Debug("expired cached rows", "service_id", m.ServiceID, "rows", n)
			}
		}
	}
}
