package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	mdns "github.com/miekg/dns"
)

// handler answers the queries of one transport. It keeps the context of
// Serve because miekg's Handler interface carries none.
type handler struct {
	server *Server
	ctx    context.Context
	udp    bool // responses must fit the client's UDP buffer
}

// ServeDNS implements mdns.Handler.
func (h *handler) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := h.server.respond(h.ctx, req)
	fitTransport(resp, req, h.udp)

	// The client may be gone already; that is its business, not the
	// server's, so a failed write is not worth more than a debug line.
	if err := w.WriteMsg(resp); err != nil {
		remote := w.RemoteAddr().String()
		h.server.logger.Debug("writing dns response", "remote", remote, "error", err)
	}
}

// transport is one miekg server, UDP or TCP, with what Serve needs to stop
// it without racing its start.
type transport struct {
	network string
	addr    string
	srv     *mdns.Server
	conn    io.Closer
	started chan struct{} // closed once srv accepts shutdown
	exited  chan struct{} // closed when srv has stopped serving
	err     error         // what srv returned, set before exited is closed
}

// newTransports wraps the sockets that are not nil in miekg servers that
// answer with s.
func newTransports(ctx context.Context, s *Server, pc net.PacketConn, l net.Listener) []*transport {
	var ts []*transport
	if pc != nil {
		srv := &mdns.Server{PacketConn: pc, UDPSize: maxUDPSize}
		h := &handler{server: s, ctx: ctx, udp: true}
		ts = append(ts, newTransport("udp", pc.LocalAddr(), srv, pc, h))
	}
	if l != nil {
		srv := &mdns.Server{Listener: l}
		h := &handler{server: s, ctx: ctx}
		ts = append(ts, newTransport("tcp", l.Addr(), srv, l, h))
	}

	return ts
}

func newTransport(network string, addr net.Addr, srv *mdns.Server, conn io.Closer,
	h mdns.Handler) *transport {
	t := &transport{
		network: network,
		addr:    addr.String(),
		srv:     srv,
		conn:    conn,
		started: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	srv.Handler = h
	srv.NotifyStartedFunc = func() { close(t.started) }

	return t
}

// run serves until the transport is stopped or fails, then signals exited.
func (t *transport) run(exited chan<- struct{}) {
	t.err = t.srv.ActivateAndServe()
	close(t.exited)
	exited <- struct{}{}
}

// stop shuts the transport down and waits for it. A miekg server refuses
// to shut down before it has started, so stop waits for one or the other.
func (t *transport) stop() error {
	select {
	case <-t.started:
		select {
		case <-t.exited:
		default:
			// The only error is "not started", which started rules out.
			_ = t.srv.Shutdown()
		}
	case <-t.exited:
	}
	<-t.exited

	if t.err != nil {
		return fmt.Errorf("serving dns over %s: %w", t.network, t.err)
	}

	return nil
}

// stopTransports stops every transport and returns their failures, or
// ErrServerClosed when there was none.
func stopTransports(ts []*transport) error {
	var errs []error
	for _, t := range ts {
		if err := t.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	return ErrServerClosed
}

// closeTransports closes the sockets. miekg closes them on a clean stop,
// but not when it fails to start.
func closeTransports(ts []*transport) {
	for _, t := range ts {
		_ = t.conn.Close()
	}
}
