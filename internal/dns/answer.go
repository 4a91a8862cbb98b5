package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// maxUDPSize caps the UDP responses the server sends, whatever buffer the
// client offers, so that answers are not fragmented (DNS Flag Day 2020).
const maxUDPSize = 1232

// SOA timers. Nothing transfers the zone, so refresh, retry and expire only
// have to be plausible.
const (
	soaRefresh = 3600
	soaRetry   = 900
	soaExpire  = 604800
)

// errInvalidAddress reports a lookup function that broke its contract.
var errInvalidAddress = errors.New("lookup found the name but returned an invalid address")

// node is what the zone holds at one name.
type node struct {
	exists bool
	apex   bool
	addrs  []netip.Addr
}

// respond builds the answer to req, without EDNS and size handling.
func (s *Server) respond(ctx context.Context, req *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg)
	switch {
	case req.Opcode != mdns.OpcodeQuery:
		return resp.SetRcode(req, mdns.RcodeNotImplemented)
	case len(req.Question) != 1:
		return resp.SetRcode(req, mdns.RcodeFormatError)
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return resp.SetRcode(req, mdns.RcodeBadVers)
	}

	resp.SetReply(req)
	q := req.Question[0]
	name := canonicalName(q.Name)
	if s.refuses(q, name) {
		resp.Rcode = mdns.RcodeRefused
		return resp
	}

	n, err := s.find(ctx, name)
	if err != nil {
		s.logger.Warn("answering dns query", "name", name, "error", err)
		resp.Rcode = mdns.RcodeServerFailure
		return resp
	}
	resp.Authoritative = true
	s.fill(resp, q, n)

	return resp
}

// refuses reports whether the server declines q, whose name is name in
// canonical form: it is not a resolver, holds only IN records and builds its
// answers on demand, so there is no zone to transfer.
func (s *Server) refuses(q mdns.Question, name string) bool {
	switch {
	case !inZone(name, s.zone):
		return true
	case q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY:
		return true
	}

	return q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR
}

// find returns what the zone holds at a canonical name in the zone.
func (s *Server) find(ctx context.Context, name string) (node, error) {
	apex := name == s.zone
	if addrs, ok := s.static[name]; ok {
		return node{exists: true, apex: apex, addrs: addrs}, nil
	}
	if apex || s.nonTerminals[name] {
		return node{exists: true, apex: apex}, nil
	}

	switch classify(strings.TrimSuffix(name, "."+s.zone)) {
	case kindStructural:
		return node{exists: true}, nil
	case kindDynamic:
		return s.lookupNode(ctx, name)
	}

	return node{}, nil
}

// lookupNode asks the lookup function for a dynamic name.
func (s *Server) lookupNode(ctx context.Context, name string) (node, error) {
	ctx, cancel := context.WithTimeout(ctx, s.lookupTimeout)
	defer cancel()

	addr, found, err := s.lookup(ctx, name)
	switch {
	case err != nil:
		return node{}, fmt.Errorf("looking up %s: %w", name, err)
	case !found:
		return node{}, nil
	case !addr.IsValid():
		return node{}, fmt.Errorf("looking up %s: %w", name, errInvalidAddress)
	}

	return node{exists: true, addrs: []netip.Addr{addr.Unmap()}}, nil
}

// fill puts the records of n that answer q into resp, or the SOA record
// that makes resp a negative answer.
func (s *Server) fill(resp *mdns.Msg, q mdns.Question, n node) {
	if !n.exists {
		resp.Rcode = mdns.RcodeNameError
		resp.Ns = []mdns.RR{s.negativeSOA}
		return
	}

	if n.apex {
		resp.Answer = s.apexRecords(q.Qtype)
	}
	for _, addr := range n.addrs {
		if rr := s.addressRecord(q, addr); rr != nil {
			resp.Answer = append(resp.Answer, rr)
		}
	}

	if len(resp.Answer) == 0 {
		resp.Ns = []mdns.RR{s.negativeSOA}
	}
	if n.apex && (q.Qtype == mdns.TypeNS || q.Qtype == mdns.TypeANY) {
		resp.Extra = append(resp.Extra, s.glue...)
	}
}

// apexRecords returns the SOA and NS records that answer a query of type
// qtype at the apex.
func (s *Server) apexRecords(qtype uint16) []mdns.RR {
	switch qtype {
	case mdns.TypeSOA:
		return []mdns.RR{s.soa}
	case mdns.TypeNS:
		return append([]mdns.RR(nil), s.nameServers...)
	case mdns.TypeANY:
		return append([]mdns.RR{s.soa}, s.nameServers...)
	}

	return nil
}

// addressRecord returns the A or AAAA record for addr when q asks for it,
// and nil otherwise. The owner name is spelled as the question spelled it.
func (s *Server) addressRecord(q mdns.Question, addr netip.Addr) mdns.RR {
	wantA := q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY
	wantAAAA := q.Qtype == mdns.TypeAAAA || q.Qtype == mdns.TypeANY
	switch {
	case addr.Is4() && wantA:
		return newA(q.Name, addr, s.ttl)
	case addr.Is6() && wantAAAA:
		return newAAAA(q.Name, addr, s.ttl)
	}

	return nil
}

func newA(owner string, addr netip.Addr, ttl uint32) *mdns.A {
	return &mdns.A{Hdr: header(owner, mdns.TypeA, ttl), A: net.IP(addr.AsSlice())}
}

func newAAAA(owner string, addr netip.Addr, ttl uint32) *mdns.AAAA {
	return &mdns.AAAA{Hdr: header(owner, mdns.TypeAAAA, ttl), AAAA: net.IP(addr.AsSlice())}
}

// header returns the header of an IN-class record.
func header(owner string, rrtype uint16, ttl uint32) mdns.RR_Header {
	return mdns.RR_Header{Name: owner, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: ttl}
}

// fitTransport adds the OPT record an EDNS client expects and, over UDP,
// truncates resp to the size the client can receive.
func fitTransport(resp, req *mdns.Msg, udp bool) {
	size := mdns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(maxUDPSize, false)
		size = min(int(opt.UDPSize()), maxUDPSize)
	}

	if udp {
		resp.Truncate(size)
		return
	}
	resp.Compress = true
}
