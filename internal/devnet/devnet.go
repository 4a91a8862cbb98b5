// Package devnet runs a complete private Byoda network on one machine: a
// directory with its DNS server, one server per service and a number of
// pods, each its own process on its own loopback address. It is for trying
// the system out and for end-to-end tests; its keys are for this machine
// only.
package devnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/service"
)

// Network is the domain of every devnet.
const Network = "byoda.test"

// readyTimeout bounds the wait for one process to answer.
const readyTimeout = 3 * time.Minute

// Config configures a devnet.
type Config struct {
	// Dir holds everything of the devnet (required).
	Dir string

	// Pods is how many pods run [2].
	Pods int

	// Contracts are the services' contracts (at least one).
	Contracts [][]byte

	// Binary is the byoda executable the processes run [this one].
	Binary string

	// Unjoined lists services that the pods do not join at start; they may
	// join them later through their API. By default every pod joins every
	// service.
	Unjoined []uint32

	// Out receives what the devnet tells the person who started it.
	Out io.Writer

	// Logger receives diagnostics [discard].
	Logger *slog.Logger

	// Ready, when set, is called with the devnet's description once every
	// process answers.
	Ready func(*Info)
}

// Run starts the devnet, or restarts the one in cfg.Dir, and keeps it
// running until ctx ends; then it stops every process it started.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}

	st, restarted, err := cfg.loadState(cfg.Pods)
	if err != nil {
		return err
	}
	services, err := parseContracts(cfg.Contracts)
	if err != nil {
		return err
	}
	if !restarted {
		if err := st.pickPorts(serviceAddrs(len(services))); err != nil {
			return err
		}
	}
	if err := cfg.saveState(st); err != nil {
		return err
	}

	d := &devnet{cfg: cfg, st: st, services: services, procs: newSupervisor(cfg.Logger)}
	defer d.procs.stopAll()

	if err := d.start(ctx, restarted); err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(cfg.Out, "stopping the devnet")
		return nil
	case err := <-d.procs.failed:
		return err
	}
}

func (c *Config) defaults() error {
	if c.Dir == "" {
		return errors.New("devnet: --dir is required")
	}
	if c.Pods == 0 {
		c.Pods = 2
	}
	if c.Pods < 1 || c.Pods > 200 {
		return fmt.Errorf("devnet: --pods must be from 1 to 200, not %d", c.Pods)
	}
	if len(c.Contracts) == 0 {
		return errors.New("devnet: at least one contract is needed")
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("devnet: finding the byoda binary: %w", err)
		}
		c.Binary = exe
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	c.Dir = abs
	return os.MkdirAll(filepath.Join(c.Dir, "logs"), 0o700)
}

// serviceInfo is a parsed contract with where its service runs.
type serviceInfo struct {
	contract *contract.Contract
	doc      []byte
	addr     netip.Addr
}

func parseContracts(docs [][]byte) ([]serviceInfo, error) {
	seen := map[uint32]bool{}
	var out []serviceInfo
	for i, doc := range docs {
		c, err := contract.Parse(doc)
		if err != nil {
			return nil, fmt.Errorf("contract %d: %w", i+1, err)
		}
		if seen[c.ServiceID] {
			return nil, fmt.Errorf("two contracts have service id %d", c.ServiceID)
		}
		seen[c.ServiceID] = true
		out = append(out, serviceInfo{contract: c, doc: doc, addr: serviceAddress(i)})
	}
	return out, nil
}

func serviceAddrs(n int) []netip.Addr {
	var out []netip.Addr
	for i := 0; i < n; i++ {
		out = append(out, serviceAddress(i))
	}
	return out
}

// devnet is a running devnet.
type devnet struct {
	cfg      Config
	st       *state
	services []serviceInfo
	procs    *supervisor
	root     *x509.Certificate
}

func (d *devnet) say(format string, args ...any) {
	fmt.Fprintf(d.cfg.Out, format+"\n", args...)
}

func (d *devnet) netPaths() pki.Paths {
	return pki.Paths{Root: filepath.Join(d.cfg.Dir, "network"), Network: d.st.Network}
}

