package pod

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/pki"
)

// Config is the configuration of a pod, read by the command from its
// environment variables (named in brackets).
type Config struct {
	// Network is the network's domain [NETWORK].
	Network string

	// AccountID is the account's UUID [ACCOUNT_ID]; the command generates
	// one on first start and keeps it in RootDir.
	AccountID string

	// Password is what logs in to the pod [ACCOUNT_SECRET]; the zero value
	// disables password logins.
	Password auth.Password

	// Username is the login name [ACCOUNT_USERNAME; the first 8 characters
	// of the account id].
	Username string

	// PrivateKeySecret encrypts every private key on disk
	// [PRIVATE_KEY_SECRET].
	PrivateKeySecret []byte

	// RootDir is where the pod keeps everything [ROOT_DIR].
	RootDir string

	// HTTPSPort serves browsers and JWT clients [HTTPS_PORT].
	HTTPSPort int

	// PodPort serves other pods and services, with mandatory client
	// certificates [POD_PORT]. Pods dial each other on this port: it is a
	// network-wide setting.
	PodPort int

	// ServicePort is the port services listen on, a network-wide setting
	// [SERVICE_PORT].
	ServicePort int

	// BindAddress is the address the pod listens on and dials from
	// [BIND_ADDRESS]; invalid means all addresses and the system's choice.
	BindAddress netip.Addr

	// DirectoryURL is the network's directory [DIRECTORY_URL].
	DirectoryURL string

	// DNSServer answers for the network's names, as ADDRESS:PORT
	// [DNS_SERVER]; empty uses the system's resolver.
	DNSServer string

	// RootCAFile is a root CA certificate to pin [NETWORK_ROOT_CA as a
	// path].
	RootCAFile string

	// RootCAFingerprint is the SHA-256 fingerprint of the root CA to pin,
	// lower-case hex [NETWORK_ROOT_CA as a fingerprint].
	RootCAFingerprint string

	// JoinServiceIDs are joined at start [JOIN_SERVICE_IDS].
	JoinServiceIDs []uint32

	// TokenLifetime is how long issued JWTs last [8h].
	TokenLifetime time.Duration

	// RenewBefore is how long before expiry certificates are renewed [30
	// days].
	RenewBefore time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultHTTPSPort   = 443
	DefaultPodPort     = 444
	DefaultServicePort = 443
	DefaultRenewBefore = 30 * 24 * time.Hour
)

// Validate checks c and fills in the defaults. Each error names the
// environment variable at fault.
func (c *Config) Validate() error {
	if err := pki.CheckNetwork(c.Network); err != nil {
		return fmt.Errorf("NETWORK: %w", err)
	}
	id, err := pki.ParseUUID(c.AccountID)
	if err != nil {
		return fmt.Errorf("ACCOUNT_ID must be a UUID such as "+
			"6e1fb0a6-2f45-4b7c-9a2d-0c1f3f0e5a11: %w", err)
	}
	c.AccountID = id

	if len(c.PrivateKeySecret) == 0 {
		return errors.New("PRIVATE_KEY_SECRET must be set to the passphrase that encrypts " +
			"the private keys")
	}
	if c.RootDir == "" {
		return errors.New("ROOT_DIR must name the directory the pod keeps its data in")
	}
	if c.Username == "" {
		c.Username = c.AccountID[:8]
	}

	for _, p := range []struct {
		name string
		v    *int
		def  int
	}{{"HTTPS_PORT", &c.HTTPSPort, DefaultHTTPSPort}, {"POD_PORT", &c.PodPort, DefaultPodPort},
		{"SERVICE_PORT", &c.ServicePort, DefaultServicePort}} {
		if *p.v == 0 {
			*p.v = p.def
		}
		if *p.v < 1 || *p.v > 65535 {
			return fmt.Errorf("%s must be a port from 1 to 65535, not %d", p.name, *p.v)
		}
	}
	if c.HTTPSPort == c.PodPort {
		return errors.New("HTTPS_PORT and POD_PORT must differ")
	}

	if c.DirectoryURL == "" {
		c.DirectoryURL = "https://dir." + c.Network
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = auth.DefaultLifetime
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = DefaultRenewBefore
	}
	return nil
}

// Paths returns the layout of the pod's files.
func (c *Config) Paths() pki.Paths {
	return pki.Paths{Root: c.RootDir, Network: c.Network}
}
