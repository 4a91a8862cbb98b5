package dns

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	testZone    = "byoda.test"
	testSID     = "4294929430"
	accountID   = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	memberID    = "9b2f6c1e-2d3a-4b5c-8d7e-6f5a4b3c2d1e"
	unknownID   = "00000000-0000-4000-8000-000000000000"
	accountName = accountID + ".accounts." + testZone
	memberName  = memberID + ".members-" + testSID + "." + testZone
	serviceName = "service.service-" + testSID + "." + testZone
	dirName     = "dir." + testZone
)

// exchangeTimeout bounds every query a test sends.
const exchangeTimeout = 5 * time.Second

// registry is a working LookupFunc backed by a map.
type registry struct {
	mu    sync.Mutex
	addrs map[string]netip.Addr
	err   error    // returned by every lookup when set
	asked []string // names looked up, in order

	// When hold is set, lookups signal entered and then wait until hold is
	// closed.
	hold    chan struct{}
	entered chan struct{}
}

func newRegistry() *registry {
	return &registry{addrs: map[string]netip.Addr{
		accountName: netip.MustParseAddr("127.0.0.2"),
		memberName:  netip.MustParseAddr("127.0.0.3"),
		serviceName: netip.MustParseAddr("127.0.0.4"),
	}}
}

func (r *registry) lookup(_ context.Context, name string) (netip.Addr, bool, error) {
	if r.hold != nil {
		r.entered <- struct{}{}
		<-r.hold
	}

	r.mu.Lock()
	defer r.mu.Unlock()

	r.asked = append(r.asked, name)
	if r.err != nil {
		return netip.Addr{}, false, r.err
	}
	addr, ok := r.addrs[name]

	return addr, ok, nil
}

func (r *registry) set(name string, addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.addrs[name] = addr
}

func (r *registry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()

	return append([]string(nil), r.asked...)
}

// lockedBuffer lets a test read what a logger wrote from other goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}

// testConfig returns a Config for testZone backed by reg, with dir.<zone>
// and a few more static names.
func testConfig(reg *registry) Config {
	return Config{
		Zone:   testZone,
		Lookup: reg.lookup,
		Static: map[string][]netip.Addr{
			testZone:              {netip.MustParseAddr("127.0.0.7")},
			dirName:               {netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("::5")},
			"ns2.ops." + testZone: {netip.MustParseAddr("127.0.0.6")},
			"many." + testZone:    addrRange("127.1.0.1", 60),
			"lots." + testZone:    addrRange("127.2.0.1", 200),
		},
		NameServers: []string{dirName, "ns2.ops." + testZone, "ns.example.net"},
	}
}

// addrRange returns n consecutive IPv4 addresses from first.
func addrRange(first string, n int) []netip.Addr {
	addrs := make([]netip.Addr, 0, n)
	for addr := netip.MustParseAddr(first); len(addrs) < n; addr = addr.Next() {
		addrs = append(addrs, addr)
	}

	return addrs
}

// startServer serves cfg on a free loopback port for UDP and TCP until the
// test ends, and returns that address.
func startServer(t testing.TB, cfg Config) string {
	t.Helper()

	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	l, err := Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), l.UDP, l.TCP) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
			return
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})

	return l.Addr().String()
}

// exchange sends req to addr over network ("udp" or "tcp") and returns the
// response.
func exchange(t testing.TB, network, addr string, req *mdns.Msg) *mdns.Msg {
	t.Helper()

	client := &mdns.Client{Net: network, Timeout: exchangeTimeout}
	resp, _, err := client.Exchange(req, addr)
	if err != nil {
		t.Fatalf("exchange over %s: %v", network, err)
	}

	return resp
}

// query asks addr over network for the records of one name and type.
func query(t testing.TB, network, addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()

	return exchange(t, network, addr, new(mdns.Msg).SetQuestion(mdns.Fqdn(name), qtype))
}

// addresses returns the A and AAAA addresses in rrs, in order.
func addresses(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}

	return out
}