func (d *devnet) dirURL() string {
	return "https://" + d.st.Directory + ":" + strconv.Itoa(d.st.DirPort)
}

// start brings up the network, the directory, the services and the pods, in
// that order, each only once the one before answers.
func (d *devnet) start(ctx context.Context, restarted bool) error {
	t0 := time.Now()
	if restarted {
		d.say("restarting the devnet in %s", d.cfg.Dir)
	} else {
		d.say("creating a devnet in %s", d.cfg.Dir)
	}

	if err := d.ensureNetwork(); err != nil {
		return err
	}
	if err := d.startDirectory(ctx); err != nil {
		return err
	}
	for i := range d.services {
		if err := d.startService(ctx, &d.services[i]); err != nil {
			return err
		}
	}
	if err := d.startPods(ctx); err != nil {
		return err
	}

	info, err := d.describe()
	if err != nil {
		return err
	}
	if err := d.writeInfo(info); err != nil {
		return err
	}
	d.say("devnet ready in %s", time.Since(t0).Round(100*time.Millisecond))
	d.printGuide(info)
	if d.cfg.Ready != nil {
		d.cfg.Ready(info)
	}
	return nil
}

func (d *devnet) ensureNetwork() error {
	paths := d.netPaths()
	if _, err := os.Stat(paths.RootCACert()); err == nil {
		certs, err := pki.LoadCerts(paths.RootCACert())
		if err != nil {
			return err
		}
		d.root = certs[0]
		return nil
	}

	d.say("  creating network %s", d.st.Network)
	n, err := pki.CreateNetwork(paths, []byte(d.st.KeySecret))
	if err != nil {
		return err
	}
	d.root = n.Root
	return nil
}

// env returns the environment of a child process: the devnet's settings on
// top of a minimal inherited environment.
func (d *devnet) env(vars ...string) []string {
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"PRIVATE_KEY_SECRET=" + d.st.KeySecret, "NETWORK=" + d.st.Network,
		"LOGLEVEL=INFO"}
	return append(base, vars...)
}

func (d *devnet) startDirectory(ctx context.Context) error {
	d.say("  starting the directory on %s", d.dirURL())
	err := d.procs.start(ctx, proc{
		name: "directory",
		bin:  d.cfg.Binary,
		args: []string{"directory", "--network", d.st.Network, "--dir", d.netPaths().Root,
			"--listen", d.st.Directory + ":" + strconv.Itoa(d.st.DirPort),
			"--dns-listen", d.st.Directory + ":" + strconv.Itoa(d.st.DNSPort),
			"--address", d.st.Directory},
		env: d.env(),
		log: filepath.Join(d.cfg.Dir, "logs", "directory.log"),
	})
	if err != nil {
		return err
	}
	return d.waitHTTP(ctx, "the directory", d.dirURL()+"/api/v1/status", "dir."+d.st.Network)
}

func (d *devnet) directoryConfig(local netip.Addr) directory.ClientConfig {
	pool := x509.NewCertPool()
	pool.AddCert(d.root)
	return directory.ClientConfig{URL: d.dirURL(), Network: d.st.Network, RootCAs: pool,
		LocalAddr: local.AsSlice()}
}

func (d *devnet) servicePaths(sid uint32) pki.Paths {
	return pki.Paths{Root: filepath.Join(d.cfg.Dir, "services", "service-"+
		strconv.FormatUint(uint64(sid), 10)), Network: d.st.Network}
}

func (d *devnet) serviceURL(s *serviceInfo) string {
	return "https://" + s.addr.String() + ":" + strconv.Itoa(d.st.ServicePort)
}

