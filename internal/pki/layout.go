package pki

import (
	"fmt"
	"path/filepath"
)

// Paths names the files of a network's secrets under one root directory, in
// the layout of the reference, so that its tools and ours read each other's
// directories.
type Paths struct {
	// Root is the directory everything lives under.
	Root string

	// Network is the network's domain.
	Network string
}

// NetworkDir is the directory of the network's certificates.
func (p Paths) NetworkDir() string {
	return filepath.Join(p.Root, "network-"+p.Network)
}

// PrivateDir is the directory of the encrypted private keys.
func (p Paths) PrivateDir() string { return filepath.Join(p.Root, "private") }

func (p Paths) netFile(kind string) string {
	return filepath.Join(p.NetworkDir(), fmt.Sprintf("network-%s-%s-cert.pem", p.Network, kind))
}

func (p Paths) netKey(kind string) string {
	return filepath.Join(p.PrivateDir(), fmt.Sprintf("network-%s-%s.key", p.Network, kind))
}

// RootCACert is the root CA certificate file, a single bare PEM block.
func (p Paths) RootCACert() string { return p.netFile("root-ca") }

// RootCAKey is the root CA's key file, meant to be kept offline.
func (p Paths) RootCAKey() string { return p.netKey("root-ca") }

// NetworkDataCert is the network data certificate file.
func (p Paths) NetworkDataCert() string { return p.netFile("data") }

// NetworkDataKey is the network data key file.
func (p Paths) NetworkDataKey() string { return p.netKey("data") }

// AccountsCACert is the accounts CA certificate file.
func (p Paths) AccountsCACert() string { return p.netFile("accounts-ca") }

// AccountsCAKey is the accounts CA key file.
func (p Paths) AccountsCAKey() string { return p.netKey("accounts-ca") }

// ServicesCACert is the services CA certificate file.
func (p Paths) ServicesCACert() string { return p.netFile("services-ca") }

// ServicesCAKey is the services CA key file.
func (p Paths) ServicesCAKey() string { return p.netKey("services-ca") }

// DirectoryCert is the TLS certificate of dir.<network>, issued by the root
// for a private network. The reference has no such file: its directory uses
// a public certificate.
func (p Paths) DirectoryCert() string { return p.netFile("dir") }

// DirectoryKey is the key of DirectoryCert.
func (p Paths) DirectoryKey() string { return p.netKey("dir") }

// ServicesDir is the directory that holds one directory per service.
func (p Paths) ServicesDir() string { return filepath.Join(p.NetworkDir(), "services") }

// ServiceDir is the directory of one service's files.
func (p Paths) ServiceDir(sid uint32) string {
	return filepath.Join(p.ServicesDir(), fmt.Sprintf("service-%d", sid))
}

func (p Paths) svcFile(sid uint32, kind string) string {
	return filepath.Join(p.ServiceDir(sid),
		fmt.Sprintf("network-%s-service-%d%s-cert.pem", p.Network, sid, kind))
}

func (p Paths) svcKey(sid uint32, kind string) string {
	return filepath.Join(p.PrivateDir(),
		fmt.Sprintf("network-%s-service-%d%s.key", p.Network, sid, kind))
}

// ServiceContract is the network-signed contract of a service.
func (p Paths) ServiceContract(sid uint32) string {
	return filepath.Join(p.ServiceDir(sid), "service-contract.json")
}

// ServiceCACert is the service CA certificate file (with its chain).
func (p Paths) ServiceCACert(sid uint32) string { return p.svcFile(sid, "-ca") }

// ServiceCAChain is the service CA, the services CA and the root in one
// file: the trust file for a service's member certificates.
func (p Paths) ServiceCAChain(sid uint32) string {
	return filepath.Join(p.ServiceDir(sid),
		fmt.Sprintf("network-%s-service-%d-ca-certchain.pem", p.Network, sid))
}

// ServiceCAKey is the service CA key file, meant to be kept offline.
func (p Paths) ServiceCAKey(sid uint32) string { return p.svcKey(sid, "-ca") }

// MembersCACert is a service's members CA certificate file.
func (p Paths) MembersCACert(sid uint32) string { return p.svcFile(sid, "-members-ca") }

// MembersCAKey is the members CA key file; "member-ca" is the reference's
// spelling.
func (p Paths) MembersCAKey(sid uint32) string { return p.svcKey(sid, "-member-ca") }

// AppsCACert is a service's apps CA certificate file.
func (p Paths) AppsCACert(sid uint32) string { return p.svcFile(sid, "-apps-ca") }

// AppsCAKey is the apps CA key file.
func (p Paths) AppsCAKey(sid uint32) string { return p.svcKey(sid, "-apps-ca") }

// ServiceCert is a service's TLS certificate file.
func (p Paths) ServiceCert(sid uint32) string { return p.svcFile(sid, "") }

// ServiceKey is a service's TLS key file.
func (p Paths) ServiceKey(sid uint32) string { return p.svcKey(sid, "") }

// ServiceDataCert is a service's data certificate file.
func (p Paths) ServiceDataCert(sid uint32) string { return p.svcFile(sid, "-data") }

// ServiceDataKey is a service's data key file.
func (p Paths) ServiceDataKey(sid uint32) string { return p.svcKey(sid, "-data") }

// AccountDir is the directory of a pod's account files; pods always use the
// account alias "pod".
func (p Paths) AccountDir() string { return filepath.Join(p.NetworkDir(), "account-pod") }

// AccountCert is the account TLS certificate file.
func (p Paths) AccountCert() string { return filepath.Join(p.AccountDir(), "pod-cert.pem") }

// AccountKey is the account TLS key file.
func (p Paths) AccountKey() string { return p.netKey("account-pod") }

// AccountDataCert is the account data certificate file.
func (p Paths) AccountDataCert() string {
	return filepath.Join(p.AccountDir(), "pod-data-cert.pem")
}

// AccountDataKey is the account data key file.
func (p Paths) AccountDataKey() string { return p.netKey("account-pod-data") }

// MemberDir is the directory of one membership's files.
func (p Paths) MemberDir(sid uint32) string {
	return filepath.Join(p.AccountDir(), fmt.Sprintf("service-%d", sid))
}

// MemberCert is a membership's TLS certificate file.
func (p Paths) MemberCert(sid uint32) string {
	return filepath.Join(p.MemberDir(sid), fmt.Sprintf("network-%s-member-%d-cert.pem",
		p.Network, sid))
}

// MemberKey is a membership's TLS key file.
func (p Paths) MemberKey(sid uint32) string {
	return p.netKey(fmt.Sprintf("account-pod-member-%d", sid))
}

// MemberDataCert is a membership's data certificate file.
func (p Paths) MemberDataCert(sid uint32) string {
	return filepath.Join(p.MemberDir(sid), fmt.Sprintf("network-%s-member-%d-data-cert.pem",
		p.Network, sid))
}

// MemberDataKey is a membership's data key file.
func (p Paths) MemberDataKey(sid uint32) string {
	return p.netKey(fmt.Sprintf("account-pod-member-%d-data", sid))
}