// checkNegative fails t unless resp is an authoritative negative answer with
// the given rcode and the zone's SOA in the authority section.
func checkNegative(t *testing.T, resp *mdns.Msg, rcode int) {
	t.Helper()

	if resp.Rcode != rcode {
		t.Fatalf("rcode = %s, want %s", mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[rcode])
	}
	if !resp.Authoritative {
		t.Error("AA bit not set")
	}
	if len(resp.Answer) != 0 {
		t.Errorf("answer = %v, want none", resp.Answer)
	}
	if len(resp.Ns) != 1 {
		t.Fatalf("authority = %v, want the SOA record", resp.Ns)
	}
	soa, ok := resp.Ns[0].(*mdns.SOA)
	if !ok || soa.Hdr.Name != testZone+"." {
		t.Errorf("authority = %v, want the SOA of %s", resp.Ns[0], testZone)
	}
}

var networks = []string{"udp", "tcp"}

func TestAddressAnswers(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	tests := []struct {
		desc  string
		name  string
		qtype uint16
		want  []string
	}{
		{"account", accountName, mdns.TypeA, []string{"127.0.0.2"}},
		{"member", memberName, mdns.TypeA, []string{"127.0.0.3"}},
		{"service", serviceName, mdns.TypeA, []string{"127.0.0.4"}},
		{"static A", dirName, mdns.TypeA, []string{"127.0.0.5"}},
		{"static AAAA", dirName, mdns.TypeAAAA, []string{"::5"}},
		{"static ANY", dirName, mdns.TypeANY, []string{"127.0.0.5", "::5"}},
		{"dynamic ANY", accountName, mdns.TypeANY, []string{"127.0.0.2"}},
		{"apex", testZone, mdns.TypeA, []string{"127.0.0.7"}},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.desc, func(t *testing.T) {
				resp := query(t, network, addr, tt.name, tt.qtype)

				if resp.Rcode != mdns.RcodeSuccess || !resp.Authoritative {
					t.Fatalf("rcode %s, AA %t; want NOERROR, AA",
						mdns.RcodeToString[resp.Rcode], resp.Authoritative)
				}
				got := addresses(resp.Answer)
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("addresses = %v, want %v", got, tt.want)
				}
				for _, rr := range resp.Answer {
					if rr.Header().Name != tt.name+"." || rr.Header().Ttl != 300 {
						t.Errorf("record %v: want owner %s. and TTL 300", rr, tt.name)
					}
				}
			})
		}
	}
}

func TestLatestAddress(t *testing.T) {
	reg := newRegistry()
	addr := startServer(t, testConfig(reg))

	for i, next := range []string{"127.0.0.20", "127.0.0.21", "::1"} {
		reg.set(memberName, netip.MustParseAddr(next))
		qtype := mdns.TypeA
		if strings.Contains(next, ":") {
			qtype = mdns.TypeAAAA
		}

		got := addresses(query(t, networks[i%2], addr, memberName, qtype).Answer)
		if len(got) != 1 || got[0] != next {
			t.Errorf("after registering %s, answer = %v", next, got)
		}
	}
}

func TestMappedAddressIsIPv4(t *testing.T) {
	reg := newRegistry()
	reg.set(accountName, netip.MustParseAddr("::ffff:127.0.0.9"))
	addr := startServer(t, testConfig(reg))

	got := addresses(query(t, "udp", addr, accountName, mdns.TypeA).Answer)
	if len(got) != 1 || got[0] != "127.0.0.9" {
		t.Errorf("A answer = %v, want 127.0.0.9", got)
	}
	checkNegative(t, query(t, "udp", addr, accountName, mdns.TypeAAAA), mdns.RcodeSuccess)
}

func TestNegativeAnswers(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	tests := []struct {
		desc  string
		name  string
		qtype uint16
		rcode int
	}{
		{"unknown account", unknownID + ".accounts." + testZone, mdns.TypeA, mdns.RcodeNameError},
		{"unknown member", unknownID + ".members-1." + testZone, mdns.TypeA, mdns.RcodeNameError},
		{"unregistered service", "service.service-1." + testZone, mdns.TypeA, mdns.RcodeNameError},
		{"unknown label", "www." + testZone, mdns.TypeA, mdns.RcodeNameError},
		{"below an account", "x." + accountName, mdns.TypeA, mdns.RcodeNameError},
		{"below a static name", "x." + dirName, mdns.TypeA, mdns.RcodeNameError},
		{"AAAA of IPv4-only name", accountName, mdns.TypeAAAA, mdns.RcodeSuccess},
		{"MX of account", accountName, mdns.TypeMX, mdns.RcodeSuccess},
		{"TXT of service", serviceName, mdns.TypeTXT, mdns.RcodeSuccess},
		{"AAAA of IPv4-only static", "many." + testZone, mdns.TypeAAAA, mdns.RcodeSuccess},
		{"accounts", "accounts." + testZone, mdns.TypeA, mdns.RcodeSuccess},
		{"members", "members-" + testSID + "." + testZone, mdns.TypeA, mdns.RcodeSuccess},
		{"service subdomain", "service-0." + testZone, mdns.TypeNS, mdns.RcodeSuccess},
		{"static ancestor", "ops." + testZone, mdns.TypeA, mdns.RcodeSuccess},
		{"apex AAAA", testZone, mdns.TypeAAAA, mdns.RcodeSuccess},
		{"sid too large", "members-4294967296." + testZone, mdns.TypeA, mdns.RcodeNameError},
		{"sid with leading zero", "members-01." + testZone, mdns.TypeA, mdns.RcodeNameError},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.desc, func(t *testing.T) {
				checkNegative(t, query(t, network, addr, tt.name, tt.qtype), tt.rcode)
			})
		}
	}
}

