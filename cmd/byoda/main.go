// Command byoda runs the parts of a Byoda network: the pod, the directory
// server, service servers and the tools that create networks and services.
//
// Usage:
//
//	byoda pod   (configured by environment variables)
//	byoda pod backup --out FILE
//	byoda pod restore --in FILE [--force]
//	byoda pod check [--timeout DURATION]
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

// commands are matched in order: "pod backup" before "pod".
var commands = []command{
	{"pod backup", "write a consistent snapshot of a pod's ROOT_DIR, while it runs, to a file",
		runPodBackup},
	{"pod restore", "restore a pod's ROOT_DIR from a backup", runPodRestore},
	{"pod check", "diagnose a pod: files, keys, certificates, DNS, ports and registrations",
		runPodCheck},
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

// newLogger returns a text logger at the level LOGLEVEL names, for output a
// person reads as it comes, such as the devnet's progress.
func newLogger(getenv env, w io.Writer) (*slog.Logger, error) {
	level, err := logLevel(getenv)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level,
		ReplaceAttr: replaceLogAttr})), nil
}

// newServerLogger returns the logger of a server, which writes JSON lines
// to w at the level LOGLEVEL names.
func newServerLogger(getenv env, w io.Writer) (*slog.Logger, error) {
	level, err := logLevel(getenv)
	if err != nil {
		return nil, err
	}
	return slog.New(jsonLogHandler(w, level)), nil
}

// jsonLogHandler writes a server's log records to w as JSON lines, one
// object per record with the keys "time", "level" and "msg" and then the
// record's attributes. Levels are named as LOGLEVEL names them: DEBUG,
// INFO, WARNING and ERROR.
func jsonLogHandler(w io.Writer, level slog.Level) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level,
		ReplaceAttr: replaceLogAttr})
}

// maxLogValue bounds the length of one logged value, in bytes, so that a
// long error or a client's input cannot make one record fill a log file.
const maxLogValue = 8 << 10

// replaceLogAttr names the warning level WARNING, as LOGLEVEL does, and
// cuts a string or error longer than maxLogValue.
func replaceLogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l == slog.LevelWarn {
			return slog.String(slog.LevelKey, "WARNING")
		}
		return a
	}

	var s string
	switch v := a.Value.Any().(type) {
	case string:
		s = v
	case error:
		s = v.Error()
	default:
		return a
	}
	if len(s) <= maxLogValue {
		return a
	}
	return slog.String(a.Key, fmt.Sprintf("%s... [%d bytes cut]", strings.ToValidUTF8(
		s[:maxLogValue], ""), len(s)-maxLogValue))
}

// logLevel returns the level LOGLEVEL names, INFO when it is unset.
func logLevel(getenv env) (slog.Level, error) {
	switch strings.ToUpper(getenv.get("LOGLEVEL")) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "", "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("LOGLEVEL must be DEBUG, INFO, WARNING or ERROR, not %q",
		getenv.get("LOGLEVEL"))
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
// the private key passphrase and a logger of JSON lines to stderr.
func serverSetup(getenv env) ([]byte, *slog.Logger, error) {
	password, err := privateKeySecret(getenv)
	if err != nil {
		return nil, nil, err
	}
	logger, err := newServerLogger(getenv, os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	return password, logger, nil
}
