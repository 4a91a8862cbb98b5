package podcheck

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/byoda/byoda-go/internal/pki"
)

// fixStart is the fix for a ROOT_DIR without a pod in it.
const fixStart = "start the pod once with this ROOT_DIR so that it creates its account, " +
	"or restore a backup into it with `byoda pod restore`"

// checkFiles checks that ROOT_DIR holds a pod: its account id and its
// account's certificates.
func (c *checker) checkFiles() bool {
	const check = "root dir"
	root := c.cfg.Pod.RootDir
	data, err := os.ReadFile(filepath.Join(root, "account_id"))
	if errors.Is(err, fs.ErrNotExist) {
		c.add(check, Fail, fmt.Sprintf("%s holds no pod (no account_id file)", root),
			fixStart)
		return false
	}
	if err != nil {
		c.add(check, Fail, fmt.Sprintf("reading the account id: %v", err),
			"make ROOT_DIR readable by the user that runs this check")
		return false
	}
	kept := strings.TrimSpace(string(data))
	if want := c.cfg.Pod.AccountID; want != "" && !strings.EqualFold(want, kept) {
		c.add(check, Fail, fmt.Sprintf("%s holds account %s, but ACCOUNT_ID is %s", root,
			kept, want), "unset ACCOUNT_ID, or set ROOT_DIR to the directory of account "+want)
		return false
	}
	c.cfg.Pod.AccountID = kept

	var missing []string
	for _, p := range []string{c.paths.RootCACert(), c.paths.AccountCert(),
		c.paths.AccountKey(), c.paths.AccountDataCert(), c.paths.AccountDataKey()} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, c.rel(p))
		}
	}
	if len(missing) > 0 {
		c.add(check, Fail, fmt.Sprintf("%s lacks %s of account %s", root,
			joinNames(missing), kept), fixStart)
		return false
	}
	c.add(check, OK, fmt.Sprintf("%s holds account %s of network %s", root, kept,
		c.cfg.Pod.Network), "")
	return true
}

// rel names a file of ROOT_DIR relative to it.
func (c *checker) rel(p string) string {
	if r, err := filepath.Rel(c.cfg.Pod.RootDir, p); err == nil {
		return r
	}
	return p
}

// checkRoot checks the root CA that ROOT_DIR pins against NETWORK_ROOT_CA.
func (c *checker) checkRoot() bool {
	const check = "root CA"
	certs, err := pki.LoadCerts(c.paths.RootCACert())
	if err != nil {
		c.add(check, Fail, err.Error(), fixStart)
		return false
	}
	root := certs[0]
	fp := pki.Fingerprint(root)
	switch pod := c.cfg.Pod; {
	case pod.RootCAFingerprint != "" && pod.RootCAFingerprint != fp:
		c.add(check, Fail, fmt.Sprintf("ROOT_DIR pins the root CA %s, and NETWORK_ROOT_CA "+
			"names %s", fp, pod.RootCAFingerprint), "set NETWORK_ROOT_CA to the network "+
			"this pod belongs to, or use the ROOT_DIR of that network's pod")
		return false
	case pod.RootCAFile != "":
		pinned, err := pki.LoadCerts(pod.RootCAFile)
		if err != nil || !bytes.Equal(pinned[0].Raw, root.Raw) {
			c.add(check, Fail, fmt.Sprintf("ROOT_DIR pins the root CA %s, which is not "+
				"the one in NETWORK_ROOT_CA %s", fp, pod.RootCAFile), "set NETWORK_ROOT_CA "+
				"to the network this pod belongs to")
			return false
		}
	}
	c.root = root
	c.verifier = &pki.Verifier{Network: c.cfg.Pod.Network, Root: root, Now: c.cfg.Now}
	c.add(check, OK, fmt.Sprintf("%s, fingerprint %s", root.Subject.CommonName, fp), "")
	return true
}

// loadMembers finds the memberships of ROOT_DIR: the service directories
// of the account that hold a contract, as the pod loads them.
func (c *checker) loadMembers() {
	entries, err := os.ReadDir(c.paths.AccountDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "service-")
		sid, err := pki.ParseServiceID(rest)
		if !e.IsDir() || !ok || err != nil {
			continue
		}
		contract := filepath.Join(c.paths.MemberDir(sid), "service-contract.json")
		if _, err := os.Stat(contract); err != nil {
			continue
		}
		m := &member{sid: sid}
		m.tls.chain, _ = pki.LoadCerts(c.paths.MemberCert(sid))
		m.data.chain, _ = pki.LoadCerts(c.paths.MemberDataCert(sid))
		if len(m.tls.chain) > 0 {
			if n, err := pki.ParseName(m.tls.chain[0].Subject.CommonName,
				c.cfg.Pod.Network); err == nil {
				m.id, m.name = n.ID, n.String()
			}
		}
		if ca, err := pki.LoadCerts(c.paths.ServiceCAChain(sid)); err == nil {
			m.serviceCA = ca[0]
		}
		c.members = append(c.members, m)
	}
}

// keyFile is a key of ROOT_DIR with the certificate it belongs to.
type keyFile struct {
	path string
	id   *identity
}

// checkKeys opens every key with PRIVATE_KEY_SECRET and checks that it
// belongs to its certificate.
func (c *checker) checkKeys() {
	const check = "keys"
	c.account.chain, _ = pki.LoadCerts(c.paths.AccountCert())
	c.accountData.chain, _ = pki.LoadCerts(c.paths.AccountDataCert())
	keys := []keyFile{{c.paths.AccountKey(), &c.account},
		{c.paths.AccountDataKey(), &c.accountData}}
	for _, m := range c.members {
		keys = append(keys, keyFile{c.paths.MemberKey(m.sid), &m.tls},
			keyFile{c.paths.MemberDataKey(m.sid), &m.data})
	}

	var wrong, broken []string
	var firstErr error
	for _, k := range keys {
		key, err := pki.LoadKey(k.path, c.cfg.Pod.PrivateKeySecret)
		switch {
		case errors.Is(err, pki.ErrWrongPassword):
			wrong = append(wrong, c.rel(k.path))
		case err != nil:
			broken = append(broken, c.rel(k.path))
			firstErr = err
		case len(k.id.chain) == 0 || !samePublicKey(key, k.id.chain[0]):
			broken = append(broken, c.rel(k.path))
			firstErr = fmt.Errorf("%s does not hold the key of its certificate", c.rel(k.path))
		default:
			k.id.key = key
		}
	}

	switch {
	case len(wrong) > 0:
		c.add(check, Fail, fmt.Sprintf("PRIVATE_KEY_SECRET does not open %s",
			joinNames(wrong)), "set PRIVATE_KEY_SECRET to the passphrase the pod was "+
			"started with; the keys cannot be opened without it")
	case len(broken) > 0:
		c.add(check, Fail, fmt.Sprintf("%s: %v", joinNames(broken), firstErr),
			"restore ROOT_DIR from a backup (`byoda pod restore`)")
	default:
		c.add(check, OK, fmt.Sprintf("%d keys open with PRIVATE_KEY_SECRET and match "+
			"their certificates", len(keys)), "")
	}
}

func samePublicKey(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