func TestNegativeSOATTL(t *testing.T) {
	cfg := testConfig(newRegistry())
	cfg.TTL = 30 * time.Second
	addr := startServer(t, cfg)

	resp := query(t, "udp", addr, "www."+testZone, mdns.TypeA)
	checkNegative(t, resp, mdns.RcodeNameError)
	soa := resp.Ns[0].(*mdns.SOA)
	if soa.Hdr.Ttl != 30 || soa.Minttl != 30 {
		t.Errorf("negative SOA TTL %d, minimum %d; want 30 and 30", soa.Hdr.Ttl, soa.Minttl)
	}
}

func TestLookupOnlyCanonicalNames(t *testing.T) {
	reg := newRegistry()
	addr := startServer(t, testConfig(reg))

	invalid := []string{
		"not-a-uuid.accounts." + testZone,
		"3f2504e04f8941d39a0c0305e82c3301.accounts." + testZone,
		accountID + ".members-01." + testZone,
		accountID + ".members-4294967296." + testZone,
		accountID + ".members-x." + testZone,
		accountID + ".service-1." + testZone,
		"services.service-1." + testZone,
		"service.members-1." + testZone,
		accountID + ".account-data." + testZone,
		"x." + accountName,
		"www." + testZone,
	}
	for _, name := range invalid {
		t.Run(name, func(t *testing.T) {
			checkNegative(t, query(t, "udp", addr, name, mdns.TypeA), mdns.RcodeNameError)
		})
	}
	if asked := reg.names(); len(asked) != 0 {
		t.Errorf("lookup was asked for %v, want no calls", asked)
	}

	query(t, "udp", addr, strings.ToUpper(memberName), mdns.TypeA)
	if asked := reg.names(); len(asked) != 1 || asked[0] != memberName {
		t.Errorf("lookup was asked for %v, want [%s]", asked, memberName)
	}
}

func TestApex(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	for _, network := range networks {
		t.Run(network+"/SOA", func(t *testing.T) {
			resp := query(t, network, addr, testZone, mdns.TypeSOA)

			if resp.Rcode != mdns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) != 1 {
				t.Fatalf("response %v: want one authoritative SOA record", resp)
			}
			soa, ok := resp.Answer[0].(*mdns.SOA)
			if !ok {
				t.Fatalf("answer %v is not an SOA record", resp.Answer[0])
			}
			if soa.Ns != dirName+"." || soa.Mbox != "hostmaster."+testZone+"." {
				t.Errorf("SOA names %s %s, want %s. hostmaster.%s.",
					soa.Ns, soa.Mbox, dirName, testZone)
			}
			if soa.Hdr.Ttl != 3600 || soa.Serial == 0 || soa.Minttl != 300 {
				t.Errorf("SOA TTL %d, serial %d, minimum %d; want 3600, nonzero, 300",
					soa.Hdr.Ttl, soa.Serial, soa.Minttl)
			}
		})

		t.Run(network+"/NS", func(t *testing.T) {
			resp := query(t, network, addr, testZone, mdns.TypeNS)

			var hosts []string
			for _, rr := range resp.Answer {
				if ns, ok := rr.(*mdns.NS); ok && ns.Hdr.Ttl == 3600 {
					hosts = append(hosts, ns.Ns)
				}
			}
			wantHosts := dirName + ". ns2.ops." + testZone + ". ns.example.net."
			if strings.Join(hosts, " ") != wantHosts || !resp.Authoritative {
				t.Errorf("NS answer %v, want %s with TTL 3600, authoritative",
					resp.Answer, wantHosts)
			}

			var glue []string
			for _, rr := range resp.Extra {
				glue = append(glue, rr.Header().Name+" "+addresses([]mdns.RR{rr})[0])
			}
			wantGlue := dirName + ". 127.0.0.5, " + dirName + ". ::5, " +
				"ns2.ops." + testZone + ". 127.0.0.6"
			if strings.Join(glue, ", ") != wantGlue {
				t.Errorf("glue = %v, want %s", glue, wantGlue)
			}
		})
	}

	t.Run("ANY", func(t *testing.T) {
		resp := query(t, "tcp", addr, testZone, mdns.TypeANY)

		counts := map[uint16]int{}
		for _, rr := range resp.Answer {
			counts[rr.Header().Rrtype]++
		}
		if counts[mdns.TypeSOA] != 1 || counts[mdns.TypeNS] != 3 || counts[mdns.TypeA] != 1 ||
			len(resp.Answer) != 5 {
			t.Errorf("ANY answer %v, want the SOA, 3 NS and 1 A record", resp.Answer)
		}
	})
}

