package pki

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// IDType is the kind of identity a certificate stands for.
type IDType int

// The identity types of a Byoda network, from the root down.
const (
	RootCA IDType = iota + 1
	AccountsCA
	ServicesCA
	NetworkData
	ServiceCA
	MembersCA
	AppsCA
	Service
	ServiceData
	Account
	AccountData
	Member
	MemberData
	App
	AppData
)

// ErrBadName is wrapped by every error about a common name that does not fit
// the grammar or the policy.
var ErrBadName = errors.New("invalid common name")

// idSpec describes how one IDType is spelled in a common name.
type idSpec struct {
	label      string // subdomain label, without the service id
	identifier string // fixed first label; empty when it is a uuid
	scoped     bool   // the label carries "-<service id>"
	ca         bool
	data       bool
	name       string
}

var idSpecs = map[IDType]idSpec{
	RootCA:      {label: "root-ca", ca: true, name: "root CA"},
	AccountsCA:  {label: "accounts-ca", identifier: "accounts-ca", ca: true, name: "accounts CA"},
	ServicesCA:  {label: "services-ca", identifier: "services-ca", ca: true, name: "services CA"},
	NetworkData: {label: "network-data", identifier: "network", data: true, name: "network data"},
	ServiceCA: {label: "service-ca", identifier: "service-ca", scoped: true, ca: true,
		name: "service CA"},
	MembersCA: {label: "members-ca", identifier: "members-ca", scoped: true, ca: true,
		name: "members CA"},
	AppsCA:  {label: "apps-ca", identifier: "apps-ca", scoped: true, ca: true, name: "apps CA"},
	Service: {label: "service", identifier: "service", scoped: true, name: "service"},
	ServiceData: {label: "service-data", identifier: "data", scoped: true, data: true,
		name: "service data"},
	Account:     {label: "accounts", name: "account"},
	AccountData: {label: "account-data", data: true, name: "account data"},
	Member:      {label: "members", scoped: true, name: "member"},
	MemberData:  {label: "member-data", scoped: true, data: true, name: "member data"},
	App:         {label: "apps", scoped: true, name: "app"},
	AppData:     {label: "app-data", scoped: true, data: true, name: "app data"},
}

// labelTypes maps a subdomain label (without service id) to its IDType.
var labelTypes = func() map[string]IDType {
	m := make(map[string]IDType, len(idSpecs))
	for t, s := range idSpecs {
		if t != RootCA {
			m[s.label] = t
		}
	}
	return m
}()

// String returns a readable name of the type, such as "members CA".
func (t IDType) String() string {
	if s, ok := idSpecs[t]; ok {
		return s.name
	}
	return "IDType(" + strconv.Itoa(int(t)) + ")"
}

// IsCA reports whether certificates of this type sign other certificates.
func (t IDType) IsCA() bool { return idSpecs[t].ca }

// IsData reports whether this is a data secret: an RSA key that signs
// documents and encrypts shared secrets rather than one used for TLS.
func (t IDType) IsData() bool { return idSpecs[t].data }

// HasUUID reports whether names of this type start with a UUID (an account,
// member or app id) rather than a fixed label.
func (t IDType) HasUUID() bool {
	s, ok := idSpecs[t]
	return ok && t != RootCA && s.identifier == ""
}

// ServiceScoped reports whether names of this type carry a service id.
func (t IDType) ServiceScoped() bool { return idSpecs[t].scoped }

// Name is a parsed certificate common name.
type Name struct {
	Type IDType

	// ID is the account, member or app id for types that have one, in
	// canonical lower-case form, and empty otherwise.
	ID string

	// ServiceID is the service the name belongs to, for service-scoped types.
	ServiceID uint32

	// Network is the network's domain, such as "byoda.net".
	Network string
}

// String returns the common name, such as "<uuid>.members-42.byoda.net".
func (n Name) String() string {
	s := idSpecs[n.Type]
	if n.Type == RootCA {
		return "root-ca." + n.Network
	}

	label := s.label
	if s.scoped {
		label += "-" + strconv.FormatUint(uint64(n.ServiceID), 10)
	}

	first := s.identifier
	if first == "" {
		first = n.ID
	}
	return first + "." + label + "." + n.Network
}

