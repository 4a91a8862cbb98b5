package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// when their context ends, and by later calls to them.
var ErrServerClosed = errors.New("dns server closed")

// errServing is returned by a second call to Serve while the first runs.
var errServing = errors.New("dns server is already serving")

// Server is an authoritative name server for the zone of one network. It
// serves at most once: create a new Server to serve again.
type Server struct {
	zone          string
	lookup        LookupFunc
	lookupTimeout time.Duration
	ttl           uint32
	logger        *slog.Logger

	// static and nonTerminals are read-only after NewServer.
	static       map[string][]netip.Addr
	nonTerminals map[string]bool

	soa         *mdns.SOA
	negativeSOA *mdns.SOA
	nameServers []mdns.RR
	glue        []mdns.RR

	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	done     chan struct{} // closed when Serve returns

	mu      sync.Mutex
	serving bool // Serve has been called
}

// NewServer returns a Server for the zone cfg describes, or an error that
// wraps ErrInvalidConfig.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	s := &Server{
		zone:          cfg.Zone,
		lookup:        cfg.Lookup,
		lookupTimeout: cfg.LookupTimeout,
		ttl:           seconds(cfg.TTL),
		logger:        cfg.Logger,
		static:        canonicalStatic(cfg.Static),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	s.nonTerminals = nonTerminals(s.zone, s.static)
	s.buildApex(cfg)

	return s, nil
}

// canonicalStatic copies static with canonical names and with IPv4-mapped
// addresses unmapped.
func canonicalStatic(static map[string][]netip.Addr) map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(static))
	for name, addrs := range static {
		name = canonicalName(name)
		for _, addr := range addrs {
			out[name] = append(out[name], addr.Unmap())
		}
		if out[name] == nil {
			out[name] = []netip.Addr{}
		}
	}

	return out
}

// nonTerminals returns the names between the apex and each static name,
// which exist without records of their own.
func nonTerminals(zone string, static map[string][]netip.Addr) map[string]bool {
	out := make(map[string]bool)
	for name := range static {
		_, parent, _ := strings.Cut(name, ".")
		for parent != zone && strings.HasSuffix(parent, "."+zone) {
			out[parent] = true
			_, parent, _ = strings.Cut(parent, ".")
		}
	}

	return out
}

// buildApex prepares the SOA and NS records and the glue for the name
// servers that are static names.
func (s *Server) buildApex(cfg Config) {
	origin := mdns.Fqdn(s.zone)
	apexTTL := seconds(cfg.ApexTTL)
	s.soa = &mdns.SOA{
		Hdr:     header(origin, mdns.TypeSOA, apexTTL),
		Ns:      mdns.Fqdn(canonicalName(cfg.NameServers[0])),
		Mbox:    mdns.Fqdn(canonicalName(cfg.Hostmaster)),
		Serial:  uint32(time.Now().Unix()),
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  s.ttl,
	}

	// RFC 2308, section 5: a negative answer lives no longer than the SOA
	// record that comes with it, nor than the SOA minimum.
	negative := *s.soa
	negative.Hdr.Ttl = min(apexTTL, s.ttl)
	s.negativeSOA = &negative

	for _, host := range cfg.NameServers {
		host = canonicalName(host)
		ns := &mdns.NS{Hdr: header(origin, mdns.TypeNS, apexTTL), Ns: mdns.Fqdn(host)}
		s.nameServers = append(s.nameServers, ns)
		s.glue = append(s.glue, s.glueRecords(host)...)
	}
}

// glueRecords returns the address records of a name server host that is a
// static name.
func (s *Server) glueRecords(host string) []mdns.RR {
	var rrs []mdns.RR
	for _, addr := range s.static[host] {
		if addr.Is4() {
			rrs = append(rrs, newA(mdns.Fqdn(host), addr, s.ttl))
		} else {
			rrs = append(rrs, newAAAA(mdns.Fqdn(host), addr, s.ttl))
		}
	}

	return rrs
}

// Serve answers queries arriving on udp and tcp until Shutdown is called,
// ctx ends or one of them fails. Either may be nil, but not both. In-flight
// lookups get a context derived from ctx. Serve closes udp and tcp before it
// returns; it returns ErrServerClosed after Shutdown or the end of ctx.
func (s *Server) Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	transports := newTransports(ctx, s, udp, tcp)
	if len(transports) == 0 {
		return errors.New("serving dns: no udp or tcp listener")
	}
	if err := s.startServing(); err != nil {
		closeTransports(transports)
		return err
	}
	defer close(s.done)

	exited := make(chan struct{}, len(transports))
	for _, t := range transports {
		go t.run(exited)
		s.logger.Info("serving dns", "zone", s.zone, "network", t.network, "addr", t.addr)
	}

	select {
	case <-ctx.Done():
	case <-s.stop:
	case <-exited:
	}
	err := stopTransports(transports)
	closeTransports(transports)
	s.logger.Info("stopped serving dns", "zone", s.zone)

	return err
}

// ListenAndServe binds addr, such as "127.0.0.1:53", for both UDP and TCP and
// serves on it as Serve does.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	l, err := Listen(ctx, addr)
	if err != nil {
		return err
	}

	return s.Serve(ctx, l.UDP, l.TCP)
}

// Shutdown stops Serve and waits for it to return, or for ctx to end. Queries
// being answered are finished first. Shutdown before Serve makes Serve return
// ErrServerClosed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })

	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	if !serving {
		return nil
	}

	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutting down dns server: %w", ctx.Err())
	}
}

// startServing marks the Server as serving, unless it already is or has
// been shut down.
func (s *Server) startServing() error {
	s.mu.Lock()
	defer s.mu.Unlock()

	select {
	case <-s.stop:
		return ErrServerClosed
	default:
	}
	if s.serving {
		return errServing
	}
	s.serving = true

	return nil
}
