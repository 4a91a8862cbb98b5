package pod

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// dialer opens the pod's outbound connections: from BindAddress, so that the
// directory records the pod's own address, and resolving names through the
// network's DNS server when one is configured.
type dialer struct {
	d        *net.Dialer
	resolver *net.Resolver
}

func newDialer(bind netip.Addr, dnsServer string) *dialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if bind.IsValid() && !bind.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: bind.AsSlice()}
	}

	r := net.DefaultResolver
	if dnsServer != "" {
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network,
					dnsServer)
			},
		}
	}
	return &dialer{d: d, resolver: r}
}

// DialContext resolves the host of addr and connects to the first address
// that answers.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return d.d.DialContext(ctx, network, addr)
	}

	ips, err := d.resolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}

	var lastErr error
	for _, ip := range ips {
		conn, err := d.d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// hostPort joins a host name and a port.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