// NewName returns the name of a type that has no id, such as the services CA
// or, with a service id, a service's members CA.
func NewName(t IDType, network string, serviceID uint32) Name {
	return Name{Type: t, ServiceID: serviceID, Network: network}
}

// AccountName returns the TLS name of an account.
func AccountName(network, accountID string) Name {
	return Name{Type: Account, ID: accountID, Network: network}
}

// MemberName returns the TLS name of a membership.
func MemberName(network, memberID string, serviceID uint32) Name {
	return Name{Type: Member, ID: memberID, ServiceID: serviceID, Network: network}
}

// ParseName parses cn as a common name of network. Unlike the reference,
// which matches subdomain labels by prefix, the grammar is exact: the
// subdomain label, the fixed first label of CA and service names, the UUID
// form and the service id must all be spelled exactly as [Name.String] does.
func ParseName(cn, network string) (Name, error) {
	cn = strings.ToLower(cn)
	network = strings.ToLower(network)

	rest, ok := strings.CutSuffix(cn, "."+network)
	if !ok || rest == "" {
		return Name{}, fmt.Errorf("%w: %q is not in network %s", ErrBadName, cn, network)
	}

	if rest == "root-ca" {
		return Name{Type: RootCA, Network: network}, nil
	}

	first, label, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(label, ".") {
		return Name{}, fmt.Errorf("%w: %q must have the form <identifier>.<kind>.%s",
			ErrBadName, cn, network)
	}

	t, sid, err := parseLabel(label)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %q: %v", ErrBadName, cn, err)
	}

	n := Name{Type: t, ServiceID: sid, Network: network}
	if err := n.setIdentifier(first); err != nil {
		return Name{}, fmt.Errorf("%w: %q: %v", ErrBadName, cn, err)
	}
	return n, nil
}

// parseLabel reads a subdomain label such as "accounts" or "members-42".
func parseLabel(label string) (IDType, uint32, error) {
	if t, ok := labelTypes[label]; ok && !t.ServiceScoped() {
		return t, 0, nil
	}

	i := strings.LastIndexByte(label, '-')
	if i < 0 {
		return 0, 0, fmt.Errorf("unknown kind %q", label)
	}

	t, ok := labelTypes[label[:i]]
	if !ok || !t.ServiceScoped() {
		return 0, 0, fmt.Errorf("unknown kind %q", label)
	}

	sid, err := ParseServiceID(label[i+1:])
	if err != nil {
		return 0, 0, err
	}
	return t, sid, nil
}

func (n *Name) setIdentifier(first string) error {
	s := idSpecs[n.Type]
	if s.identifier != "" {
		if first != s.identifier {
			return fmt.Errorf("a %s name must start with %q", s.name, s.identifier)
		}
		return nil
	}

	id, err := ParseUUID(first)
	if err != nil {
		return fmt.Errorf("a %s name must start with a UUID: %v", s.name, err)
	}
	n.ID = id
	return nil
}

// ParseServiceID parses a service id: a decimal number from 0 to 2^32-1
// without sign or leading zeros.
func ParseServiceID(s string) (uint32, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("service id %q is not a canonical decimal number", s)
	}

	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("service id %q is not a number from 0 to 4294967295", s)
	}
	return uint32(v), nil
}

// ParseUUID checks that s is a UUID in canonical 8-4-4-4-12 form and returns
// it in lower case.
func ParseUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%q is not a UUID in 8-4-4-4-12 form", s)
	}

	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a UUID", s)
	}
	return u.String(), nil
}

// CheckNetwork checks that network is a DNS domain of at least two labels
// that can carry Byoda names.
func CheckNetwork(network string) error {
	if network != strings.ToLower(network) {
		return fmt.Errorf("network %q must be lower case", network)
	}
	if len(network) > 200 {
		return fmt.Errorf("network %q is too long", network)
	}

	labels := strings.Split(network, ".")
	if len(labels) < 2 {
		return fmt.Errorf("network %q must have at least two labels, like byoda.net", network)
	}

	for _, l := range labels {
		if !validLabel(l) {
			return fmt.Errorf("network %q has an invalid DNS label %q", network, l)
		}
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}

	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
