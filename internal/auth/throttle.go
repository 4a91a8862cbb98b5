package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig sets up a Throttle. The zero value gives the defaults.
type ThrottleConfig struct {
	// FreeFailures is how many failed attempts an address gets before it
	// has to wait [5].
	FreeFailures int

	// BaseDelay is the wait after the first failure beyond the free ones;
	// each further failure doubles it [1s].
	BaseDelay time.Duration

	// MaxDelay caps the wait [5m].
	MaxDelay time.Duration

	// Forget is how long an address must stay quiet before its failures
	// are forgotten [1h, and never less than MaxDelay].
	Forget time.Duration

	// MaxAddresses bounds the addresses tracked; when full, the one longest
	// unheard from is dropped [4096].
	MaxAddresses int
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.FreeFailures <= 0 {
		c.FreeFailures = 5
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 5 * time.Minute
	}
	if c.Forget <= 0 {
		c.Forget = time.Hour
	}
	// A shorter memory would cut running delays short.
	c.Forget = max(c.Forget, c.MaxDelay)
	if c.MaxAddresses <= 0 {
		c.MaxAddresses = 4096
	}
	return c
}

// Throttle slows repeated failed logins per client address: after
// FreeFailures failures, each further attempt from that address must wait
// a delay that doubles from BaseDelay up to MaxDelay; a success resets the
// address. IPv6 addresses are grouped by /64, since one host usually holds
// the whole prefix. Memory is bounded by MaxAddresses, so an attacker with
// very many addresses can push older ones out; the throttle slows guessing
// from few addresses and is no defence against a large botnet.
//
// Every attempt that Allow lets through counts as a failure until Failure
// or Success is called for it, so concurrent attempts from one address
// cannot all slip past before the first failure is recorded. A Throttle is
// safe for concurrent use.
type Throttle struct {
	cfg ThrottleConfig

	mu    sync.Mutex
	addrs map[netip.Prefix]*list.Element // of *throttleEntry
	order *list.List                     // least recently active at the back
}

type throttleEntry struct {
	key      netip.Prefix
	failures int // recorded failures since the last success
	pending  int // allowed attempts not yet reported
	last     time.Time
	next     time.Time // no attempt before this
}

// NewThrottle returns a Throttle with cfg's settings.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	return &Throttle{
		cfg:   cfg.withDefaults(),
		addrs: make(map[netip.Prefix]*list.Element),
		order: list.New(),
	}
}

// Allow reports whether a login attempt from addr may go ahead at now, and
// if not, how long the client has to wait. An allowed attempt must be
// followed by Failure or Success. All invalid addresses count as one.
func (t *Throttle) Allow(addr netip.Addr, now time.Time) (wait time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()

	e := t.entry(throttleKey(addr), now)
	if now.Before(e.next) {
		return e.next.Sub(now), false
	}

	e.pending++
	t.charge(e, now)
	return 0, true
}

// Failure records a failed login from addr at now.
func (t *Throttle) Failure(addr netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()

	e := t.entry(throttleKey(addr), now)
	e.failures++
	if e.pending > 0 {
		e.pending--
	}
	t.charge(e, now)
}

// Success forgets the failures of addr.
func (t *Throttle) Success(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()

	key := throttleKey(addr)
	if el, ok := t.addrs[key]; ok {
		t.order.Remove(el)
		delete(t.addrs, key)
	}
}

// entry returns the live entry for key, creating it, or starting it afresh
// when the address has been quiet for longer than Forget.
func (t *Throttle) entry(key netip.Prefix, now time.Time) *throttleEntry {
	if el, ok := t.addrs[key]; ok {
		e := el.Value.(*throttleEntry)
		if now.Sub(e.last) > t.cfg.Forget {
			*e = throttleEntry{key: key}
		}
		e.last = now
		t.order.MoveToFront(el)
		return e
	}

	for t.order.Len() >= t.cfg.MaxAddresses {
		oldest := t.order.Back()
		delete(t.addrs, oldest.Value.(*throttleEntry).key)
		t.order.Remove(oldest)
	}
	e := &throttleEntry{key: key, last: now}
	t.addrs[key] = t.order.PushFront(e)
	return e
}

// charge sets when the next attempt may come, counting the pending attempts
// as failures.
func (t *Throttle) charge(e *throttleEntry, now time.Time) {
	over := e.failures + e.pending - t.cfg.FreeFailures
	if over < 0 {
		return
	}

	delay := t.cfg.BaseDelay
	for i := 0; i < over && delay < t.cfg.MaxDelay; i++ {
		delay *= 2
	}
	e.next = now.Add(min(delay, t.cfg.MaxDelay))
}

// throttleKey groups addresses that belong to one client: an IPv4 address
// by itself, an IPv6 address by its /64.
func throttleKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked()
	}
	return netip.PrefixFrom(addr, addr.BitLen())
}
