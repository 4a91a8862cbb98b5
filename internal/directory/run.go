package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/dns"
)

// shutdownGrace is how long requests in flight get to finish on shutdown.
const shutdownGrace = 10 * time.Second

// RunConfig configures a running directory: its API and its DNS server.
type RunConfig struct {
	Config

	// Listen is the HTTPS address, such as "127.0.0.1:8443" (required).
	Listen string

	// DNSListen is the UDP and TCP address of the DNS server; empty runs
	// none.
	DNSListen string

	// Certificate is the HTTPS server certificate: a public one, or one the
	// network's root issued for dir.<network>.
	Certificate tls.Certificate

	// Address is what dir.<network> resolves to [the host of Listen, when it
	// is an address other than the unspecified one].
	Address netip.Addr

	// Ready, when set, is called once both listeners are bound, with their
	// addresses.
	Ready func(https net.Addr, dns netip.AddrPort)
}

// Run serves the directory until ctx ends, then shuts both servers down.
func Run(ctx context.Context, cfg RunConfig) error {
	srv, err := New(cfg.Config)
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("directory: listening for https: %w", err)
	}
	defer ln.Close()

	dnsSrv, dnsLn, err := srv.startDNS(ctx, cfg, ln.Addr())
	if err != nil {
		return err
	}
	var dnsAddr netip.AddrPort
	if dnsLn != nil {
		dnsAddr = dnsLn.Addr()
	}

	httpSrv := api.NewServer(srv.Handler(), TLSConfig(cfg.Certificate))

	errs := make(chan error, 2)
	go func() { errs <- httpSrv.ServeTLS(ln, "", "") }()
	if dnsSrv != nil {
		go func() { errs <- dnsSrv.Serve(ctx, dnsLn.UDP, dnsLn.TCP) }()
	}

	srv.logger.Info("directory started", "network", srv.net.Paths.Network,
		"https", ln.Addr().String(), "dns", dnsAddr.String())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr(), dnsAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	return srv.shutdown(httpSrv, dnsSrv, runErr)
}

func (s *Server) shutdown(httpSrv *http.Server, dnsSrv *dns.Server, runErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()

	err := httpSrv.Shutdown(ctx)
	if dnsSrv != nil {
		err = errors.Join(err, ignoreClosed(dnsSrv.Shutdown(ctx)))
	}
	s.logger.Info("directory stopped")

	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return errors.Join(ignoreClosed(runErr), err)
}

func ignoreClosed(err error) error {
	if errors.Is(err, dns.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// startDNS binds the DNS listeners and builds the server, or returns nils
// when cfg asks for no DNS.
func (s *Server) startDNS(ctx context.Context, cfg RunConfig, https net.Addr) (
	*dns.Server, *dns.Listeners, error) {
	if cfg.DNSListen == "" {
		return nil, nil, nil
	}

	network := s.net.Paths.Network
	static := map[string][]netip.Addr{}
	addr := cfg.Address
	if !addr.IsValid() {
		if ap, err := netip.ParseAddrPort(https.String()); err == nil &&
			!ap.Addr().IsUnspecified() {
			addr = ap.Addr()
		}
	}
	if addr.IsValid() {
		static["dir."+network] = []netip.Addr{addr}
	} else {
		s.logger.Warn("dir."+network+" has no address in DNS: set --address "+
			"(DIRECTORY_ADDRESS) when listening on all addresses", "listen", https.String())
	}

	dnsSrv, err := dns.NewServer(dns.Config{
		Zone:   network,
		Lookup: s.lookup,
		Static: static,
		Logger: s.logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("directory: %w", err)
	}

	ln, err := dns.Listen(ctx, cfg.DNSListen)
	if err != nil {
		return nil, nil, fmt.Errorf("directory: %w", err)
	}
	return dnsSrv, ln, nil
}

// lookup answers the DNS server's questions from the store.
func (s *Server) lookup(ctx context.Context, name string) (netip.Addr, bool, error) {
	addr, err := s.store.Address(ctx, name)
	if errors.Is(err, dirstore.ErrNotFound) {
		return netip.Addr{}, false, nil
	}
	if err != nil {
		return netip.Addr{}, false, err
	}
	return addr, true, nil
}