func TestDefaultNameServer(t *testing.T) {
	reg := newRegistry()
	addr := startServer(t, Config{Zone: "Other.Test.", Lookup: reg.lookup})

	resp := query(t, "udp", addr, "other.test", mdns.TypeNS)
	if len(resp.Answer) != 1 || resp.Answer[0].(*mdns.NS).Ns != "dir.other.test." {
		t.Errorf("NS answer %v, want dir.other.test.", resp.Answer)
	}
	if len(resp.Extra) != 0 {
		t.Errorf("glue %v, want none: dir.other.test is not static", resp.Extra)
	}
}

func TestRefused(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	tests := []struct {
		desc   string
		name   string
		qtype  uint16
		qclass uint16
	}{
		{"other zone", "example.com", mdns.TypeA, mdns.ClassINET},
		{"zone name inside another", testZone + ".example.com", mdns.TypeA, mdns.ClassINET},
		{"zone as a label suffix", "not" + testZone, mdns.TypeA, mdns.ClassINET},
		{"parent of zone", "test", mdns.TypeA, mdns.ClassINET},
		{"root", ".", mdns.TypeNS, mdns.ClassINET},
		{"chaos class", dirName, mdns.TypeA, mdns.ClassCHAOS},
		{"zone transfer", testZone, mdns.TypeAXFR, mdns.ClassINET},
		{"incremental zone transfer", testZone, mdns.TypeIXFR, mdns.ClassINET},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.desc, func(t *testing.T) {
				req := new(mdns.Msg).SetQuestion(mdns.Fqdn(tt.name), tt.qtype)
				req.Question[0].Qclass = tt.qclass
				resp := exchange(t, network, addr, req)

				if resp.Rcode != mdns.RcodeRefused || resp.Authoritative || len(resp.Answer) != 0 {
					t.Errorf("response %v: want REFUSED, not authoritative, empty", resp)
				}
			})
		}
	}
}

// TestConcurrentQueries lets the race detector watch queries that share the
// server's records.
func TestConcurrentQueries(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))
	questions := []struct {
		name  string
		qtype uint16
	}{
		{testZone, mdns.TypeNS},
		{testZone, mdns.TypeANY},
		{"www." + testZone, mdns.TypeA},
		{"many." + testZone, mdns.TypeA},
		{accountName, mdns.TypeAAAA},
		{memberName, mdns.TypeA},
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			client := &mdns.Client{Net: networks[i%2], Timeout: exchangeTimeout}
			for j := range 3 * len(questions) {
				q := questions[(i+j)%len(questions)]
				req := new(mdns.Msg).SetQuestion(mdns.Fqdn(q.name), q.qtype)
				resp, _, err := client.Exchange(req, addr)
				if err != nil || !resp.Authoritative {
					t.Errorf("%s %s: response %v, error %v", q.name,
						mdns.TypeToString[q.qtype], resp, err)
				}
			}
		})
	}
	wg.Wait()
}

