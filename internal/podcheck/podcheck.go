// Package podcheck diagnoses a pod from its ROOT_DIR and its settings, as
// the person running it needs to know: whether its files and keys are
// there and open, whether its certificate chains verify and for how long,
// whether the DNS names of the account and of each membership lead to this
// machine, whether the ports answer at the address DNS gives, and whether
// the directory and each service know the pod. Every check gives one
// Result, and a Result that is not OK says what to fix.
//
// The checks read; they change nothing, and they run whether or not the
// pod does. Ports are tested at the address DNS answers, as a peer on the
// network would reach them, not on loopback; from the pod's own machine
// that cannot prove that the internet reaches a private address or gets
// through a NAT, and the results say so.
package podcheck

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/pod"
)

// Status is the outcome of a check.
type Status int

// The outcomes, from good to bad.
const (
	OK Status = iota
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	}
	return "FAIL"
}

// Result is the outcome of one check.
type Result struct {
	// Check names what was checked, such as "port 444" or "dns NAME".
	Check string

	Status Status

	// Detail says what was found.
	Detail string

	// Fix, for a result that is not OK, says what to do.
	Fix string
}

// String formats r as one line: status, check, detail and fix.
func (r Result) String() string {
	s := fmt.Sprintf("%-4s  %s: %s", r.Status, r.Check, r.Detail)
	if r.Fix != "" {
		s += ". Fix: " + r.Fix
	}
	return s
}

// Count returns how many of results have status s.
func Count(results []Result, s Status) int {
	n := 0
	for _, r := range results {
		if r.Status == s {
			n++
		}
	}
	return n
}

// Defaults of Config.
const (
	// DefaultTimeout bounds each network probe.
	DefaultTimeout = 5 * time.Second

	// RenewWarning is how close to expiry a certificate of the network
	// draws a warning: the pod renews them 30 days before they expire,
	// so one this close means renewal is failing.
	RenewWarning = 30 * 24 * time.Hour

	// CustomDomainWarning is how close to expiry the custom domain's
	// certificate draws a warning. Renewers such as certbot act 30 days
	// before expiry, from a job that may run only monthly, so the margin
	// is shorter.
	CustomDomainWarning = 14 * 24 * time.Hour
)

// Config configures Run.
type Config struct {
	// Pod is the pod's configuration, as the pod reads it; its AccountID
	// may be empty when ROOT_DIR names none.
	Pod pod.Config

	// PublicNetwork says the network is on the internet, where other pods
	// cannot reach a private address.
	PublicNetwork bool

	// Now is the clock [time.Now].
	Now func() time.Time

	// Timeout bounds each network probe [DefaultTimeout].
	Timeout time.Duration

	// LocalAddrs returns the addresses of this machine
	// [net.InterfaceAddrs].
	LocalAddrs func() ([]netip.Addr, error)
}

// Run checks the pod of cfg and returns the results in the order they
// were checked. A check that cannot run, because what it needs failed an
// earlier check, is left out or reported as not checked.
func Run(ctx context.Context, cfg Config) []Result {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LocalAddrs == nil {
		cfg.LocalAddrs = interfaceAddrs
	}
	c := &checker{cfg: cfg, paths: cfg.Pod.Paths(), resolver: newResolver(cfg.Pod.DNSServer,
		cfg.Timeout)}
	c.run(ctx)
	return c.results
}

// checker holds what the checks learn for the checks after them.
type checker struct {
	cfg      Config
	paths    pki.Paths
	resolver *net.Resolver
	results  []Result

	local    []netip.Addr
	root     *x509.Certificate
	verifier *pki.Verifier

	account     identity
	accountData identity
	members     []*member
}

// identity is a certificate chain of the pod and its key, when it opened.
type identity struct {
	chain []*x509.Certificate
	key   crypto.Signer
}

// member is a membership found in ROOT_DIR.
type member struct {
	sid       uint32
	id        string
	name      string
	tls, data identity
	serviceCA *x509.Certificate
}

func (c *checker) add(check string, s Status, detail, fix string) {
	c.results = append(c.results, Result{Check: check, Status: s, Detail: detail, Fix: fix})
}

func (c *checker) run(ctx context.Context) {
	if !c.checkFiles() || !c.checkRoot() {
		return
	}
	c.loadMembers()
	c.checkKeys()
	c.checkChains()

	var err error
	if c.local, err = c.cfg.LocalAddrs(); err != nil {
		c.add("addresses", Warn, fmt.Sprintf("cannot list this machine's addresses: %v",
			err), "")
	}
	c.checkDirectory(ctx)
	accountAddr, ok := c.checkDNS(ctx, "dns account", c.accountName())
	c.checkPorts(ctx, accountAddr, ok)
	for _, m := range c.members {
		addr, ok := c.checkDNS(ctx, fmt.Sprintf("dns service %d", m.sid), m.name)
		c.checkMemberPort(ctx, m, addr, ok)
		c.checkServiceRegistration(ctx, m)
	}
	c.checkCustomDomain()
}

func (c *checker) accountName() string {
	return pki.AccountName(c.cfg.Pod.Network, c.cfg.Pod.AccountID).String()
}

// interfaceAddrs returns the addresses of this machine's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// isLocal reports whether a is an address of this machine: loopback, or an
// interface's.
func (c *checker) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, l := range c.local {
		if l == a {
			return true
		}
	}
	return false
}

// sharedSpace is the carrier-grade NAT range, private in effect.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// isPrivate reports whether a cannot be reached from the internet.
func isPrivate(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		a.IsUnspecified() || sharedSpace.Contains(a)
}

// days formats how long d is in whole days.
func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// joinNames lists names in a sentence.
func joinNames(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
}
