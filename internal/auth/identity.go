package auth

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// IDType is the kind of identity that issues a token.
type IDType int

// The identities that sign tokens: the pod's account and its memberships.
const (
	Account IDType = iota + 1
	Member
)

// issuerPrefixes spell each IDType in the "iss" claim; the space after
// "urn:" is part of the reference's wire format.
var issuerPrefixes = map[IDType]string{
	Account: "urn: account_id-",
	Member:  "urn: member_id-",
}

// String returns "account" or "member".
func (t IDType) String() string {
	switch t {
	case Account:
		return "account"
	case Member:
		return "member"
	}
	return "IDType(" + strconv.Itoa(int(t)) + ")"
}

// Identity names the account or member that signed a token.
type Identity struct {
	Type IDType
	ID   uuid.UUID
}

// String returns the identity as an "iss" claim, such as
// "urn: member_id-<uuid>".
func (id Identity) String() string {
	return issuerPrefixes[id.Type] + id.ID.String()
}

// valid reports whether the identity names a real account or member.
func (id Identity) valid() bool {
	_, ok := issuerPrefixes[id.Type]
	return ok && id.ID != uuid.Nil
}

// ParseIdentity parses an "iss" claim. Only the canonical lower-case UUID
// form is accepted, as that is the only one a pod writes.
func ParseIdentity(iss string) (Identity, error) {
	for t, prefix := range issuerPrefixes {
		rest, ok := strings.CutPrefix(iss, prefix)
		if !ok {
			continue
		}

		id, err := uuid.Parse(rest)
		if err != nil || id.String() != rest || id == uuid.Nil {
			return Identity{}, fmt.Errorf("%w: issuer has no valid %s id", ErrMalformed, t)
		}
		return Identity{Type: t, ID: id}, nil
	}
	return Identity{}, fmt.Errorf("%w: unknown issuer type", ErrMalformed)
}

// PodAudience is the audience of tokens a pod accepts: "urn: network-<net>".
func PodAudience(network string) string {
	return "urn: network-" + network
}

// ServiceAudience is the audience of tokens a member presents to its
// service's server: "urn:network-<net>:service-<sid>" (no space, as in the
// reference).
func ServiceAudience(network string, serviceID uint32) string {
	return "urn:network-" + network + ":service-" + formatServiceID(serviceID)
}

// AccountScope is the scope of an account token:
// "urn: <account_id>.accounts.<net>".
func AccountScope(accountID uuid.UUID, network string) string {
	return "urn: " + accountID.String() + ".accounts." + network
}

// MemberScope is the scope of a member token:
// "urn: <member_id>.members-<sid>.<net>".
func MemberScope(memberID uuid.UUID, serviceID uint32, network string) string {
	sid := formatServiceID(serviceID)
	return "urn: " + memberID.String() + ".members-" + sid + "." + network
}

// ServiceScope is the scope of a token a member presents to its service:
// "urn: <sid>.service-<sid>.<net>".
func ServiceScope(serviceID uint32, network string) string {
	sid := formatServiceID(serviceID)
	return "urn: " + sid + ".service-" + sid + "." + network
}

func formatServiceID(serviceID uint32) string {
	return strconv.FormatUint(uint64(serviceID), 10)
}
