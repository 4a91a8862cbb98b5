package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/service"
)

// serviceFlags are the flags `service init` and `service serve` share.
type serviceFlags struct {
	Network      string
	Dir          string
	DirectoryURL string
	RootCA       string
	Bind         string
}

func (f *serviceFlags) define(fs *flag.FlagSet, getenv env) {
	fs.StringVar(&f.Network, "network", envOr(getenv, "NETWORK", ""),
		"the network's DNS domain (env NETWORK)")
	fs.StringVar(&f.Dir, "dir", envOr(getenv, "ROOT_DIR", ""),
		"directory of the service's files (env ROOT_DIR)")
	fs.StringVar(&f.DirectoryURL, "directory-url", envOr(getenv, "DIRECTORY_URL", ""),
		"the directory's URL [https://dir.NETWORK] (env DIRECTORY_URL)")
	fs.StringVar(&f.RootCA, "root-ca", envOr(getenv, "NETWORK_ROOT_CA", ""),
		"the network's root CA certificate, when DIR does not have it yet (env NETWORK_ROOT_CA)")
	fs.StringVar(&f.Bind, "bind", envOr(getenv, "BIND_ADDRESS", ""),
		"address to send requests from (env BIND_ADDRESS)")
}

func (f *serviceFlags) validate() error {
	if f.Network == "" {
		return errors.New("--network (NETWORK) is required")
	}
	if err := pki.CheckNetwork(f.Network); err != nil {
		return fmt.Errorf("--network (NETWORK): %w", err)
	}
	if f.Dir == "" {
		return errors.New("--dir (ROOT_DIR) is required")
	}
	if f.DirectoryURL == "" {
		f.DirectoryURL = "https://dir." + f.Network
	}
	if f.Bind != "" && net.ParseIP(f.Bind) == nil {
		return fmt.Errorf("--bind (BIND_ADDRESS) must be an IP address, not %q", f.Bind)
	}
	return nil
}

// pinRootCA puts the root CA file given with --root-ca into the layout, or
// checks that it is the one already there.
func (f *serviceFlags) pinRootCA(paths pki.Paths) (*x509.Certificate, error) {
	if f.RootCA != "" {
		data, err := os.ReadFile(f.RootCA)
		if err != nil {
			return nil, fmt.Errorf("--root-ca (NETWORK_ROOT_CA): %w", err)
		}
		certs, err := pki.ParseCerts(data)
		if err != nil {
			return nil, fmt.Errorf("--root-ca (NETWORK_ROOT_CA): %w", err)
		}
		if err := pinCert(paths.RootCACert(), certs[0]); err != nil {
			return nil, err
		}
	}

	certs, err := pki.LoadCerts(paths.RootCACert())
	if err != nil {
		return nil, fmt.Errorf("the network's root CA is needed; give it with --root-ca: %w", err)
	}
	return certs[0], nil
}

// pinCert writes cert to path unless a certificate is there; one that is
// there must be the same.
func pinCert(path string, cert *x509.Certificate) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return pki.WriteFile(path, pki.EncodeCert(cert), 0o644)
	}
	if err != nil {
		return err
	}

	certs, err := pki.ParseCerts(old)
	if err != nil || !bytes.Equal(certs[0].Raw, cert.Raw) {
		return fmt.Errorf("%s holds another root CA than --root-ca", path)
	}
	return nil
}

// directoryClient returns the configuration of a client of the directory
// that trusts both public CAs and the network's root.
func (f *serviceFlags) directoryClient(root *x509.Certificate) directory.ClientConfig {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(root)

	return directory.ClientConfig{
		URL:       f.DirectoryURL,
		Network:   f.Network,
		RootCAs:   pool,
		LocalAddr: net.ParseIP(f.Bind),
	}
}

func runServiceInit(ctx context.Context, args []string, getenv env) error {
	var f serviceFlags
	fs := flag.NewFlagSet("byoda service init", flag.ContinueOnError)
	f.define(fs, getenv)
	contractPath := fs.String("contract", envOr(getenv, "SERVICE_CONTRACT", ""),
		"the service's contract, a JSON file (env SERVICE_CONTRACT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	if *contractPath == "" {
		return errors.New("--contract (SERVICE_CONTRACT) is required")
	}

	doc, err := os.ReadFile(*contractPath)
	if err != nil {
		return fmt.Errorf("--contract: %w", err)
	}
	password, logger, err := serverSetup(getenv)
	if err != nil {
		return err
	}

	paths := pki.Paths{Root: f.Dir, Network: f.Network}
	root, err := f.pinRootCA(paths)
	if err != nil {
		return err
	}

	secrets, err := service.Init(ctx, service.InitConfig{
		Contract:  doc,
		Paths:     paths,
		Password:  password,
		Directory: f.directoryClient(root),
		Logger:    logger,
	})
	if err != nil {
		return err
	}

	fmt.Printf("service %d is ready in %s\n", secrets.ServiceID, f.Dir)
	fmt.Printf("signed contract: %s\n", paths.ServiceContract(secrets.ServiceID))
	fmt.Printf("keep %s offline\n", paths.ServiceCAKey(secrets.ServiceID))
	return nil
}

func runServiceServe(ctx context.Context, args []string, getenv env) error {
	var f serviceFlags
	fs := flag.NewFlagSet("byoda service serve", flag.ContinueOnError)
	f.define(fs, getenv)
	sidText := fs.String("service-id", envOr(getenv, "SERVICE_ID", ""),
		"the service's id (env SERVICE_ID)")
	listen := fs.String("listen", envOr(getenv, "SERVICE_LISTEN", "127.0.0.1:443"),
		"HTTPS address (env SERVICE_LISTEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	sid, err := pki.ParseServiceID(*sidText)
	if err != nil {
		return fmt.Errorf("--service-id (SERVICE_ID): %w", err)
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return fmt.Errorf("--listen (SERVICE_LISTEN) must be ADDRESS:PORT, not %q", *listen)
	}

	password, logger, err := serverSetup(getenv)
	if err != nil {
		return err
	}

	paths := pki.Paths{Root: f.Dir, Network: f.Network}
	secrets, err := service.LoadSecrets(paths, sid, password)
	if err != nil {
		return err
	}
	members, err := service.OpenMembers(ctx, filepath.Join(paths.ServiceDir(sid), "members.db"))
	if err != nil {
		return err
	}
	defer members.Close()

	return service.Run(ctx, service.RunConfig{
		Config:    service.Config{Secrets: secrets, Members: members, Logger: logger},
		Listen:    *listen,
		Directory: f.directoryClient(secrets.Root),
	})
}
