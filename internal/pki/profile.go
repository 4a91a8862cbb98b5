package pki

import (
	"crypto/x509"
	"time"
)

const day = 24 * time.Hour

// profile is what a certificate of one IDType carries and how long it lives.
type profile struct {
	keyUsage    x509.KeyUsage
	extKeyUsage []x509.ExtKeyUsage
	maxPathLen  int // -1: unlimited; only for CAs
	validity    time.Duration
}

// CA certificates carry no extended key usage: the reference's OCSP and CT
// usages on CAs make TLS chain verification fail in OpenSSL and Go.
var (
	caUsage   = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tlsUsage  = x509.KeyUsageDigitalSignature
	dataUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
		x509.KeyUsageKeyEncipherment
	tlsExtUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// profiles holds the signing profile of every IDType. The path lengths are
// the depth the hierarchy needs below each CA, so a members CA cannot mint
// sub-CAs; the reference emits none.
var profiles = map[IDType]profile{
	RootCA:      {keyUsage: caUsage, maxPathLen: -1, validity: 36500 * day},
	AccountsCA:  {keyUsage: caUsage, maxPathLen: 0, validity: 3650 * day},
	ServicesCA:  {keyUsage: caUsage, maxPathLen: 2, validity: 5840 * day},
	NetworkData: {keyUsage: dataUsage, validity: 3650 * day},
	ServiceCA:   {keyUsage: caUsage, maxPathLen: 1, validity: 5475 * day},
	MembersCA:   {keyUsage: caUsage, maxPathLen: 0, validity: 1825 * day},
	AppsCA:      {keyUsage: caUsage, maxPathLen: 0, validity: 1825 * day},
	Service:     {keyUsage: tlsUsage, extKeyUsage: tlsExtUsage, validity: 730 * day},
	ServiceData: {keyUsage: dataUsage, validity: 1825 * day},
	Account:     {keyUsage: tlsUsage, extKeyUsage: tlsExtUsage, validity: 365 * day},
	AccountData: {keyUsage: dataUsage, validity: 1095 * day},
	Member:      {keyUsage: tlsUsage, extKeyUsage: tlsExtUsage, validity: 365 * day},
	MemberData:  {keyUsage: dataUsage, validity: 1095 * day},
	App:         {keyUsage: tlsUsage, extKeyUsage: tlsExtUsage, validity: 365 * day},
	AppData:     {keyUsage: dataUsage, validity: 365 * day},
}

// accepts lists, for each kind of CA, the kinds of certificate it signs.
var accepts = map[IDType][]IDType{
	RootCA:     {AccountsCA, ServicesCA, NetworkData},
	AccountsCA: {Account, AccountData},
	ServicesCA: {ServiceCA},
	ServiceCA:  {MembersCA, AppsCA, Service, ServiceData},
	MembersCA:  {Member, MemberData},
	AppsCA:     {App, AppData},
}

// Validity returns how long a certificate of type t is issued for.
func Validity(t IDType) time.Duration { return profiles[t].validity }

// Issuer returns the kind of CA that signs certificates of type t, and false
// for the root, which signs itself.
func Issuer(t IDType) (IDType, bool) {
	for ca, kinds := range accepts {
		for _, k := range kinds {
			if k == t {
				return ca, true
			}
		}
	}
	return 0, false
}

// clockSkew is how far back a new certificate's validity starts, so that a
// peer whose clock is a little behind accepts it at once.
const clockSkew = 5 * time.Minute
