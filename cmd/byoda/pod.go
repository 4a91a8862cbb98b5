package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/logfile"
	"github.com/byoda/byoda-go/internal/logring"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/pod"
)

// Defaults of the pod's environment variables that pod.Config leaves to the
// command.
const (
	defaultNetwork = "byoda.net"
	defaultRootDir = "/byoda"
	defaultLogDir  = "/var/www/wwwroot/logs"
)

// accountIDFile, under ROOT_DIR, keeps a generated ACCOUNT_ID for the next
// start.
const accountIDFile = "account_id"

// podRunner runs `byoda pod`; its fields are what the command takes from
// the process, so that tests can hand in their own.
type podRunner struct {
	stderr io.Writer

	// defaultLogDir is used when LOGDIR is unset, if it can be made.
	defaultLogDir string

	// ready, when set, is called once the pod listens.
	ready func(https, pod net.Addr)
}

func runPod(ctx context.Context, args []string, getenv env) error {
	r := podRunner{stderr: os.Stderr, defaultLogDir: defaultLogDir}
	return r.run(ctx, args, getenv)
}

func (r podRunner) run(ctx context.Context, args []string, getenv env) error {
	if len(args) > 0 {
		return fmt.Errorf("byoda pod is configured by environment variables and takes "+
			"no arguments, not %q", args[0])
	}
	cfg, err := parsePodConfig(getenv)
	if err != nil {
		return err
	}

	logger, closeLog, err := r.logger(getenv)
	if err != nil {
		return err
	}
	defer closeLog()

	// The pod's web page shows the newest records.
	ring := logring.New(logring.DefaultSize)
	logger = slog.New(ring.Handler(logger.Handler()))
	cfg.RecentLog = ring

	logPodConfig(logger, cfg)
	return pod.New(cfg, logger).Run(ctx, r.ready)
}

// logger returns the pod's logger, which writes JSON lines to stderr and to
// LOGDIR/pod.log when there is a log directory; the files of LOGDIR rotate
// under the cap LOG_MAX_TOTAL. An unusable LOGDIR is an error; the default
// directory belongs to the layout of the seed's server and may not be there
// to make, so without it the pod logs to stderr alone. The function
// returned closes the file.
func (r podRunner) logger(getenv env) (*slog.Logger, func(), error) {
	level, err := logLevel(getenv)
	if err != nil {
		return nil, nil, err
	}
	maxTotal, err := logMaxTotal(getenv)
	if err != nil {
		return nil, nil, err
	}

	dir, chosen := getenv.get("LOGDIR"), true
	if dir == "" {
		dir, chosen = r.defaultLogDir, false
	}
	var f *logfile.File
	var fileErr error
	if dir != "" {
		f, fileErr = openPodLog(dir, maxTotal)
	}
	if fileErr != nil && chosen {
		return nil, nil, fmt.Errorf("LOGDIR must be a directory the pod can write "+
			"pod.log in: %w", fileErr)
	}

	out, closeLog := r.stderr, func() {}
	if f != nil {
		out, closeLog = teeWriter{r.stderr, f}, func() { f.Close() }
	}
	logger := slog.New(jsonLogHandler(out, level))

	switch {
	case fileErr != nil:
		logger.Warn("logging to stderr only: the default LOGDIR is unusable",
			"log_dir", dir, "err", fileErr)
	case f != nil:
		logger.Info("logging to file", "path", filepath.Join(dir, "pod.log"),
			"max_total", maxTotal, "max_file_size", f.MaxFileSize(),
			"older_files", logfile.DefaultOlder)
	}
	return logger, closeLog, nil
}

// teeWriter writes each record to stderr and then to the log file, to the
// file even when stderr fails, so that neither can silence the other.
type teeWriter struct {
	stderr io.Writer
	file   *logfile.File
}

