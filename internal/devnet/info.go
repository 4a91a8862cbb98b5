package devnet

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/byoda/byoda-go/internal/pki"
)

// Info describes a running devnet; it is written to devnet.json.
type Info struct {
	Network   string        `json:"network"`
	RootCA    string        `json:"root_ca"`
	Directory DirectoryInfo `json:"directory"`
	Services  []ServiceInfo `json:"services"`
	Pods      []PodInfo     `json:"pods"`
}

// DirectoryInfo says how to reach the devnet's directory.
type DirectoryInfo struct {
	URL string `json:"url"`
	DNS string `json:"dns"`
}

// ServiceInfo says how to reach one service.
type ServiceInfo struct {
	ServiceID uint32 `json:"service_id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
}

// PodInfo says how to reach and log in to one pod.
type PodInfo struct {
	AccountID   string       `json:"account_id"`
	Address     string       `json:"address"`
	HTTPSURL    string       `json:"https_url"`
	PodURL      string       `json:"pod_url"`
	Username    string       `json:"username"`
	Password    string       `json:"password"`
	RootDir     string       `json:"root_dir"`
	AccountCert string       `json:"account_cert"`
	AccountKey  string       `json:"account_key"`
	Members     []MemberInfo `json:"members"`
}

// MemberInfo is one membership of a pod, with its certificate and an
// unencrypted copy of its key.
type MemberInfo struct {
	ServiceID uint32 `json:"service_id"`
	MemberID  string `json:"member_id"`
	Cert      string `json:"cert"`
	Key       string `json:"key"`
}

// describe builds the Info of the running devnet, writing the unencrypted
// key copies that curl and tests use.
// TLSConfig returns a client configuration for a pod of the devnet: it
// trusts the devnet's root CA, names serverName, and presents the
// certificate and unencrypted key of certPath and keyPath, such as a pod's
// AccountCert and AccountKey.
func (i *Info) TLSConfig(certPath, keyPath, serverName string) (*tls.Config, error) {
	roots, err := pki.LoadCerts(i.RootCA)
	if err != nil {
		return nil, fmt.Errorf("loading the devnet's root CA: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading a client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	return &tls.Config{RootCAs: pool, ServerName: serverName,
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (d *devnet) describe() (*Info, error) {
	info := &Info{
		Network:   d.st.Network,
		RootCA:    d.netPaths().RootCACert(),
		Directory: DirectoryInfo{URL: d.dirURL(), DNS: d.st.Directory + ":" + strconv.Itoa(d.st.DNSPort)},
	}
	for i := range d.services {
		s := &d.services[i]
		info.Services = append(info.Services, ServiceInfo{ServiceID: s.contract.ServiceID,
			Name: s.contract.Name, URL: d.serviceURL(s)})
	}

	for i, p := range d.st.Pods {
		pod, err := d.describePod(i, p)
		if err != nil {
			return nil, err
		}
		info.Pods = append(info.Pods, pod)
	}
	return info, nil
}

func (d *devnet) describePod(i int, p podState) (PodInfo, error) {
	root := d.podDir(i)
	paths := pki.Paths{Root: root, Network: d.st.Network}
	keys := filepath.Join(root, "devnet-keys")

	accountKey, err := d.exportKey(paths.AccountKey(), filepath.Join(keys, "account.key"))
	if err != nil {
		return PodInfo{}, err
	}
	pod := PodInfo{
		AccountID:   p.AccountID,
		Address:     p.Address,
		HTTPSURL:    d.podURL(i, d.st.HTTPSPort),
		PodURL:      d.podURL(i, d.st.PodPort),
		Username:    p.AccountID[:8],
		Password:    p.Password,
		RootDir:     root,
		AccountCert: paths.AccountCert(),
		AccountKey:  accountKey,
	}

	for _, s := range d.services {
		sid := s.contract.ServiceID
		certs, err := pki.LoadCerts(paths.MemberCert(sid))
		if errors.Is(err, os.ErrNotExist) && slices.Contains(d.cfg.Unjoined, sid) {
			continue
		}
		if err != nil {
			return PodInfo{}, fmt.Errorf("pod %d has not joined service %d: %w", i+1, sid, err)
		}
		name, err := pki.ParseName(certs[0].Subject.CommonName, d.st.Network)
		if err != nil {
			return PodInfo{}, err
		}
		key, err := d.exportKey(paths.MemberKey(sid),
			filepath.Join(keys, fmt.Sprintf("member-%d.key", sid)))
		if err != nil {
			return PodInfo{}, err
		}
		pod.Members = append(pod.Members, MemberInfo{ServiceID: sid, MemberID: name.ID,
			Cert: paths.MemberCert(sid), Key: key})
	}
	return pod, nil
}

// exportKey writes an unencrypted copy of an encrypted key file; only a
// devnet does this.
func (d *devnet) exportKey(from, to string) (string, error) {
	key, err := pki.LoadKey(from, []byte(d.st.KeySecret))
	if err != nil {
		return "", err
	}
	data, err := pki.MarshalKey(key)
	if err != nil {
		return "", err
	}
	return to, pki.WriteFile(to, data, 0o600)
}

func (d *devnet) writeInfo(info *Info) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return pki.WriteFile(filepath.Join(d.cfg.Dir, "devnet.json"), append(data, '\n'), 0o600)
}

// printGuide tells the person how to reach each pod.
func (d *devnet) printGuide(info *Info) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nnetwork %s, root CA %s\n", info.Network, info.RootCA)
	fmt.Fprintf(&b, "directory %s, DNS %s\n", info.Directory.URL, info.Directory.DNS)
	for _, s := range info.Services {
		fmt.Fprintf(&b, "service %d (%s) %s\n", s.ServiceID, s.Name, s.URL)
	}

	for i, p := range info.Pods {
		host := pki.AccountName(info.Network, p.AccountID).String()
		podPort := strings.TrimPrefix(p.PodURL, "https://"+p.Address+":")
		fmt.Fprintf(&b, "\npod %d: account %s\n", i+1, p.AccountID)
		fmt.Fprintf(&b, "  %s (browsers, tokens)  %s (certificates)\n", p.HTTPSURL, p.PodURL)
		fmt.Fprintf(&b, "  login: username %s, password %s\n", p.Username, p.Password)
		httpsPort := strings.TrimPrefix(p.HTTPSURL, "https://"+p.Address+":")
		fmt.Fprintf(&b, "  web page https://%s:%s/ (trust the root CA and add %q to "+
			"/etc/hosts)\n", host, httpsPort, p.Address+" "+host)
		fmt.Fprintf(&b, "  curl --cacert %s --resolve %s:%s:%s \\\n"+
			"    --cert %s --key %s https://%s:%s/api/v1/pod/account\n",
			info.RootCA, host, podPort, p.Address, p.AccountCert, p.AccountKey, host, podPort)
		for _, m := range p.Members {
			fmt.Fprintf(&b, "  member of service %d: %s\n", m.ServiceID, m.MemberID)
		}
		fmt.Fprintf(&b, "  byoda data query person --devnet %s --pod %d\n", d.cfg.Dir, i+1)
	}
	fmt.Fprintf(&b, "\neverything is in %s; stop with Ctrl-C\n",
		filepath.Join(d.cfg.Dir, "devnet.json"))
	fmt.Fprint(d.cfg.Out, b.String())
}
