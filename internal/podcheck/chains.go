package podcheck

import (
	"crypto/x509"
	"fmt"

	"github.com/byoda/byoda-go/internal/pki"
)

// Fixes for certificates that the pod or the network renews.
const (
	fixRenewAccount = "the pod renews its certificates 30 days before they expire while " +
		"it runs: start it, check that it reaches the directory (DIRECTORY_URL), and look " +
		"in its log for \"certificate renewal failed\""
	fixRenewMember = "the pod renews its certificates 30 days before they expire while " +
		"it runs: start it, check that it reaches the service, and look in its log for " +
		"\"certificate renewal failed\""
	fixNetwork = "this certificate is the network's: ask the network's operators to " +
		"renew it"
	fixClock = "set this machine's clock right (NTP)"
)

// dateFormat shows expiry dates.
const dateFormat = "2006-01-02"

// checkChains checks every certificate chain of the pod under the pinned
// root and how long each stays valid.
func (c *checker) checkChains() {
	netData, _ := pki.LoadCerts(c.paths.NetworkDataCert())
	c.checkChain("network data certificate", netData,
		pki.Want{Types: []pki.IDType{pki.NetworkData}}, fixNetwork)
	c.checkChain("account certificate", c.account.chain,
		pki.Want{Types: []pki.IDType{pki.Account}}, fixRenewAccount)
	c.checkChain("account data certificate", c.accountData.chain,
		pki.Want{Types: []pki.IDType{pki.AccountData}}, fixRenewAccount)

	for _, m := range c.members {
		caChain, _ := pki.LoadCerts(c.paths.ServiceCAChain(m.sid))
		c.checkChain(fmt.Sprintf("service %d CA chain", m.sid), caChain,
			pki.Want{Types: []pki.IDType{pki.ServiceCA}, ServiceID: m.sid}, fixNetwork)
		want := pki.Want{ServiceID: m.sid, ServiceCA: m.serviceCA}
		want.Types = []pki.IDType{pki.Member}
		c.checkChain(fmt.Sprintf("member certificate of service %d", m.sid), m.tls.chain,
			want, fixRenewMember)
		want.Types = []pki.IDType{pki.MemberData}
		c.checkChain(fmt.Sprintf("member data certificate of service %d", m.sid),
			m.data.chain, want, fixRenewMember)
	}
}

// checkChain checks one chain, leaf first: present, within its validity,
// verified under the root as want says, and not about to expire.
func (c *checker) checkChain(check string, chain []*x509.Certificate, want pki.Want,
	fixRenew string) {
	if len(chain) == 0 {
		c.add(check, Fail, "missing or unreadable", "restart the pod: it drops a "+
			"membership whose join did not finish; or restore ROOT_DIR from a backup")
		return
	}
	now := c.cfg.Now()
	first, last := chain[0], chain[0]
	for _, cert := range chain {
		if cert.NotAfter.Before(first.NotAfter) {
			first = cert
		}
		if cert.NotBefore.After(last.NotBefore) {
			last = cert
		}
	}
	whose := func(cert *x509.Certificate) string {
		if cert == chain[0] {
			return cert.Subject.CommonName
		}
		return fmt.Sprintf("%s (the issuer of %s)", cert.Subject.CommonName,
			chain[0].Subject.CommonName)
	}

	switch {
	case now.Before(last.NotBefore):
		c.add(check, Fail, fmt.Sprintf("%s is valid only from %s, after this machine's "+
			"time", whose(last), last.NotBefore.UTC().Format(dateFormat)), fixClock)
		return
	case !now.Before(first.NotAfter):
		c.add(check, Fail, fmt.Sprintf("%s expired on %s", whose(first),
			first.NotAfter.UTC().Format(dateFormat)), fixRenew)
		return
	}
	if _, err := c.verifier.Verify(chain, want); err != nil {
		c.add(check, Fail, fmt.Sprintf("does not verify under the pinned root CA: %v",
			err), "restore ROOT_DIR from a backup of this pod; its files were replaced "+
			"or damaged")
		return
	}

	left := first.NotAfter.Sub(now)
	detail := fmt.Sprintf("%s, valid until %s (%s)", chain[0].Subject.CommonName,
		first.NotAfter.UTC().Format(dateFormat), days(left))
	if left < RenewWarning {
		c.add(check, Warn, fmt.Sprintf("%s expires on %s, in %s", whose(first),
			first.NotAfter.UTC().Format(dateFormat), days(left)), fixRenew)
		return
	}
	c.add(check, OK, detail, "")
}