func TestCaseInsensitive(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	tests := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{strings.ToUpper(accountName), mdns.TypeA, "127.0.0.2"},
		{"Service.SERVICE-" + testSID + ".Byoda.Test", mdns.TypeA, "127.0.0.4"},
		{"DIR.byoda.TEST", mdns.TypeA, "127.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := query(t, "udp", addr, tt.name, tt.qtype)

			got := addresses(resp.Answer)
			if len(got) != 1 || got[0] != tt.want || !resp.Authoritative {
				t.Fatalf("answer %v, want %s, authoritative", resp.Answer, tt.want)
			}
			if owner := resp.Answer[0].Header().Name; owner != tt.name+"." {
				t.Errorf("owner name %s, want it spelled as asked: %s.", owner, tt.name)
			}
		})
	}

	resp := query(t, "udp", addr, "BYODA.test", mdns.TypeSOA)
	if len(resp.Answer) != 1 || resp.Answer[0].Header().Rrtype != mdns.TypeSOA {
		t.Errorf("SOA answer for upper-case apex = %v", resp.Answer)
	}
}

func TestLookupFailure(t *testing.T) {
	tests := []struct {
		desc  string
		setup func(*registry)
		want  string
	}{
		{
			desc:  "storage error",
			setup: func(r *registry) { r.err = errors.New("database is locked") },
			want:  "database is locked",
		},
		{
			desc:  "invalid address",
			setup: func(r *registry) { r.set(accountName, netip.Addr{}) },
			want:  "invalid address",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			reg := newRegistry()
			tt.setup(reg)
			var logs lockedBuffer
			cfg := testConfig(reg)
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			addr := startServer(t, cfg)

			resp := query(t, "udp", addr, accountName, mdns.TypeA)
			if resp.Rcode != mdns.RcodeServerFailure || len(resp.Answer) != 0 {
				t.Errorf("response %v: want SERVFAIL without answer", resp)
			}
			if got := logs.String(); !strings.Contains(got, "level=WARN") ||
				!strings.Contains(got, tt.want) || !strings.Contains(got, accountName) {
				t.Errorf("log = %q, want a warning naming %s and %q", got, accountName, tt.want)
			}

			resp = query(t, "udp", addr, dirName, mdns.TypeA)
			if len(addresses(resp.Answer)) != 1 {
				t.Errorf("static name answer %v, want its address despite the failing lookup", resp)
			}
		})
	}
}

func TestTruncation(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	tests := []struct {
		desc      string
		name      string
		network   string
		ednsSize  uint16 // 0: no EDNS
		truncated bool
		count     int // answers expected without truncation
	}{
		{"UDP beyond 512", "many." + testZone, "udp", 0, true, 60},
		{"UDP within EDNS buffer", "many." + testZone, "udp", 1232, false, 60},
		{"UDP within a small EDNS buffer", "many." + testZone, "udp", 600, true, 60},
		{"UDP beyond the server cap", "lots." + testZone, "udp", 4096, true, 200},
		{"TCP", "many." + testZone, "tcp", 0, false, 60},
		{"TCP beyond UDP sizes", "lots." + testZone, "tcp", 4096, false, 200},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			req := new(mdns.Msg).SetQuestion(mdns.Fqdn(tt.name), mdns.TypeA)
			if tt.ednsSize != 0 {
				req.SetEdns0(tt.ednsSize, false)
			}
			resp := exchange(t, tt.network, addr, req)

			if resp.Truncated != tt.truncated {
				t.Errorf("TC bit %t, want %t", resp.Truncated, tt.truncated)
			}
			n := len(addresses(resp.Answer))
			if tt.truncated && n >= tt.count {
				t.Errorf("%d answers in a truncated response, want fewer than %d", n, tt.count)
			}
			if !tt.truncated && n != tt.count {
				t.Errorf("%d answers, want %d", n, tt.count)
			}
			if tt.ednsSize != 0 && resp.IsEdns0() == nil {
				t.Error("no OPT record in the response to an EDNS query")
			}
		})
	}
}

