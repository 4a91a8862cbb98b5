package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ErrUntrusted is wrapped by every error about a certificate chain that does
// not verify.
var ErrUntrusted = errors.New("certificate not trusted")

// ancestry lists, for each kind of certificate, the kinds of the CAs above it
// from its issuer up to the root.
var ancestry = map[IDType][]IDType{
	AccountsCA:  {RootCA},
	ServicesCA:  {RootCA},
	NetworkData: {RootCA},
	Account:     {AccountsCA, RootCA},
	AccountData: {AccountsCA, RootCA},
	ServiceCA:   {ServicesCA, RootCA},
	MembersCA:   {ServiceCA, ServicesCA, RootCA},
	AppsCA:      {ServiceCA, ServicesCA, RootCA},
	Service:     {ServiceCA, ServicesCA, RootCA},
	ServiceData: {ServiceCA, ServicesCA, RootCA},
	Member:      {MembersCA, ServiceCA, ServicesCA, RootCA},
	MemberData:  {MembersCA, ServiceCA, ServicesCA, RootCA},
	App:         {AppsCA, ServiceCA, ServicesCA, RootCA},
	AppData:     {AppsCA, ServiceCA, ServicesCA, RootCA},
}

// Verifier checks certificate chains of one network.
type Verifier struct {
	// Network is the network's domain.
	Network string

	// Root is the network's root CA certificate, the only trust anchor.
	Root *x509.Certificate

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Want says what a verified chain must be.
type Want struct {
	// Types the leaf may have; at least one.
	Types []IDType

	// ServiceID every service-scoped name of the chain must carry, when
	// AnyService is false.
	ServiceID uint32

	// AnyService accepts service-scoped chains of any one service id.
	AnyService bool

	// ServiceCA, when set, must be the service CA of the chain: the anchor
	// that binds a member certificate to that one service.
	ServiceCA *x509.Certificate

	// Usage is the extended key usage the leaf must allow, such as
	// x509.ExtKeyUsageClientAuth; zero accepts any.
	Usage x509.ExtKeyUsage
}

// Verify checks that certs (leaf first, then any intermediates, in any
// order) lead to the root through exactly the CAs the leaf's type has
// above it, that every name of the chain belongs to the network and that all
// service-scoped names carry the same service id. It returns the leaf's name.
func (v *Verifier) Verify(certs []*x509.Certificate, want Want) (Name, error) {
	if len(certs) == 0 {
		return Name{}, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}

	leaf := certs[0]
	name, err := ParseName(leaf.Subject.CommonName, v.Network)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if !typeIn(name.Type, want.Types) {
		return Name{}, fmt.Errorf("%w: %s is a %v certificate, expected %v",
			ErrUntrusted, name, name.Type, want.Types)
	}
	if name.Type.ServiceScoped() && !want.AnyService && name.ServiceID != want.ServiceID {
		return Name{}, fmt.Errorf("%w: %s is for service %d, expected service %d",
			ErrUntrusted, name, name.ServiceID, want.ServiceID)
	}

	chains, err := v.x509Verify(certs, want.Usage)
	if err != nil {
		return Name{}, fmt.Errorf("%w: %s: %v", ErrUntrusted, name, err)
	}

	var lastErr error
	for _, chain := range chains {
		if lastErr = v.checkChain(chain, name, want.ServiceCA); lastErr == nil {
			return name, nil
		}
	}
	return Name{}, fmt.Errorf("%w: %s: %v", ErrUntrusted, name, lastErr)
}

func typeIn(t IDType, types []IDType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func (v *Verifier) x509Verify(certs []*x509.Certificate, usage x509.ExtKeyUsage) (
	[][]*x509.Certificate, error) {
	roots := x509.NewCertPool()
	roots.AddCert(v.Root)

	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}

	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if usage != 0 {
		opts.KeyUsages = []x509.ExtKeyUsage{usage}
	}
	if v.Now != nil {
		opts.CurrentTime = v.Now()
	}
	return certs[0].Verify(opts)
}

// checkChain checks the names along one verified chain (leaf first, root
// last) against the ancestry of the leaf's type.
func (v *Verifier) checkChain(chain []*x509.Certificate, leaf Name,
	serviceCA *x509.Certificate) error {
	want := ancestry[leaf.Type]
	if len(chain) != len(want)+1 {
		return fmt.Errorf("chain has %d certificates above the leaf, a %v needs %d",
			len(chain)-1, leaf.Type, len(want))
	}

	anchored := serviceCA == nil
	for i, t := range want {
		c := chain[i+1]
		n, err := ParseName(c.Subject.CommonName, v.Network)
		if err != nil {
			return fmt.Errorf("issuer %d: %v", i+1, err)
		}
		if n.Type != t {
			return fmt.Errorf("%s is issued by %s, which is not a %v", chain[i].Subject.CommonName,
				n, t)
		}
		if t.ServiceScoped() && n.ServiceID != leaf.ServiceID {
			return fmt.Errorf("%s is under %s of another service", leaf, n)
		}
		if t == ServiceCA && SameCert(c, serviceCA) {
			anchored = true
		}
	}

	if !anchored {
		return fmt.Errorf("the chain does not lead through the service's own CA")
	}
	return nil
}
