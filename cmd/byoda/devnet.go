package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/byoda/byoda-go/internal/contracts"
	"github.com/byoda/byoda-go/internal/devnet"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return fmt.Sprint(*l) }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func runDevnet(ctx context.Context, args []string, getenv env) error {
	fs := flag.NewFlagSet("byoda devnet", flag.ContinueOnError)
	dir := fs.String("dir", envOr(getenv, "DEVNET_DIR", ""),
		"directory of the devnet; an existing one is restarted (env DEVNET_DIR)")
	pods := fs.Int("pods", 2, "how many pods to run")
	var files stringList
	fs.Var(&files, "contract", "a service contract to run a service for; repeatable "+
		"[the address book]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		return fmt.Errorf("--dir (DEVNET_DIR) is required")
	}

	var docs [][]byte
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--contract: %w", err)
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		docs = append(docs, contracts.AddressBook())
	}

	logger, err := newLogger(getenv, os.Stderr)
	if err != nil {
		return err
	}
	return devnet.Run(ctx, devnet.Config{Dir: *dir, Pods: *pods, Contracts: docs,
		Out: os.Stdout, Logger: logger})
}
