package pod

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/pki"
)

// servers are the pod's two listeners and their HTTP servers. Behind a
// shared web server both are the one plain HTTP_PORT listener, served by
// httpsSrv alone (see listenShared).
type servers struct {
	https, pod       net.Listener
	httpsSrv, podSrv *http.Server
	domain           *domainServer
}

// listen binds the HTTPS and pod ports, and ACME_HTTP_PORT for a custom
// domain (see listenDomain).
func (p *Pod) listen(ctx context.Context) (srv *servers, err error) {
	d, err := p.listenDomain(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { srv, err = d.attach(srv, err) }()
	if p.cfg.SharedWebserver {
		return p.listenShared(ctx)
	}
	host := ""
	if p.cfg.BindAddress.IsValid() {
		host = p.cfg.BindAddress.String()
	}

	var lc net.ListenConfig
	https, err := lc.Listen(ctx, "tcp", hostPort(host, p.cfg.HTTPSPort))
	if err != nil {
		return nil, fmt.Errorf("HTTPS_PORT %d: %w", p.cfg.HTTPSPort, err)
	}
	pod, err := lc.Listen(ctx, "tcp", hostPort(host, p.cfg.PodPort))
	if err != nil {
		https.Close()
		return nil, fmt.Errorf("POD_PORT %d: %w", p.cfg.PodPort, err)
	}

	return &servers{
		https: https,
		pod:   pod,
		httpsSrv: api.NewServer(p.handler(false), &tls.Config{
			GetCertificate: p.certificate,
			MinVersion:     tls.VersionTLS12,
		}),
		podSrv: api.NewServer(p.handler(true), &tls.Config{
			GetCertificate: p.certificate,
			ClientAuth:     tls.RequestClientCert,
			MinVersion:     tls.VersionTLS12,
		}),
	}, nil
}

// serve starts both servers; the channel reports the first to fail.
func (s *servers) serve() <-chan error {
	errs := make(chan error, 3)
	s.domain.serve(errs)
	if s.podSrv == nil {
		go func() { errs <- s.httpsSrv.Serve(s.https) }()
		return errs
	}
	go func() { errs <- s.httpsSrv.ServeTLS(s.https, "", "") }()
	go func() { errs <- s.podSrv.ServeTLS(s.pod, "", "") }()
	return errs
}

func (s *servers) shutdown() (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer func() { err = errors.Join(err, s.domain.shutdown(ctx)) }()
	if s.podSrv == nil {
		return s.httpsSrv.Shutdown(ctx)
	}
	return errors.Join(s.httpsSrv.Shutdown(ctx), s.podSrv.Shutdown(ctx))
}

// certificate chooses the server certificate by the name the client asked
// for: a membership's name gets its member certificate, anything else the
// account's. New memberships and renewed certificates apply at once.
func (p *Pod) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c, ok, err := p.domainCertificate(name, hello); ok {
		return c, err
	}

	if n, err := pki.ParseName(name, p.cfg.Network); err == nil && n.Type == pki.Member {
		if m, ok := p.Membership(n.ServiceID); ok && m.MemberID == n.ID {
			return clientCert(m.tls), nil
		}
	}

	p.mu.RLock()
	defer p.mu.RUnlock()
	return clientCert(p.account), nil
}

// handler returns the routes of one port; onPodPort says whether requests
// must carry a client certificate.
func (p *Pod) handler(onPodPort bool) http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, f api.HandlerFunc) {
		mux.Handle(pattern, api.Handle(p.logger, f))
	}

	h("GET /api/v1/status", p.status)
	h("GET /livez", p.livez)
	h("GET /readyz", p.readyz)
	h("GET /member-cert.pem", p.memberCert(false))
	h("GET /member-data-cert.pem", p.memberCert(true))
	h("GET /api/v1/pod/account", p.getAccount)
	h("GET /api/v1/pod/member/service_id/{sid}", p.getMember)
	h("POST /api/v1/pod/member/service_id/{sid}/version/{version}", p.postMember)
	h("PUT /api/v1/pod/member/service_id/{sid}/version/{version}", p.putMember)
	h("POST /api/v1/pod/authtoken", p.postAuthToken)
	h("POST /api/v1/pod/authtoken/service_id/{sid}", p.postMemberToken)
	h("POST /api/v1/data/{sid}/{class}/{action}", p.dataRequest)
	h("GET /api/v1/data/{sid}/{class}/{action}", p.dataWebsocket)
	h("GET /ws-api/v1/data/{sid}/{class}/{action}", p.dataWebsocket)
	mux.HandleFunc("/", api.NotFound)

	if !onPodPort {
		return p.withWeb(mux)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		certs := peerCertificates(r)
		if len(certs) == 0 {
			api.WriteDetail(w, http.StatusUnauthorized,
				"this port requires a TLS client certificate of the network")
			return
		}
		who, err := p.certRequester(certs)
		if err != nil {
			api.WriteError(p.logger, w, r, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requesterKey{}, who)))
	})
}

func (p *Pod) status(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	return nil
}

func (p *Pod) livez(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	return nil
}

// readyz answers 200 once the pod serves and its last registration with
// the network succeeded, and 503 before.
func (p *Pod) readyz(w http.ResponseWriter, r *http.Request) error {
	if !p.ready.Load() || !p.registered.Load() {
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status": "starting", "serving": p.ready.Load(), "registered": p.registered.Load()})
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "serving": true,
		"registered": true})
	return nil
}

// memberCert serves the member or member data certificate of the
// membership whose name the request was sent to.
func (p *Pod) memberCert(data bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if r.TLS != nil && r.TLS.ServerName != "" {
			host = r.TLS.ServerName
		}

		n, err := pki.ParseName(strings.ToLower(host), p.cfg.Network)
		if err != nil || n.Type != pki.Member {
			return api.Errorf(http.StatusNotFound,
				"member certificates are served on membership names only")
		}
		m, ok := p.Membership(n.ServiceID)
		if !ok || m.MemberID != n.ID {
			return api.Errorf(http.StatusNotFound, "no membership %s on this pod", host)
		}

		s := m.tls
		if data {
			s = m.data
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, err = w.Write(pki.EncodeCertChain(s.chain...))
		return err
	}
}
