package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
)

// directoryConfig is the configuration of `byoda directory`.
type directoryConfig struct {
	Network   string
	Dir       string
	Listen    string
	DNSListen string
	Store     string
	TLSCert   string
	TLSKey    string
	Address   string
}

func parseDirectoryFlags(args []string, getenv env) (directoryConfig, error) {
	var c directoryConfig
	fs := flag.NewFlagSet("byoda directory", flag.ContinueOnError)
	fs.StringVar(&c.Network, "network", envOr(getenv, "NETWORK", ""),
		"the network's DNS domain (env NETWORK)")
	fs.StringVar(&c.Dir, "dir", envOr(getenv, "ROOT_DIR", ""),
		"directory holding the network made by `byoda network init` (env ROOT_DIR)")
	fs.StringVar(&c.Listen, "listen", envOr(getenv, "DIRECTORY_LISTEN", "127.0.0.1:443"),
		"HTTPS address of the REST API (env DIRECTORY_LISTEN)")
	fs.StringVar(&c.DNSListen, "dns-listen", envOr(getenv, "DIRECTORY_DNS_LISTEN", ""),
		"UDP and TCP address of the DNS server; empty runs none (env DIRECTORY_DNS_LISTEN)")
	fs.StringVar(&c.Store, "store", envOr(getenv, "DIRECTORY_STORE", ""),
		"SQLite file or postgres:// DSN [DIR/directory.db] (env DIRECTORY_STORE)")
	fs.StringVar(&c.TLSCert, "tls-cert", envOr(getenv, "DIRECTORY_TLS_CERT", ""),
		"HTTPS certificate chain [the root-issued dir certificate] (env DIRECTORY_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", envOr(getenv, "DIRECTORY_TLS_KEY", ""),
		"key of --tls-cert, encrypted or not (env DIRECTORY_TLS_KEY)")
	fs.StringVar(&c.Address, "address", envOr(getenv, "DIRECTORY_ADDRESS", ""),
		"address dir.NETWORK resolves to [the --listen address] (env DIRECTORY_ADDRESS)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.Validate()
}

// Validate checks the configuration and fills in the defaults that depend on
// other values.
func (c *directoryConfig) Validate() error {
	if c.Network == "" {
		return errors.New("--network (NETWORK) is required")
	}
	if err := pki.CheckNetwork(c.Network); err != nil {
		return fmt.Errorf("--network (NETWORK): %w", err)
	}
	if c.Dir == "" {
		return errors.New("--dir (ROOT_DIR) is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen (DIRECTORY_LISTEN) must be ADDRESS:PORT, not %q", c.Listen)
	}
	if c.DNSListen != "" {
		if _, _, err := net.SplitHostPort(c.DNSListen); err != nil {
			return fmt.Errorf("--dns-listen (DIRECTORY_DNS_LISTEN) must be ADDRESS:PORT, not %q",
				c.DNSListen)
		}
	}
	if c.Address != "" {
		if _, err := netip.ParseAddr(c.Address); err != nil {
			return fmt.Errorf("--address (DIRECTORY_ADDRESS) must be an IP address, not %q",
				c.Address)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}

	paths := pki.Paths{Root: c.Dir, Network: c.Network}
	if c.TLSCert == "" {
		c.TLSCert, c.TLSKey = paths.DirectoryCert(), paths.DirectoryKey()
	}
	if c.Store == "" {
		c.Store = filepath.Join(c.Dir, "directory.db")
	}
	return nil
}

func runDirectory(ctx context.Context, args []string, getenv env) error {
	cfg, err := parseDirectoryFlags(args, getenv)
	if err != nil {
		return err
	}
	password, logger, err := serverSetup(getenv)
	if err != nil {
		return err
	}

	paths := pki.Paths{Root: cfg.Dir, Network: cfg.Network}
	network, err := pki.LoadNetwork(paths, password)
	if err != nil {
		return err
	}
	cert, err := loadTLSCert(cfg.TLSCert, cfg.TLSKey, password)
	if err != nil {
		return err
	}

	store, err := dirstore.Open(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer store.Close()

	var addr netip.Addr
	if cfg.Address != "" {
		addr = netip.MustParseAddr(cfg.Address)
	}
	return directory.Run(ctx, directory.RunConfig{
		Config:      directory.Config{Network: network, Store: store, Logger: logger},
		Listen:      cfg.Listen,
		DNSListen:   cfg.DNSListen,
		Certificate: cert,
		Address:     addr,
	})
}

// loadTLSCert reads a certificate chain file and its key, which may be
// encrypted with password.
func loadTLSCert(certPath, keyPath string, password []byte) (tls.Certificate, error) {
	certs, err := pki.LoadCerts(certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := pki.LoadKey(keyPath, password)
	if err != nil {
		return tls.Certificate{}, err
	}

	return pki.TLSCertificate(certs, key), nil
}

func envOr(getenv env, name, def string) string {
	if v := getenv.get(name); v != "" {
		return v
	}
	return def
}
