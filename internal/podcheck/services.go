package podcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/pki"
)

// checkServiceRegistration asks the service for the member data
// certificate it holds of m, which the pod sends when it registers.
func (c *checker) checkServiceRegistration(ctx context.Context, m *member) {
	check := fmt.Sprintf("service %d registration", m.sid)
	if m.id == "" || len(m.data.chain) == 0 {
		c.add(check, Fail, "not checked: the membership's certificates are missing",
			"see the certificate checks above")
		return
	}
	host := pki.NewName(pki.Service, c.cfg.Pod.Network, m.sid).String()
	url := "https://" + net.JoinHostPort(host, strconv.Itoa(c.cfg.Pod.ServicePort))
	pool := x509.NewCertPool()
	pool.AddCert(c.root)
	cl, err := api.NewClient(api.ClientConfig{URL: url, TLS: &tls.Config{RootCAs: pool,
		ServerName: host, MinVersion: tls.VersionTLS12}, Dial: c.dial,
		Timeout: c.cfg.Timeout})
	var data []byte
	if err == nil {
		data, err = cl.Raw(ctx, "GET", "/member-certs/member-data-"+m.id+"-cert.pem", nil)
		cl.CloseIdle()
	}

	var status *api.StatusError
	switch {
	case errors.As(err, &status) && status.Status == http.StatusNotFound:
		c.add(check, Fail, fmt.Sprintf("service %d does not know member %s", m.sid, m.id),
			"restart the pod: it registers every membership with its service at start "+
				"and every hour; its log says why a registration failed")
		return
	case err != nil:
		c.add(check, Fail, fmt.Sprintf("service %d at %s does not answer: %v", m.sid, url,
			err), "the service may be down, or SERVICE_PORT or the DNS of "+host+" wrong")
		return
	}
	certs, err := pki.ParseCerts(data)
	switch {
	case err != nil:
		c.add(check, Fail, fmt.Sprintf("service %d answered with no certificate: %v",
			m.sid, err), "ask the service's operators")
	case !pki.SameCert(certs[0], m.data.chain[0]):
		c.add(check, Warn, fmt.Sprintf("service %d holds another member data certificate "+
			"of member %s than the pod's", m.sid, m.id), "the pod registers its current "+
			"one within the hour; restart the pod to do it now")
	default:
		c.add(check, OK, fmt.Sprintf("service %d knows member %s and its data certificate",
			m.sid, m.id), "")
	}
}

// checkCustomDomain checks the certificate of CUSTOM_DOMAIN: the one the
// pod obtained under ROOT_DIR/custom-domain/<domain>/, or the one someone
// else renews in LETSENCRYPT_DIRECTORY/live/<domain>/.
func (c *checker) checkCustomDomain() {
	pod := c.cfg.Pod
	domain := pod.CustomDomain
	if domain == "" {
		return
	}
	check := "custom domain " + domain
	dir := filepath.Join(pod.RootDir, "custom-domain", domain)
	fix := fmt.Sprintf("the pod obtains it by ACME when it starts: check that %s "+
		"resolves to this machine, that port %d (ACME_HTTP_PORT) reaches the pod, and its "+
		"log", domain, pod.ACMEHTTPPort)
	if !pod.ManageCustomDomainCert {
		dir = filepath.Join(pod.LetsEncryptDir, "live", domain)
		fix = fmt.Sprintf("obtain it with certbot into LETSENCRYPT_DIRECTORY %s, and "+
			"renew it from cron", pod.LetsEncryptDir)
	}

	cert := newestCert(dir, domain)
	now := c.cfg.Now()
	switch {
	case cert == nil:
		c.add(check, Warn, fmt.Sprintf("no certificate for %s in %s yet", domain, dir), fix)
	case !now.Before(cert.NotAfter):
		c.add(check, Fail, fmt.Sprintf("the certificate in %s expired on %s", dir,
			cert.NotAfter.UTC().Format(dateFormat)), "renew it: "+fix)
	case cert.NotAfter.Sub(now) < CustomDomainWarning:
		c.add(check, Warn, fmt.Sprintf("the certificate in %s expires on %s, in %s", dir,
			cert.NotAfter.UTC().Format(dateFormat), days(cert.NotAfter.Sub(now))),
			"renewal is overdue: "+fix)
	default:
		c.add(check, OK, fmt.Sprintf("certificate issued by %s, valid until %s (%s)",
			cert.Issuer.CommonName, cert.NotAfter.UTC().Format(dateFormat),
			days(cert.NotAfter.Sub(now))), "")
	}
}

// newestCert returns, of the PEM files in dir, the certificate for domain
// that expires last, or nil.
func newestCert(dir, domain string) *x509.Certificate {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var best *x509.Certificate
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".pem" {
			continue
		}
		certs, err := pki.LoadCerts(filepath.Join(dir, e.Name()))
		if err != nil || certs[0].VerifyHostname(domain) != nil {
			continue
		}
		if best == nil || certs[0].NotAfter.After(best.NotAfter) {
			best = certs[0]
		}
	}
	return best
}
