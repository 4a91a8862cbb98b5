package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/directory"
)

// registerRetry is how long a service waits before it tries again to
// register with a directory that could not be reached.
const registerRetry = time.Minute

// RunConfig configures a running service server.
type RunConfig struct {
	Config

	// Listen is the HTTPS address, such as "127.0.0.1:443" (required).
	Listen string

	// Directory is how to reach the network's directory, with which the
	// service registers its address and data certificate at start. An empty
	// URL skips the registration.
	Directory directory.ClientConfig

	// Ready, when set, is called once the listener is bound.
	Ready func(addr net.Addr)
}

// Run serves the service until ctx ends.
func Run(ctx context.Context, cfg RunConfig) error {
	srv, err := New(cfg.Config)
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("service: listening for https: %w", err)
	}
	defer ln.Close()

	httpSrv := api.NewServer(srv.Handler(), srv.TLSConfig())
	errs := make(chan error, 1)
	go func() { errs <- httpSrv.ServeTLS(ln, "", "") }()

	srv.logger.Info("service started", "service_id", srv.secrets.ServiceID,
		"version", srv.contract.Version, "https", ln.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}

	regCtx, stopReg := context.WithCancel(ctx)
	regDone := make(chan struct{})
	go func() {
		defer close(regDone)
		srv.keepRegistering(regCtx, cfg.Directory)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	stopReg()
	<-regDone

	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = httpSrv.Shutdown(shutCtx)
	srv.logger.Info("service stopped", "service_id", srv.secrets.ServiceID)

	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return errors.Join(runErr, err)
}

// keepRegistering registers the service with the directory, trying again
// every registerRetry until it succeeds or ctx ends.
func (s *Server) keepRegistering(ctx context.Context, cfg directory.ClientConfig) {
	if cfg.URL == "" {
		return
	}
	for {
		err := register(ctx, cfg, s.secrets)
		if err == nil {
			s.logger.Info("registered with the directory", "service_id", s.secrets.ServiceID)
			return
		}
		s.logger.Warn("registering with the directory failed; trying again",
			"service_id", s.secrets.ServiceID, "err", err, "retry_in", registerRetry)

		select {
		case <-ctx.Done():
			return
		case <-time.After(registerRetry):
		}
	}
}