func TestRejectedRequests(t *testing.T) {
	addr := startServer(t, testConfig(newRegistry()))

	withOpcode := func(opcode int) *mdns.Msg {
		m := new(mdns.Msg).SetQuestion(mdns.Fqdn(accountName), mdns.TypeA)
		m.Opcode = opcode
		return m
	}
	twoQuestions := new(mdns.Msg).SetQuestion(mdns.Fqdn(accountName), mdns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	noQuestion := new(mdns.Msg).SetQuestion(mdns.Fqdn(accountName), mdns.TypeA)
	noQuestion.Question = nil
	ednsVersion1 := new(mdns.Msg).SetQuestion(mdns.Fqdn(accountName), mdns.TypeA)
	ednsVersion1.SetEdns0(1232, false)
	ednsVersion1.IsEdns0().SetVersion(1)

	tests := []struct {
		desc  string
		req   *mdns.Msg
		rcode int
	}{
		{"update", withOpcode(mdns.OpcodeUpdate), mdns.RcodeNotImplemented},
		{"notify", withOpcode(mdns.OpcodeNotify), mdns.RcodeNotImplemented},
		{"status", withOpcode(mdns.OpcodeStatus), mdns.RcodeNotImplemented},
		{"inverse query", withOpcode(mdns.OpcodeIQuery), mdns.RcodeNotImplemented},
		{"two questions", twoQuestions, mdns.RcodeFormatError},
		{"no question", noQuestion, mdns.RcodeFormatError},
		{"EDNS version 1", ednsVersion1, mdns.RcodeBadVers},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.desc, func(t *testing.T) {
				resp := exchange(t, network, addr, tt.req.Copy())

				got, want := mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tt.rcode]
				if got != want || len(resp.Answer) != 0 {
					t.Errorf("rcode %s, %d answers; want %s and none", got, len(resp.Answer), want)
				}
			})
		}
	}
}

func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") != "true" {
			t.Skip("dig is not installed (package dnsutils); skipping the dig test")
		}
		t.Fatalf("dig is required when CI=true: %v", err)
	}
	addr := startServer(t, testConfig(newRegistry()))
	host, port, _ := net.SplitHostPort(addr)

	tests := []struct {
		desc  string
		extra []string
		name  string
		want  string
	}{
		{"udp", nil, accountName, "127.0.0.2"},
		{"tcp", []string{"+tcp"}, memberName, "127.0.0.3"},
		{"upper case", nil, strings.ToUpper(serviceName), "127.0.0.4"},
		{"unknown", nil, unknownID + ".accounts." + testZone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			args := append([]string{"@" + host, "-p", port, "+short"}, tt.extra...)
			args = append(args, tt.name, "A")

			out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("dig %s printed %q, want %q", strings.Join(args, " "), got, tt.want)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	newServer := func(t *testing.T) (*Server, *Listeners) {
		t.Helper()
		srv, err := NewServer(testConfig(newRegistry()))
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		l, err := Listen(t.Context(), "127.0.0.1:0")
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		return srv, l
	}

	t.Run("shutdown", func(t *testing.T) {
		srv, l := newServer(t)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(context.Background(), l.UDP, l.TCP) }()
		query(t, "udp", l.Addr().String(), accountName, mdns.TypeA)

		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		// Shutdown has waited for Serve, which closes the sockets first.
		checkClosed(t, l)
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if err := srv.Serve(t.Context(), l.UDP, l.TCP); !errors.Is(err, ErrServerClosed) {
			t.Errorf("second Serve returned %v, want ErrServerClosed", err)
		}
	})

	t.Run("waits for queries in flight", func(t *testing.T) {
		reg := newRegistry()
		reg.hold, reg.entered = make(chan struct{}), make(chan struct{}, 1)
		cfg := testConfig(reg)
		cfg.LookupTimeout = time.Hour
		srv, err := NewServer(cfg)
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		l, err := Listen(t.Context(), "127.0.0.1:0")
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(context.Background(), l.UDP, l.TCP) }()
		answered := make(chan *mdns.Msg, 1)
		go func() {
			req := new(mdns.Msg).SetQuestion(mdns.Fqdn(accountName), mdns.TypeA)
			resp, _, _ := (&mdns.Client{Timeout: exchangeTimeout}).Exchange(req, l.Addr().String())
			answered <- resp
		}()
		<-reg.entered

		expired, cancel := context.WithCancel(t.Context())
		cancel()
		if err := srv.Shutdown(expired); !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown with a lookup in flight returned %v, want context.Canceled", err)
		}
		close(reg.hold)
		if resp := <-answered; resp == nil || len(addresses(resp.Answer)) != 1 {
			t.Errorf("query in flight got %v, want its answer", resp)
		}
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})

	t.Run("context ends", func(t *testing.T) {
		srv, l := newServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, l.UDP, l.TCP) }()
		query(t, "tcp", l.Addr().String(), accountName, mdns.TypeA)

		cancel()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		checkClosed(t, l)
	})

	t.Run("shutdown before serve", func(t *testing.T) {
		srv, l := newServer(t)
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}

		if err := srv.Serve(t.Context(), l.UDP, l.TCP); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		checkClosed(t, l)
	})

	t.Run("socket fails", func(t *testing.T) {
		srv, l := newServer(t)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(t.Context(), l.UDP, l.TCP) }()
		query(t, "udp", l.Addr().String(), accountName, mdns.TypeA)

		_ = l.UDP.Close()
		err := <-served
		if err == nil || errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "udp") {
			t.Errorf("Serve returned %v, want the udp failure", err)
		}
		checkClosed(t, l)
	})

	t.Run("no sockets", func(t *testing.T) {
		srv, err := NewServer(testConfig(newRegistry()))
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		if err := srv.Serve(t.Context(), nil, nil); err == nil {
			t.Error("Serve without sockets succeeded")
		}
	})
}

