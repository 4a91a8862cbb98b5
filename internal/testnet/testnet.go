// Package testnet runs a whole private network inside a test: a directory
// with its DNS server and service servers, all on loopback, each service on
// its own loopback address so that they share one port as services of a
// network do. Pods under test join it as they would a real network.
package testnet

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/directory"
	"github.com/byoda/byoda-go/internal/dirstore"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/service"
)

// Network is the name of the networks testnet makes.
const Network = "byoda.test"

// Password encrypts the keys of the network and its services.
const Password = "testnet password"

// Net is a running network.
type Net struct {
	// Paths is the layout of the network's own secrets.
	Paths pki.Paths

	// Root is the network's root CA certificate, and RootFile its file.
	Root     *x509.Certificate
	RootFile string

	// DirectoryURL reaches the directory's API, DNS its DNS server.
	DirectoryURL string
	DNS          netip.AddrPort

	// ServicePort is the port every service listens on.
	ServicePort int

	// Services are the running services by id.
	Services map[uint32]*Service

	store  dirstore.Store
	cancel context.CancelFunc
}

// Service is a running service server.
type Service struct {
	ID      uint32
	Addr    netip.Addr
	URL     string
	Secrets *service.Secrets
}

// Start runs a network with one service per contract; each contract is a
// file path and may have its service id replaced by the matching entry of
// sids (0 keeps the file's). Everything stops when the test ends.
func Start(t testing.TB, contracts []string, sids []uint32) *Net {
	t.Helper()
	// Every component's clean-up cancels ctx before it waits for the
	// component to stop: clean-ups run last registered first.
	ctx, cancel := context.WithCancel(context.Background())

	n := &Net{cancel: cancel, Paths: pki.Paths{Root: t.TempDir(), Network: Network},
		Services: map[uint32]*Service{}}
	n.startDirectory(t, ctx)

	n.ServicePort = freePort(t, "127.0.0.1")
	for i, path := range contracts {
		var sid uint32
		if i < len(sids) {
			sid = sids[i]
		}
		addr := netip.AddrFrom4([4]byte{127, 0, 1, byte(10 + i)})
		n.startService(t, ctx, path, sid, addr)
	}
	return n
}

func (n *Net) startDirectory(t testing.TB, ctx context.Context) {
	t.Helper()
	network, err := pki.CreateNetwork(n.Paths, []byte(Password))
	if err != nil {
		t.Fatal(err)
	}
	n.Root, n.RootFile = network.Root, n.Paths.RootCACert()

	certs, err := pki.LoadCerts(n.Paths.DirectoryCert())
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.LoadKey(n.Paths.DirectoryKey(), []byte(Password))
	if err != nil {
		t.Fatal(err)
	}
	n.store, err = dirstore.OpenSQLite(ctx, filepath.Join(n.Paths.Root, "directory.db"))
	if err != nil {
		t.Fatal(err)
	}

	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- directory.Run(ctx, directory.RunConfig{
			Config:      directory.Config{Network: network, Store: n.store},
			Listen:      "127.0.0.1:0",
			DNSListen:   "127.0.0.1:0",
			Certificate: pki.TLSCertificate(certs, key),
			Ready: func(https net.Addr, dns netip.AddrPort) {
				n.DirectoryURL, n.DNS = "https://"+https.String(), dns
				close(ready)
			},
		})
	}()
	wait(t, ready, done, "directory")
	t.Cleanup(func() {
		n.cancel()
		<-done
		n.store.Close()
	})
}

// ClientConfig returns how a test reaches the directory.
func (n *Net) ClientConfig() directory.ClientConfig {
	pool := x509.NewCertPool()
	pool.AddCert(n.Root)
	return directory.ClientConfig{URL: n.DirectoryURL, Network: Network, RootCAs: pool}
}

func (n *Net) startService(t testing.TB, ctx context.Context, contractPath string, sid uint32,
	addr netip.Addr) {
	t.Helper()
	doc, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatal(err)
	}
	if sid != 0 {
		doc = withServiceID(t, doc, sid)
	}

	paths := pki.Paths{Root: t.TempDir(), Network: Network}
	if err := pki.WriteFile(paths.RootCACert(), pki.EncodeCert(n.Root), 0o644); err != nil {
		t.Fatal(err)
	}
	dirCfg := n.ClientConfig()
	dirCfg.LocalAddr = addr.AsSlice()
	secrets, err := service.Init(ctx, service.InitConfig{Contract: doc, Paths: paths,
		Password: []byte(Password), Directory: dirCfg})
	if err != nil {
		t.Fatalf("service init: %v", err)
	}
	members, err := service.OpenMembers(ctx, filepath.Join(paths.ServiceDir(secrets.ServiceID),
		"members.db"))
	if err != nil {
		t.Fatal(err)
	}

	ready := make(chan struct{})
	done := make(chan error, 1)
	listen := net.JoinHostPort(addr.String(), strconv.Itoa(n.ServicePort))
	go func() {
		done <- service.Run(ctx, service.RunConfig{
			Config:    service.Config{Secrets: secrets, Members: members},
			Listen:    listen,
			Directory: dirCfg,
			Ready:     func(net.Addr) { close(ready) },
		})
	}()
	wait(t, ready, done, "service")
	t.Cleanup(func() {
		n.cancel()
		<-done
		members.Close()
	})

	n.Services[secrets.ServiceID] = &Service{ID: secrets.ServiceID, Addr: addr,
		URL: "https://" + listen, Secrets: secrets}
}

// withServiceID returns a contract with its service_id replaced.
func withServiceID(t testing.TB, doc []byte, sid uint32) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["service_id"] = json.RawMessage(strconv.FormatUint(uint64(sid), 10))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wait(t testing.TB, ready chan struct{}, done chan error, what string) {
	t.Helper()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s did not start: %v", what, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within a minute", what)
	}
}

// FreePort returns a TCP port that is free on host a moment ago.
func FreePort(t testing.TB, host string) int { return freePort(t, host) }

func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// String describes the network for test logs.
func (n *Net) String() string {
	return fmt.Sprintf("network %s: directory %s, dns %s, %d services", Network,
		n.DirectoryURL, n.DNS, len(n.Services))
}
