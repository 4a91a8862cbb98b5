package pod

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/logring"
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

	// RecentLog keeps the pod's latest log records for its web page; nil
	// means the page says they are not kept.
	RecentLog *logring.Ring

	// TokenLifetime is how long issued JWTs last [8h].
	TokenLifetime time.Duration

	// RenewBefore is how long before expiry certificates are renewed [30
	// days].
	RenewBefore time.Duration

	// SharedWebserver puts a web server of the host in front of the pod
	// [SHARED_WEBSERVER]: the pod serves plain HTTP on HTTPPort instead of
	// HTTPS_PORT and POD_PORT and writes that web server's vhost files,
	// which listen on HTTPS_PORT, POD_PORT and ACME_HTTP_PORT.
	SharedWebserver bool

	// HTTPPort is the plain HTTP port the web server in front forwards to
	// [HTTP_PORT; 8000]. It listens on BindAddress, or on 127.0.0.1 when
	// that is unset: nginx on the same host reaches it there and nobody
	// else does.
	HTTPPort int

	// WebserverConfDir is where the vhost files are written
	// [WEBSERVER_CONF_DIR; /etc/nginx/conf.d].
	WebserverConfDir string

	// WebserverReloadCommand runs after a vhost file changed
	// [WEBSERVER_RELOAD_COMMAND]; empty logs that a reload is needed.
	WebserverReloadCommand string

	// WebserverTestCommand checks the web server's configuration after the
	// pod changed its files, which it puts back when the check fails
	// [WEBSERVER_TEST_COMMAND; "nginx -t -q" when the pod runs as root and
	// nginx is on the PATH, else none]. Both commands run through
	// /bin/sh -c.
	WebserverTestCommand string

	// HostRootDir is RootDir as the shared web server sees it, when the
	// pod runs in a container [HOST_ROOT_DIR; RootDir]: the vhost files
	// name the files the web server reads under it.
	HostRootDir string

	// TrustedProxies are the addresses whose X-Client-SSL-* headers are
	// believed in shared mode [TRUSTED_PROXIES; loopback].
	TrustedProxies []netip.Prefix

	// CustomDomain is a public DNS name browsers use for the account
	// [CUSTOM_DOMAIN]; empty means none.
	CustomDomain string

	// ManageCustomDomainCert makes the pod obtain and renew the custom
	// domain's certificate by ACME itself [MANAGE_CUSTOM_DOMAIN_CERT; set];
	// false reads it from LetsEncryptDir.
	ManageCustomDomainCert bool

	// LetsEncryptDir holds a certificate someone else renews, as
	// live/<domain>/fullchain.pem and privkey.pem [LETSENCRYPT_DIRECTORY;
	// /etc/letsencrypt].
	LetsEncryptDir string

	// ACMEDirectoryURL is the ACME server [ACME_DIRECTORY_URL; Let's
	// Encrypt's production directory].
	ACMEDirectoryURL string

	// ACMERootCAFile, when set, is the only CA the ACME server's HTTPS
	// certificate is verified against, for test CAs [ACME_ROOT_CA].
	ACMERootCAFile string

	// ACMEEmail is the contact of the ACME account [ACME_EMAIL; none].
	ACMEEmail string

	// ACMEHTTPPort answers ACME HTTP-01 challenges and redirects
	// everything else to HTTPS [ACME_HTTP_PORT; 80]. The pod binds it only
	// when it manages the custom domain's certificate itself and no shared
	// web server stands in front; then nginx listens there.
	ACMEHTTPPort int

	// CustomDomainPoll is how often LetsEncryptDir is read for a renewed
	// certificate [domaincert.DefaultPoll; no environment variable].
	CustomDomainPoll time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultHTTPSPort   = 443
	DefaultPodPort     = 444
	DefaultServicePort = 443
	DefaultRenewBefore = 30 * 24 * time.Hour
	DefaultHTTPPort    = 8000
	DefaultACMEPort    = 80

	DefaultWebserverConfDir = "/etc/nginx/conf.d"
	DefaultLetsEncryptDir   = "/etc/letsencrypt"

	// LetsEncryptDirectoryURL is Let's Encrypt's production ACME directory.
	LetsEncryptDirectoryURL = "https://acme-v02.api.letsencrypt.org/directory"
)

// DefaultTrustedProxies are the loopback networks.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128")}
}

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
	if err := c.validateFront(); err != nil {
		return err
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

// validateFront checks and completes the settings of what stands in front
// of the pod: a shared web server and a custom domain.
func (c *Config) validateFront() error {
	for _, p := range []struct {
		name string
		v    *int
		def  int
	}{{"HTTP_PORT", &c.HTTPPort, DefaultHTTPPort}, {"ACME_HTTP_PORT", &c.ACMEHTTPPort,
		DefaultACMEPort}} {
		if *p.v == 0 {
			*p.v = p.def
		}
		if *p.v < 1 || *p.v > 65535 {
			return fmt.Errorf("%s must be a port from 1 to 65535, not %d", p.name, *p.v)
		}
	}
	if c.WebserverConfDir == "" {
		c.WebserverConfDir = DefaultWebserverConfDir
	}
	if c.HostRootDir != "" && !filepath.IsAbs(c.HostRootDir) {
		return fmt.Errorf("HOST_ROOT_DIR must be an absolute path, not %q", c.HostRootDir)
	}
	if c.HostRootDir == "" {
		c.HostRootDir = c.RootDir
	}
	if c.TrustedProxies == nil {
		c.TrustedProxies = DefaultTrustedProxies()
	}
	if c.LetsEncryptDir == "" {
		c.LetsEncryptDir = DefaultLetsEncryptDir
	}
	if c.ACMEDirectoryURL == "" {
		c.ACMEDirectoryURL = LetsEncryptDirectoryURL
	}

	if c.CustomDomain == "" {
		return nil
	}
	if err := pki.CheckNetwork(c.CustomDomain); err != nil {
		return fmt.Errorf("CUSTOM_DOMAIN must be a DNS name such as pod.example.com: %w", err)
	}
	if c.CustomDomain == c.Network || strings.HasSuffix(c.CustomDomain, "."+c.Network) {
		return fmt.Errorf("CUSTOM_DOMAIN must be a name outside the network %s, not %q",
			c.Network, c.CustomDomain)
	}
	return nil
}