func (t teeWriter) Write(p []byte) (int, error) {
	_, errStderr := t.stderr.Write(p)
	if _, err := t.file.Write(p); err != nil {
		return 0, err
	}
	if errStderr != nil {
		return 0, errStderr
	}
	return len(p), nil
}

// logMaxTotal returns LOG_MAX_TOTAL, the cap on the log files in bytes;
// the variable counts megabytes (2^20 bytes).
func logMaxTotal(getenv env) (int64, error) {
	v := getenv.get("LOG_MAX_TOTAL")
	if v == "" {
		return logfile.DefaultMaxTotal, nil
	}
	mb, err := strconv.Atoi(v)
	if err != nil || mb < 1 || mb > maxLogMegabytes {
		return 0, fmt.Errorf("LOG_MAX_TOTAL must be the size in MB that the log files "+
			"may take together, from 1 to %d, not %q", maxLogMegabytes, v)
	}
	return int64(mb) << 20, nil
}

// maxLogMegabytes bounds LOG_MAX_TOTAL at a million megabytes, a terabyte.
const maxLogMegabytes = 1 << 20

// openPodLog opens dir/pod.log, making dir if needed, readable only by the
// pod's user since logs name accounts and addresses.
func openPodLog(dir string, maxTotal int64) (*logfile.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return logfile.Open(filepath.Join(dir, "pod.log"), logfile.Config{MaxTotal: maxTotal,
		Shorten: shortenLogRecord})
}

// shortenLogRecord replaces a JSON log record too long for a log file with
// a record of at most limit bytes that says so and keeps the record's
// start, so that the file remains JSON lines.
func shortenLogRecord(record []byte, limit int) []byte {
	start := string(record)
	for keep := limit; keep > 0; keep /= 2 {
		line, err := json.Marshal(map[string]any{
			"time":  time.Now().Format(time.RFC3339Nano),
			"level": "WARNING",
			"msg":   "log record cut to fit the log file",
			"bytes": len(record),
			"start": strings.ToValidUTF8(start[:min(keep, len(start))], ""),
		})
		if err == nil && len(line) < limit {
			return append(line, '\n')
		}
	}
	return nil
}

// logPodConfig logs the settings the pod starts with, saying of the secrets
// only whether they are set.
func logPodConfig(logger *slog.Logger, cfg pod.Config) {
	rootCA := cfg.RootCAFile
	if cfg.RootCAFingerprint != "" {
		rootCA = "sha256:" + cfg.RootCAFingerprint
	}
	bind := "all"
	if cfg.BindAddress.IsValid() {
		bind = cfg.BindAddress.String()
	}
	dns := cfg.DNSServer
	if dns == "" {
		dns = "system"
	}
	secretSet := "no"
	if cfg.Password != (auth.Password{}) {
		secretSet = "yes"
	}

	logger.Info("starting pod", "network", cfg.Network, "account_id", cfg.AccountID,
		"username", cfg.Username, "account_secret_set", secretSet, "root_dir", cfg.RootDir,
		"https_port", cfg.HTTPSPort, "pod_port", cfg.PodPort, "service_port", cfg.ServicePort,
		"bind_address", bind, "directory_url", cfg.DirectoryURL, "dns_server", dns,
		"network_root_ca", rootCA, "join_service_ids", cfg.JoinServiceIDs)
	if cfg.SharedWebserver {
		logger.Info("behind a shared web server", "http_port", cfg.HTTPPort,
			"webserver_conf_dir", cfg.WebserverConfDir,
			"webserver_reload_command", cfg.WebserverReloadCommand,
			"webserver_test_command", cfg.WebserverTestCommand,
			"host_root_dir", cfg.HostRootDir,
			"trusted_proxies", cfg.TrustedProxies)
	}
	if cfg.CustomDomain != "" {
		logger.Info("custom domain", "custom_domain", cfg.CustomDomain,
			"manage_custom_domain_cert", cfg.ManageCustomDomainCert,
			"letsencrypt_directory", cfg.LetsEncryptDir,
			"acme_directory_url", cfg.ACMEDirectoryURL, "acme_http_port", cfg.ACMEHTTPPort)
	}
}

