package auth

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fail makes one attempt from addr at now and reports it failed; the attempt
// must be allowed.
func fail(t *testing.T, th *Throttle, addr netip.Addr, now time.Time) {
	t.Helper()
	if wait, ok := th.Allow(addr, now); !ok {
		t.Fatalf("attempt from %v refused, wait %v", addr, wait)
	}
	th.Failure(addr, now)
}

func TestThrottleBackoff(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 3, BaseDelay: time.Second,
		MaxDelay: 8 * time.Second})
	addr := netip.MustParseAddr("192.0.2.7")
	now := testNow

	for range 3 {
		fail(t, th, addr, now)
	}

	// Each wait doubles up to the cap; a moment early is still refused.
	for i, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
		want *= time.Second
		if wait, ok := th.Allow(addr, now); ok || wait != want {
			t.Fatalf("step %d: Allow = %v, %v; want %v, false", i, wait, ok, want)
		}
		now = now.Add(want - time.Millisecond)
		if wait, ok := th.Allow(addr, now); ok || wait != time.Millisecond {
			t.Fatalf("step %d: Allow 1ms early = %v, %v", i, wait, ok)
		}
		now = now.Add(time.Millisecond)
		fail(t, th, addr, now)
	}

	th.Success(addr)
	for range 3 {
		fail(t, th, addr, now)
	}
	if _, ok := th.Allow(addr, now); ok {
		t.Error("fourth failure after a reset was not slowed")
	}
}

func TestThrottleSuccessResets(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 2})
	addr := netip.MustParseAddr("198.51.100.1")

	fail(t, th, addr, testNow)
	if _, ok := th.Allow(addr, testNow); !ok {
		t.Fatal("second attempt refused")
	}
	th.Success(addr)

	fail(t, th, addr, testNow)
	fail(t, th, addr, testNow)
	if wait, ok := th.Allow(addr, testNow); ok || wait != time.Second {
		t.Errorf("Allow = %v, %v; want the default 1s wait", wait, ok)
	}
}

func TestThrottleGroupsAddresses(t *testing.T) {
	tests := []struct {
		name      string
		failing   string
		other     string
		sameGroup bool
	}{
		{"same /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", true},
		{"next /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv4-mapped", "::ffff:192.0.2.1", "192.0.2.1", true},
		{"zone", "fe80::1%eth0", "fe80::1", true},
		{"IPv4 neighbours", "192.0.2.1", "192.0.2.2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := NewThrottle(ThrottleConfig{FreeFailures: 1})
			fail(t, th, netip.MustParseAddr(tc.failing), testNow)

			_, ok := th.Allow(netip.MustParseAddr(tc.other), testNow)
			if ok == tc.sameGroup {
				t.Errorf("Allow(%s) = %v after a failure from %s", tc.other, ok, tc.failing)
			}
		})
	}
}

func TestThrottleEvictsOldest(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 1, MaxAddresses: 2})
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	c := netip.MustParseAddr("192.0.2.3")

	ms := func(n int) time.Time { return testNow.Add(time.Duration(n) * time.Millisecond) }

	fail(t, th, a, ms(0))
	fail(t, th, b, ms(100))
	if _, ok := th.Allow(a, ms(200)); ok {
		t.Fatal("a not throttled before eviction")
	}

	// The refused attempt above made a the most recent; b is the oldest now.
	fail(t, th, c, ms(300))
	if n := th.order.Len(); n != 2 || len(th.addrs) != 2 {
		t.Errorf("tracking %d/%d addresses, want 2", n, len(th.addrs))
	}
	if _, ok := th.Allow(a, ms(300)); ok {
		t.Error("a was evicted instead of b")
	}
	if _, ok := th.Allow(b, ms(300)); !ok {
		t.Error("b still throttled; it should have been evicted")
	}
}

func TestThrottleForgets(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 2, Forget: time.Hour})
	addr := netip.MustParseAddr("203.0.113.9")

	fail(t, th, addr, testNow)
	fail(t, th, addr, testNow)
	later := testNow.Add(time.Hour + time.Second)
	fail(t, th, addr, later)
	fail(t, th, addr, later)
	if _, ok := th.Allow(addr, later); ok {
		t.Error("third failure after forgetting was not slowed")
	}
}

func TestThrottleForgetNotBelowMaxDelay(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 1, BaseDelay: time.Minute,
		MaxDelay: time.Hour, Forget: time.Second})
	addr := netip.MustParseAddr("203.0.113.10")

	fail(t, th, addr, testNow)
	if wait, ok := th.Allow(addr, testNow.Add(30*time.Second)); ok || wait != 30*time.Second {
		t.Errorf("Allow = %v, %v; a short Forget cut the delay", wait, ok)
	}
}

func TestThrottleConcurrentAttempts(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 3})
	addr := netip.MustParseAddr("2001:db8::5")

	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Go(func() {
			if _, ok := th.Allow(addr, testNow); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	// No failure has been reported yet, but the unreported attempts count.
	if allowed != 3 {
		t.Errorf("%d concurrent attempts allowed, want 3", allowed)
	}
}

func TestThrottleInvalidAddress(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 1})
	fail(t, th, netip.Addr{}, testNow)
	if _, ok := th.Allow(netip.Addr{}, testNow); ok {
		t.Error("invalid address not throttled")
	}
}
