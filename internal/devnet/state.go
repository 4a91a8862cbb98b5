package devnet

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/pki"
)

// state is what a devnet keeps between runs, so that a restart brings back
// the same network, addresses, ports and pods.
type state struct {
	Network     string     `json:"network"`
	KeySecret   string     `json:"private_key_secret"`
	Directory   string     `json:"directory_address"`
	DirPort     int        `json:"directory_port"`
	DNSPort     int        `json:"dns_port"`
	ServicePort int        `json:"service_port"`
	HTTPSPort   int        `json:"https_port"`
	PodPort     int        `json:"pod_port"`
	Pods        []podState `json:"pods"`
}

// podState is one pod of the devnet.
type podState struct {
	AccountID string `json:"account_id"`
	Address   string `json:"address"`
	Password  string `json:"password"`
}

func (c *Config) statePath() string { return filepath.Join(c.Dir, "devnet-state.json") }

// loadState reads the state of an earlier run, or makes a new one with
// pods pods. A state with fewer pods than asked for gets more.
func (c *Config) loadState(pods int) (*state, bool, error) {
	data, err := os.ReadFile(c.statePath())
	if errors.Is(err, os.ErrNotExist) {
		s, err := newState(pods)
		return s, false, err
	}
	if err != nil {
		return nil, false, err
	}

	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, false, fmt.Errorf("%s: %w", c.statePath(), err)
	}
	for len(s.Pods) < pods {
		s.Pods = append(s.Pods, newPod(len(s.Pods)))
	}
	return &s, true, nil
}

func (c *Config) saveState(s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return pki.WriteFile(c.statePath(), data, 0o600)
}

func newState(pods int) (*state, error) {
	s := &state{Network: Network, KeySecret: randomString(), Directory: "127.0.1.1"}
	for i := 0; i < pods; i++ {
		s.Pods = append(s.Pods, newPod(i))
	}
	return s, s.pickPorts(nil)
}

func newPod(i int) podState {
	return podState{AccountID: uuid.NewString(), Address: podAddress(i).String(),
		Password: randomString()[:16]}
}

// podAddress is the loopback address of pod i.
func podAddress(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(11 + i)}) }

// serviceAddress is the loopback address of the i-th service.
func serviceAddress(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, 1, byte(10 + i)})
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pickPorts chooses ports free on every address that uses them; with
// services given, the service port must be free on their addresses too.
func (s *state) pickPorts(services []netip.Addr) error {
	var pods []netip.Addr
	for _, p := range s.Pods {
		pods = append(pods, netip.MustParseAddr(p.Address))
	}
	if len(services) == 0 {
		for i := 0; i < 8; i++ {
			services = append(services, serviceAddress(i))
		}
	}
	dir := []netip.Addr{netip.MustParseAddr(s.Directory)}

	taken := map[int]bool{}
	var err error
	for _, p := range []struct {
		port  *int
		addrs []netip.Addr
		udp   bool
	}{
		{&s.DirPort, dir, false}, {&s.DNSPort, dir, true}, {&s.ServicePort, services, false},
		{&s.HTTPSPort, pods, false}, {&s.PodPort, pods, false},
	} {
		if *p.port, err = freePort(p.addrs, p.udp, taken); err != nil {
			return err
		}
		taken[*p.port] = true
	}
	return nil
}

// freePort finds a port free on all addrs (and for UDP too when udp is set)
// that is not in taken.
func freePort(addrs []netip.Addr, udp bool, taken map[int]bool) (int, error) {
	for attempt := 0; attempt < 100; attempt++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[0].String(), "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()

		if !taken[port] && portFree(addrs, port, udp) {
			return port, nil
		}
	}
	return 0, errors.New("no port is free on every devnet address")
}

func portFree(addrs []netip.Addr, port int, udp bool) bool {
	for _, a := range addrs {
		hp := net.JoinHostPort(a.String(), strconv.Itoa(port))
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return false
		}
		l.Close()
		if udp {
			c, err := net.ListenPacket("udp", hp)
			if err != nil {
				return false
			}
			c.Close()
		}
	}
	return true
}