// checkClosed fails t unless both listeners are closed already. The past
// deadlines make an open listener fail at once instead of blocking.
func checkClosed(t *testing.T, l *Listeners) {
	t.Helper()

	deadline := time.Now().Add(-time.Second)
	_ = l.TCP.(*net.TCPListener).SetDeadline(deadline)
	if _, err := l.TCP.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("TCP listener still open: Accept returned %v", err)
	}
	_ = l.UDP.SetReadDeadline(deadline)
	if _, _, err := l.UDP.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("UDP socket still open: ReadFrom returned %v", err)
	}
}

func TestListenSharesPort(t *testing.T) {
	l, err := Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer l.Close()

	got, tcpPort := l.Addr(), l.TCP.Addr().(*net.TCPAddr).Port
	if got.Port() == 0 || int(got.Port()) != tcpPort || got.Addr().String() != "127.0.0.1" {
		t.Errorf("Addr() = %v, TCP port %d: want 127.0.0.1 and one nonzero port", got, tcpPort)
	}

	if _, err := Listen(t.Context(), l.Addr().String()); err == nil {
		t.Error("Listen on a port in use succeeded")
	}
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	reg := newRegistry()
	valid := func() Config { return Config{Zone: testZone, Lookup: reg.lookup} }
	loopback := []netip.Addr{netip.MustParseAddr("127.0.0.1")}

	tests := []struct {
		desc   string
		modify func(*Config)
	}{
		{"no zone", func(c *Config) { c.Zone = "" }},
		{"root zone", func(c *Config) { c.Zone = "." }},
		{"bad zone", func(c *Config) { c.Zone = "a..b" }},
		{"no lookup", func(c *Config) { c.Lookup = nil }},
		{"static name outside zone", func(c *Config) {
			c.Static = map[string][]netip.Addr{"dir.example.com": loopback}
		}},
		{"static name on a label suffix", func(c *Config) {
			c.Static = map[string][]netip.Addr{"x" + testZone: loopback}
		}},
		{"invalid static address", func(c *Config) {
			c.Static = map[string][]netip.Addr{dirName: {{}}}
		}},
		{"bad name server", func(c *Config) { c.NameServers = []string{"a..b"} }},
		{"bad hostmaster", func(c *Config) { c.Hostmaster = "a..b" }},
		{"hostmaster as mail address", func(c *Config) { c.Hostmaster = "hostmaster@" + testZone }},
		{"negative ttl", func(c *Config) { c.TTL = -time.Second }},
		{"huge apex ttl", func(c *Config) { c.ApexTTL = 1 << 31 * time.Second }},
		{"negative lookup timeout", func(c *Config) { c.LookupTimeout = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)

			if _, err := NewServer(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewServer returned %v, want ErrInvalidConfig", err)
			}
		})
	}

	if _, err := NewServer(valid()); err != nil {
		t.Errorf("NewServer with a minimal config: %v", err)
	}
}

func BenchmarkServeA(b *testing.B) {
	addr := startServer(b, testConfig(newRegistry()))
	client := &mdns.Client{Net: "udp", Timeout: exchangeTimeout}
	conn, err := client.Dial(addr)
	if err != nil {
		b.Fatalf("dialing %s: %v", addr, err)
	}
	defer conn.Close()
	req := new(mdns.Msg).SetQuestion(mdns.Fqdn(accountName), mdns.TypeA)

	b.ReportAllocs()
	for b.Loop() {
		resp, _, err := client.ExchangeWithConn(req, conn)
		if err != nil {
			b.Fatalf("query: %v", err)
		}
		if len(resp.Answer) != 1 {
			b.Fatalf("answer %v, want one A record", resp.Answer)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