// startService creates the service's secrets when needed, has its contract
// signed and starts its server.
func (d *devnet) startService(ctx context.Context, s *serviceInfo) error {
	sid := s.contract.ServiceID
	paths := d.servicePaths(sid)
	if err := pki.WriteFile(paths.RootCACert(), pki.EncodeCert(d.root), 0o644); err != nil {
		return err
	}

	d.say("  preparing service %d (%s)", sid, s.contract.Name)
	_, err := service.Init(ctx, service.InitConfig{Contract: s.doc, Paths: paths,
		Password: []byte(d.st.KeySecret), Directory: d.directoryConfig(s.addr)})
	if err != nil {
		return fmt.Errorf("service %d: %w", sid, err)
	}

	d.say("  starting service %d on %s", sid, d.serviceURL(s))
	err = d.procs.start(ctx, proc{
		name: fmt.Sprintf("service %d", sid),
		bin:  d.cfg.Binary,
		args: []string{"service", "serve", "--service-id", strconv.FormatUint(uint64(sid), 10),
			"--network", d.st.Network, "--dir", paths.Root,
			"--listen", s.addr.String() + ":" + strconv.Itoa(d.st.ServicePort),
			"--directory-url", d.dirURL(), "--bind", s.addr.String()},
		env: d.env(),
		log: filepath.Join(d.cfg.Dir, "logs", fmt.Sprintf("service-%d.log", sid)),
	})
	if err != nil {
		return err
	}
	return d.waitHTTP(ctx, fmt.Sprintf("service %d", sid),
		d.serviceURL(s)+"/api/v1/status", pki.NewName(pki.Service, d.st.Network, sid).String())
}

func (d *devnet) podDir(i int) string {
	return filepath.Join(d.cfg.Dir, "pods", fmt.Sprintf("pod-%d", i+1))
}

func (d *devnet) podURL(i, port int) string {
	return "https://" + d.st.Pods[i].Address + ":" + strconv.Itoa(port)
}

// startPods starts every pod, then waits for all of them: on first start
// each makes its keys, which takes a while, so they do it side by side.
func (d *devnet) startPods(ctx context.Context) error {
	var joins []string
	for _, s := range d.services {
		if sid := s.contract.ServiceID; !slices.Contains(d.cfg.Unjoined, sid) {
			joins = append(joins, strconv.FormatUint(uint64(sid), 10))
		}
	}
	sids := strings.Join(joins, ",")

	for i, p := range d.st.Pods {
		d.say("  starting pod %d (account %s) on %s", i+1, p.AccountID, p.Address)
		root := d.podDir(i)
		err := d.procs.start(ctx, proc{
			name: fmt.Sprintf("pod %d", i+1),
			bin:  d.cfg.Binary,
			args: []string{"pod"},
			env: d.env("ACCOUNT_ID="+p.AccountID, "ACCOUNT_SECRET="+p.Password,
				"ROOT_DIR="+root, "LOGDIR="+filepath.Join(root, "logs"),
				"HTTPS_PORT="+strconv.Itoa(d.st.HTTPSPort),
				"POD_PORT="+strconv.Itoa(d.st.PodPort),
				"SERVICE_PORT="+strconv.Itoa(d.st.ServicePort),
				"BIND_ADDRESS="+p.Address, "DIRECTORY_URL="+d.dirURL(),
				"DNS_SERVER="+d.st.Directory+":"+strconv.Itoa(d.st.DNSPort),
				"NETWORK_ROOT_CA="+d.netPaths().RootCACert(), "JOIN_SERVICE_IDS="+sids),
			log: filepath.Join(d.cfg.Dir, "logs", fmt.Sprintf("pod-%d.log", i+1)),
		})
		if err != nil {
			return err
		}
	}

	for i, p := range d.st.Pods {
		name := pki.AccountName(d.st.Network, p.AccountID).String()
		if err := d.waitHTTP(ctx, fmt.Sprintf("pod %d", i+1),
			d.podURL(i, d.st.HTTPSPort)+"/readyz", name); err != nil {
			return err
		}
	}
	return nil
}

// waitHTTP polls url until it answers 200, verifying the server as
// serverName under the network root.
func (d *devnet) waitHTTP(ctx context.Context, what, url, serverName string) error {
	pool := x509.NewCertPool()
	pool.AddCert(d.root)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName},
		DisableKeepAlives: true,
	}}

	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}

		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-d.procs.failed:
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer within %s; see the logs in %s", what, readyTimeout,
		filepath.Join(d.cfg.Dir, "logs"))
}
