// Command byoda runs the parts of a Byoda network: the pod, the directory
// server, service servers and the tools that create networks and services.
//
// Usage:
//
//	byoda pod   (configured by environment variables)
//	byoda network init --network NAME --dir DIR
//	byoda directory --network NAME --dir DIR --listen ADDR:PORT --dns-listen ADDR:PORT
//	byoda data ACTION CLASS [--devnet DIR --pod N] [flags]
//	byoda devnet --dir DIR [--pods N] [--contract FILE]...
//	byoda service init --contract FILE --network NAME --dir DIR --directory-url URL
//	byoda service serve --service-id ID --network NAME --dir DIR --listen ADDR:PORT
//
// Every flag of a server can also be set with the environment variable named
// in its help text. Private keys are encrypted with PRIVATE_KEY_SECRET.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env env) error
}

// env looks up a variable of the process environment, reporting whether
// it is set at all; tests hand in their own.
type env func(string) (string, bool)

// get returns the variable's value, empty when it is unset.
func (e env) get(name string) string {
	v, _ := e(name)
	return v
}

var commands = []command{
	{"pod", "run a pod, configured by environment variables", runPod},
	{"network init", "create a new network's root CA, accounts CA, services CA and data secret",
		runNetworkInit},
	{"directory", "run a network's directory server (REST API and DNS)", runDirectory},
	{"service init", "create a service's secrets, register it and have its contract signed",
		runServiceInit},
	{"service serve", "run a service's server", runServiceServe},
	{"devnet", "run a whole private network with pods on this machine", runDevnet},
	{"data", "use a pod's Data API: query, append, mutate, update, delete, updates, counter",
		runData},
	{"contract check", "validate a service contract and list its data classes and access rules",
		runContractCheck},
}

// errUsage marks an error already explained to the user by a flag set.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr)
	stop()

	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "byoda:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv env, stderr io.Writer) error {
	joined := strings.Join(args, " ")
	for _, c := range commands {
		if joined == c.name || strings.HasPrefix(joined, c.name+" ") {
			return c.run(ctx, args[len(strings.Fields(c.name)):], getenv)
		}
	}

	fmt.Fprintln(stderr, "usage: byoda COMMAND [flags]")
	fmt.Fprintln(stderr, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(stderr, "  %-16s %s\n", c.name, c.summary)
	}
	return errUsage
}

// newLogger returns a text logger at the level LOGLEVEL names.
func newLogger(getenv env, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToUpper(getenv.get("LOGLEVEL")) {
	case "DEBUG":
		level = slog.LevelDebug
	case "", "INFO":
		level = slog.LevelInfo
	case "WARNING", "WARN":
		level = slog.LevelWarn
	case "ERROR":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("LOGLEVEL must be DEBUG, INFO, WARNING or ERROR, not %q",
			getenv.get("LOGLEVEL"))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// privateKeySecret returns PRIVATE_KEY_SECRET, which must be set.
func privateKeySecret(getenv env) ([]byte, error) {
	s := getenv.get("PRIVATE_KEY_SECRET")
	if s == "" {
		return nil, errors.New("PRIVATE_KEY_SECRET must be set to the passphrase " +
			"that encrypts the private keys")
	}
	return []byte(s), nil
}

// serverSetup returns what every server command needs from the environment:
// the private key passphrase and a logger.
func serverSetup(getenv env) ([]byte, *slog.Logger, error) {
	password, err := privateKeySecret(getenv)
	if err != nil {
		return nil, nil, err
	}
	logger, err := newLogger(getenv, os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	return password, logger, nil
}
