// Package dns is the authoritative name server for the zone of one Byoda
// network.
//
// The directory server of a network such as "byoda.test" runs a [Server] so
// that pods and services can find each other by name. The zone holds four
// kinds of names:
//
//   - "<uuid>.accounts.<network>", the pod of an account;
//   - "<uuid>.members-<sid>.<network>", the pod of a member of service <sid>;
//   - "service.service-<sid>.<network>", the server of service <sid>;
//   - fixed names such as "dir.<network>", given in [Config.Static].
//
// The first three are dynamic: the server asks [Config.Lookup] for their
// current address on every query, so a new registration replaces the old
// address at once (apart from resolver caching, bounded by [Config.TTL]).
// Names that do not fit those patterns are answered NXDOMAIN without asking
// Lookup, which is given only canonical names: a lower-case uuid in its
// 8-4-4-4-12 form and a service id written in decimal without leading zeros.
// When Lookup fails, the query is answered SERVFAIL and the failure logged as
// a warning.
//
// The labels "accounts", "members-<sid>" and "service-<sid>" directly under
// the network always exist, with no records of their own, as do the
// ancestors of the static names. Queries for them get an empty NOERROR answer
// (NODATA) instead of NXDOMAIN, because a resolver that sees NXDOMAIN for a
// name may assume that nothing below it exists (RFC 8020).
//
// The apex carries an SOA record and NS records for [Config.NameServers],
// with their addresses as glue when they are static names. The SOA serial is
// the Unix time at which the Server was created: the zone is never
// transferred, so the serial only has to grow across restarts, not with each
// registration.
//
// The server answers only for its zone (REFUSED otherwise, as it is not a
// resolver), only standard queries (NOTIMP for other opcodes) and only the
// IN class. Over UDP, answers that do not fit the client's buffer are
// truncated so that the client retries over TCP.
package dns
