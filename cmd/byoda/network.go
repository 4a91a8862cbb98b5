package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/byoda/byoda-go/internal/pki"
)

func runNetworkInit(ctx context.Context, args []string, getenv env) error {
	fs := flag.NewFlagSet("byoda network init", flag.ContinueOnError)
	network := fs.String("network", envOr(getenv, "NETWORK", ""),
		"the network's DNS domain (env NETWORK)")
	dir := fs.String("dir", envOr(getenv, "ROOT_DIR", ""),
		"directory to create the network in (env ROOT_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	if *network == "" || *dir == "" {
		return errors.New("--network and --dir are required")
	}
	if err := pki.CheckNetwork(*network); err != nil {
		return fmt.Errorf("--network: %w", err)
	}
	password, err := privateKeySecret(getenv)
	if err != nil {
		return err
	}

	paths := pki.Paths{Root: *dir, Network: *network}
	if _, err := pki.CreateNetwork(paths, password); err != nil {
		return err
	}

	fmt.Fprintf(os.Stdout, "created network %s in %s\n", *network, *dir)
	fmt.Fprintf(os.Stdout, "root CA: %s\n", paths.RootCACert())
	fmt.Fprintf(os.Stdout, "keep %s offline once the network runs\n", paths.RootCAKey())
	return nil
}