// parsePodConfig reads the pod's environment variables into a validated
// pod.Config. When ACCOUNT_ID is unset it is read from ROOT_DIR/account_id,
// or generated and kept there on first start.
func parsePodConfig(getenv env) (pod.Config, error) {
	cfg, err := readPodEnv(getenv)
	if err != nil {
		return cfg, err
	}

	// A copy is validated first, with a stand-in for an unset account id,
	// so that a mistyped setting fails before the account id file is
	// written.
	probe := cfg
	if probe.AccountID == "" {
		probe.AccountID = uuid.Nil.String()
	}
	if err := probe.Validate(); err != nil {
		return cfg, err
	}

	cfg.AccountID, err = loadAccountID(cfg.RootDir, cfg.AccountID)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// readPodEnv parses the environment without touching the disk beyond
// reading NETWORK_ROOT_CA. Every bad value gets a line of the error.
func readPodEnv(getenv env) (pod.Config, error) {
	e := &envReader{getenv: getenv}
	cfg := pod.Config{
		Network:          e.network("NETWORK"),
		AccountID:        e.accountID("ACCOUNT_ID"),
		Password:         e.password("ACCOUNT_SECRET"),
		Username:         e.username("ACCOUNT_USERNAME"),
		PrivateKeySecret: e.keySecret(),
		RootDir:          e.dir("ROOT_DIR", defaultRootDir),
		HTTPSPort:        e.port("HTTPS_PORT", pod.DefaultHTTPSPort),
		PodPort:          e.port("POD_PORT", pod.DefaultPodPort),
		ServicePort:      e.port("SERVICE_PORT", pod.DefaultServicePort),
		BindAddress:      e.addr("BIND_ADDRESS"),
		DirectoryURL:     e.url("DIRECTORY_URL"),
		DNSServer:        e.dnsServer("DNS_SERVER"),
		JoinServiceIDs:   e.serviceIDs("JOIN_SERVICE_IDS"),

		SharedWebserver:        e.getenv.get("SHARED_WEBSERVER") != "",
		HTTPPort:               e.port("HTTP_PORT", pod.DefaultHTTPPort),
		WebserverConfDir:       e.dir("WEBSERVER_CONF_DIR", pod.DefaultWebserverConfDir),
		WebserverReloadCommand: e.getenv.get("WEBSERVER_RELOAD_COMMAND"),
		WebserverTestCommand:   e.getenv.get("WEBSERVER_TEST_COMMAND"),
		HostRootDir:            e.getenv.get("HOST_ROOT_DIR"),
		TrustedProxies:         e.prefixes("TRUSTED_PROXIES"),

		CustomDomain:           e.domain("CUSTOM_DOMAIN"),
		ManageCustomDomainCert: e.setOrUnset("MANAGE_CUSTOM_DOMAIN_CERT"),
		LetsEncryptDir:         e.dir("LETSENCRYPT_DIRECTORY", pod.DefaultLetsEncryptDir),
		ACMEDirectoryURL:       e.acmeURL("ACME_DIRECTORY_URL"),
		ACMERootCAFile:         e.certFile("ACME_ROOT_CA"),
		ACMEEmail:              e.getenv.get("ACME_EMAIL"),
		ACMEHTTPPort:           e.port("ACME_HTTP_PORT", pod.DefaultACMEPort),
	}
	cfg.RootCAFile, cfg.RootCAFingerprint = e.rootCA("NETWORK_ROOT_CA")
	e.logSettings()
	e.logDir("LOGDIR")

	return cfg, errors.Join(e.errs...)
}

// loadAccountID returns the pod's account id: the one kept in
// root/account_id, which id, if set, must equal, or else id or a new one,
// which is then kept there. A pod never takes a second identity.
func loadAccountID(root, id string) (string, error) {
	path := filepath.Join(root, accountIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		kept, err := pki.ParseUUID(strings.TrimSpace(string(data)))
		if err != nil {
			return "", fmt.Errorf("%s must hold the pod's account id, a UUID, "+
				"and holds something else", path)
		}
		if id != "" && id != kept {
			return "", fmt.Errorf("ACCOUNT_ID is %s but this pod is account %s (%s); "+
				"a pod keeps one identity: unset ACCOUNT_ID or use another ROOT_DIR",
				id, kept, path)
		}
		return kept, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading the account id: %w", err)
	}

	if id == "" {
		u, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("generating an account id: %w", err)
		}
		id = u.String()
	}
	if err := pki.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keeping the account id: %w", err)
	}
	return id, nil
}

