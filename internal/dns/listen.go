package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// maxBindAttempts bounds the search for a port that is free for both UDP and
// TCP when the caller asks for any port.
const maxBindAttempts = 16

// Listeners are a UDP socket and a TCP listener bound to the same address
// and port, ready for Server.Serve.
type Listeners struct {
	UDP net.PacketConn
	TCP net.Listener
}

// Listen binds addr, such as "127.0.0.1:53", for UDP and TCP. With port 0 it
// picks a port that is free for both, which Addr then reports.
func Listen(ctx context.Context, addr string) (*Listeners, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("binding dns address: %w", err)
	}

	attempts := 1
	if port == "0" {
		attempts = maxBindAttempts
	}
	for range attempts {
		var l *Listeners
		l, err = listenPair(ctx, host, port)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return l, err
		}
	}

	return nil, err
}

// listenPair binds UDP on host:port, then TCP on the address and port the
// UDP socket got.
func listenPair(ctx context.Context, host, port string) (*Listeners, error) {
	var lc net.ListenConfig
	udp, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("binding dns udp socket: %w", err)
	}

	bound := udp.LocalAddr().String()
	tcp, err := lc.Listen(ctx, "tcp", bound)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("binding dns tcp listener on %s: %w", bound, err)
	}

	return &Listeners{UDP: udp, TCP: tcp}, nil
}

// Addr returns the address and port both listeners are bound to.
func (l *Listeners) Addr() netip.AddrPort {
	udpAddr, ok := l.UDP.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := udpAddr.AddrPort()

	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Close closes both listeners.
func (l *Listeners) Close() error {
	return errors.Join(l.UDP.Close(), l.TCP.Close())
}
