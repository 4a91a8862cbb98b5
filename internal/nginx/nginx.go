// Package nginx writes the configuration with which an nginx of the host
// stands in front of a pod that shares the host's web server
// (SHARED_WEBSERVER): a virtual server file for the account and one for
// each membership, each file terminating TLS for one name and passing the
// requests to the pod's plain HTTP port. Writer installs such files
// together with the certificates and keys they name, checks them with
// nginx -t, puts the previous files back when the check fails and has
// nginx reload.
package nginx

import (
	"bytes"
	"embed"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"text/template"
)

// Site is what the virtual servers of one pod are made from.
type Site struct {
	// AccountID names the pod in the files' first line, which tells its
	// files apart from those of other pods sharing the directory.
	AccountID string

	// Listen is the address the virtual servers listen on; invalid or
	// unspecified means every IPv4 address.
	Listen netip.Addr

	// HTTPSPort serves browsers and JWT clients, PodPort other pods and
	// services with mandatory client certificates, and ACMEPort the ACME
	// HTTP-01 challenges of CustomDomain.
	HTTPSPort, PodPort, ACMEPort int

	// Upstream is the pod's plain HTTP port.
	Upstream netip.AddrPort

	// HTTP2Directive writes "http2 on;", which nginx 1.25.1 introduced and
	// from which on the "http2" parameter of "listen" is deprecated; false
	// writes the parameter, which every nginx since 1.9.5 reads.
	HTTP2Directive bool

	// Account is the account's name, with the root CA as its ClientCA.
	Account Server

	// CustomDomain, when set, is served on HTTPSPort beside the account.
	CustomDomain *CustomDomain

	// Members are the memberships, each with its service's anchor file as
	// its ClientCA.
	Members []Member
}

// Server is one name with its TLS files, as paths nginx opens.
type Server struct {
	// Name is the DNS name clients ask for (SNI and Host).
	Name string

	// Cert is the certificate chain, leaf first, and Key its unencrypted
	// private key.
	Cert, Key string

	// ClientCA holds the CAs that client certificates on PodPort must lead
	// to, and VerifyDepth is how many certificates may lie between a
	// client's certificate and that CA, the CA included.
	ClientCA    string
	VerifyDepth int
}

// CustomDomain is a public name of the account, with a certificate from a
// public CA such as Let's Encrypt.
type CustomDomain struct {
	// Name is the domain; Cert and Key its TLS files, empty until a
	// certificate has been obtained.
	Name, Cert, Key string

	// ACME passes the challenges of an ACME server on ACMEPort to the pod,
	// which obtains the certificate itself.
	ACME bool
}

// Member is one membership's virtual server.
type Member struct {
	// MemberID names the file, member-<MemberID>.conf.
	MemberID string
	Server
}

// File is a file to install: Path is a file name for the vhost files
// Render returns, and an absolute path for Writer.
type File struct {
	Path string
	Data []byte
	Mode uint32
}

// AccountFile is the name of the account's vhost file.
const AccountFile = "account.conf"

// MemberFile returns the name of a membership's vhost file.
func MemberFile(memberID string) string { return "member-" + memberID + ".conf" }

// Marker returns the first line of every vhost file of the pod of
// accountID.
func Marker(accountID string) string { return "# byoda pod " + accountID }

//go:embed vhost.tmpl
var templateFS embed.FS

var vhosts = template.Must(template.New("").Funcs(template.FuncMap{
	"serverName": serverName,
}).ParseFS(templateFS, "vhost.tmpl"))

// serverName returns the regular expression that matches exactly name, a
// plain DNS name; nginx compares names in lower case.
func serverName(name string) string {
	return "~^" + strings.ReplaceAll(name, ".", `\.`) + "$"
}