// envReader parses environment variables, collecting an error for each bad
// value so that one start reports them all.
type envReader struct {
	getenv env
	errs   []error
}

func (e *envReader) fail(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

func (e *envReader) network(name string) string {
	v := envOr(e.getenv, name, defaultNetwork)
	if err := pki.CheckNetwork(v); err != nil {
		e.fail("%s: %w", name, err)
	}
	return v
}

func (e *envReader) accountID(name string) string {
	v := e.getenv.get(name)
	if v == "" {
		return ""
	}
	id, err := pki.ParseUUID(v)
	if err != nil {
		e.fail("%s must be a UUID such as 6e1fb0a6-2f45-4b7c-9a2d-0c1f3f0e5a11, not %q",
			name, v)
	}
	return id
}

// password parses ACCOUNT_SECRET; its errors never quote the secret.
func (e *envReader) password(name string) auth.Password {
	v := e.getenv.get(name)
	if v == "" {
		return auth.Password{}
	}
	p, err := auth.ParsePassword(v)
	if err != nil {
		e.fail("%s must be a password or an argon2id hash: %w", name, err)
	}
	return p
}

// maxUsername bounds a login name to something a person types.
const maxUsername = 64

func (e *envReader) username(name string) string {
	v := e.getenv.get(name)
	if v == "" {
		return ""
	}
	if len(v) > maxUsername || strings.IndexFunc(v, notNameRune) >= 0 {
		e.fail("%s must be up to %d printable characters without spaces, not %q",
			name, maxUsername, v)
	}
	return v
}

func notNameRune(r rune) bool {
	return !unicode.IsPrint(r) || unicode.IsSpace(r)
}

func (e *envReader) keySecret() []byte {
	s, err := privateKeySecret(e.getenv)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return s
}

// dir returns an absolute directory path, which need not exist yet.
func (e *envReader) dir(name, def string) string {
	v := envOr(e.getenv, name, def)
	abs, err := filepath.Abs(v)
	if err != nil {
		e.fail("%s %q: %w", name, v, err)
		return v
	}
	if info, err := os.Stat(abs); err == nil && !info.IsDir() {
		e.fail("%s must be a directory, and %q is not one", name, v)
	}
	return abs
}

func (e *envReader) port(name string, def int) int {
	v := e.getenv.get(name)
	if v == "" {
		return def
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		e.fail("%s must be a port from 1 to 65535, not %q", name, v)
	}
	return p
}

func (e *envReader) addr(name string) netip.Addr {
	v := e.getenv.get(name)
	if v == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		e.fail("%s must be an IP address such as 192.0.2.10, not %q", name, v)
	}
	return a
}

// url returns a directory URL, https://HOST[:PORT], without a trailing
// slash; empty leaves the default to pod.Config.Validate.
func (e *envReader) url(name string) string {
	v := e.getenv.get(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		e.fail("%s must be https://HOST[:PORT], such as https://dir.byoda.net, not %q",
			name, v)
		return v
	}
	return strings.TrimSuffix(v, "/")
}

// dnsServer returns ADDRESS:PORT; a bare address gets port 53.
func (e *envReader) dnsServer(name string) string {
	v := e.getenv.get(name)
	if v == "" {
		return ""
	}
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a, 53).String()
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		e.fail("%s must be an IP address with an optional port, such as 192.0.2.53 "+
			"or [2001:db8::53]:5353, not %q", name, v)
	}
	return ap.String()
}