// Render returns the vhost files of s: account.conf and one
// member-<id>.conf per membership, with mode 0644.
func Render(s Site) ([]File, error) {
	if err := s.check(); err != nil {
		return nil, err
	}

	files := []File{}
	add := func(name, tmpl string, data any) error {
		var b bytes.Buffer
		if err := vhosts.ExecuteTemplate(&b, tmpl, data); err != nil {
			return fmt.Errorf("rendering %s: %w", name, err)
		}
		files = append(files, File{Path: name, Data: b.Bytes(), Mode: 0o644})
		return nil
	}

	if err := add(AccountFile, "account", view{Site: &s, Server: s.Account}); err != nil {
		return nil, err
	}
	for _, m := range s.Members {
		if err := add(MemberFile(m.MemberID), "member", view{Site: &s,
			Server: m.Server}); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// view is what a template renders: the site, and the server of the file.
type view struct {
	*Site
	Server Server
}

// ListenAddr returns the address part of a listen directive for port.
func (v view) ListenAddr(port int) string {
	if !v.Listen.IsValid() || v.Listen.IsUnspecified() {
		return fmt.Sprint(port)
	}
	return netip.AddrPortFrom(v.Listen, uint16(port)).String()
}

// RedirectPort is the ":PORT" that redirects to HTTPS carry, empty for 443.
func (v view) RedirectPort() string {
	if v.HTTPSPort == 443 {
		return ""
	}
	return fmt.Sprintf(":%d", v.HTTPSPort)
}

// Values are written into nginx's configuration language as they are, so
// each must be a plain token: an id or name of letters, digits, dots and
// dashes, or a path without quotes, spaces, variables, braces or
// semicolons.
var (
	plainID   = regexp.MustCompile(`^[0-9a-f][0-9a-f-]{0,62}$`)
	plainName = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
	plainPath = regexp.MustCompile(`^/[A-Za-z0-9._/+@=,:-]*$`)
)

func (s *Site) check() error {
	if !plainID.MatchString(s.AccountID) {
		return fmt.Errorf("nginx: account id %q is not a plain id", s.AccountID)
	}
	for name, port := range map[string]int{"HTTPS port": s.HTTPSPort,
		"pod port": s.PodPort, "ACME port": s.ACMEPort} {
		if port < 1 || port > 65535 {
			return fmt.Errorf("nginx: %s %d is not a port", name, port)
		}
	}
	if !s.Upstream.IsValid() || s.Upstream.Port() == 0 {
		return fmt.Errorf("nginx: upstream %v is not an address and port", s.Upstream)
	}
	if s.Listen.Zone() != "" || s.Upstream.Addr().Zone() != "" {
		return fmt.Errorf("nginx: addresses with zones are not supported")
	}

	if err := s.Account.check(); err != nil {
		return err
	}
	if d := s.CustomDomain; d != nil {
		if !plainName.MatchString(d.Name) {
			return fmt.Errorf("nginx: custom domain %q is not a plain DNS name", d.Name)
		}
		if (d.Cert == "") != (d.Key == "") {
			return fmt.Errorf("nginx: custom domain %s needs both a certificate and a key",
				d.Name)
		}
		if err := checkPaths(d.Cert, d.Key); d.Cert != "" && err != nil {
			return err
		}
	}
	for _, m := range s.Members {
		if !plainID.MatchString(m.MemberID) {
			return fmt.Errorf("nginx: member id %q is not a plain id", m.MemberID)
		}
		if err := m.Server.check(); err != nil {
			return err
		}
	}
	return nil
}

func (s Server) check() error {
	if !plainName.MatchString(s.Name) {
		return fmt.Errorf("nginx: server name %q is not a plain DNS name", s.Name)
	}
	if s.VerifyDepth < 1 || s.VerifyDepth > 10 {
		return fmt.Errorf("nginx: verify depth %d of %s is not from 1 to 10", s.VerifyDepth,
			s.Name)
	}
	return checkPaths(s.Cert, s.Key, s.ClientCA)
}

func checkPaths(paths ...string) error {
	for _, p := range paths {
		if !plainPath.MatchString(p) || strings.Contains(p, "//") {
			return fmt.Errorf("nginx: %q is not an absolute path of plain characters", p)
		}
	}
	return nil
}