// rootCA reads NETWORK_ROOT_CA: a SHA-256 fingerprint, 64 hex digits with or
// without colons, comes back as lower-case hex; anything else must be a
// file of PEM certificates.
func (e *envReader) rootCA(name string) (file, fingerprint string) {
	v := e.getenv.get(name)
	if v == "" {
		return "", ""
	}
	if fp, ok := parseFingerprint(v); ok {
		return "", fp
	}

	if _, err := pki.LoadCerts(v); err != nil {
		e.fail("%s must be the root CA's certificate file or its SHA-256 fingerprint "+
			"(64 hex digits): %w", name, err)
	}
	return v, ""
}

func parseFingerprint(s string) (string, bool) {
	hex := strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if len(hex) != 64 {
		return "", false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return hex, true
}

// serviceIDs parses a comma-separated list, keeping the first of
// duplicates; spaces and empty items are ignored.
func (e *envReader) serviceIDs(name string) []uint32 {
	var ids []uint32
	seen := map[uint32]bool{}
	for item := range strings.SplitSeq(e.getenv.get(name), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, err := pki.ParseServiceID(item)
		if err != nil {
			e.fail("%s: %q is not a service id, a number from 0 to 4294967295 "+
				"without leading zeros", name, item)
			continue
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// logSettings checks LOGLEVEL and LOG_MAX_TOTAL.
func (e *envReader) logSettings() {
	if _, err := logLevel(e.getenv); err != nil {
		e.errs = append(e.errs, err)
	}
	if _, err := logMaxTotal(e.getenv); err != nil {
		e.errs = append(e.errs, err)
	}
}

// logDir checks LOGDIR without making it; that waits until the pod starts.
func (e *envReader) logDir(name string) {
	v := e.getenv.get(name)
	if v == "" {
		return
	}
	if info, err := os.Stat(v); err == nil && !info.IsDir() {
		e.fail("%s must be a directory, and %q is not one", name, v)
	}
}

// prefixes parses a comma-separated list of addresses and networks, such as
// "127.0.0.1, 10.0.0.0/8"; unset is the loopback networks.
func (e *envReader) prefixes(name string) []netip.Prefix {
	v, ok := e.getenv(name)
	if !ok {
		return pod.DefaultTrustedProxies()
	}
	prefixes := []netip.Prefix{}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil && a.Zone() == "" {
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			e.fail("%s: %q is not an IP address or a network such as 10.0.0.0/8", name, item)
			continue
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes
}

// domain returns a DNS name in lower case, without a trailing dot.
func (e *envReader) domain(name string) string {
	v := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(e.getenv.get(name))), ".")
	if v == "" {
		return ""
	}
	if err := pki.CheckNetwork(v); err != nil {
		e.fail("%s must be a DNS name such as pod.example.com, not %q", name, v)
	}
	return v
}

// setOrUnset is true when the variable is unset or set to anything but the
// empty string: the seed turns such a setting off by setting it empty.
func (e *envReader) setOrUnset(name string) bool {
	v, ok := e.getenv(name)
	return !ok || v != ""
}

// acmeURL returns an ACME directory URL; empty leaves the default to
// pod.Config.Validate.
func (e *envReader) acmeURL(name string) string {
	v := e.getenv.get(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		e.fail("%s must be an ACME directory URL such as %s, not %q", name,
			pod.LetsEncryptDirectoryURL, v)
	}
	return v
}

// certFile returns the path of a file of PEM certificates.
func (e *envReader) certFile(name string) string {
	v := e.getenv.get(name)
	if v == "" {
		return ""
	}
	if _, err := pki.LoadCerts(v); err != nil {
		e.fail("%s must be a file of PEM certificates: %w", name, err)
	}
	return v
}
