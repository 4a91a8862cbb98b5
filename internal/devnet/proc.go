package devnet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Restart limits for a child that keeps dying.
const (
	restartWindow = time.Minute
	maxRestarts   = 5
	stopGrace     = 10 * time.Second
)

// proc is a child process of the devnet.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	log  string
}

// supervisor runs the devnet's children, restarts one that dies and stops
// them all at the end. A child that dies too often is reported on failed.
type supervisor struct {
	logger *slog.Logger
	failed chan error

	mu       sync.Mutex
	stopping bool
	running  map[string]*exec.Cmd
	wg       sync.WaitGroup
}

func newSupervisor(logger *slog.Logger) *supervisor {
	return &supervisor{logger: logger, failed: make(chan error, 1),
		running: map[string]*exec.Cmd{}}
}

// start starts p and watches it until the supervisor stops.
func (s *supervisor) start(ctx context.Context, p proc) error {
	cmd, err := s.spawn(p)
	if err != nil {
		return err
	}

	s.wg.Add(1)
	go s.watch(ctx, p, cmd)
	return nil
}

func (s *supervisor) spawn(p proc) (*exec.Cmd, error) {
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	defer logFile.Close()

	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A child must not outlive the devnet, even one killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.name, err)
	}

	s.mu.Lock()
	s.running[p.name] = cmd
	s.mu.Unlock()
	s.logger.Debug("started process", "name", p.name, "pid", cmd.Process.Pid)
	return cmd, nil
}

// watch waits for cmd and restarts p when it died while the devnet runs.
func (s *supervisor) watch(ctx context.Context, p proc, cmd *exec.Cmd) {
	defer s.wg.Done()
	var deaths []time.Time

	for {
		err := cmd.Wait()
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping || ctx.Err() != nil {
			return
		}

		now := time.Now()
		deaths = append(deaths, now)
		for len(deaths) > 0 && now.Sub(deaths[0]) > restartWindow {
			deaths = deaths[1:]
		}
		if len(deaths) > maxRestarts {
			s.report(fmt.Errorf("%s died %d times within %s (last: %v); see %s", p.name,
				len(deaths), restartWindow, err, p.log))
			return
		}

		s.logger.Warn("process died; restarting it", "name", p.name, "err", err)
		time.Sleep(time.Second)
		if cmd, err = s.spawn(p); err != nil {
			s.report(err)
			return
		}
	}
}

func (s *supervisor) report(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// pid returns the process id of the running child name, or 0.
func (s *supervisor) pid(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cmd, ok := s.running[name]; ok && cmd.Process != nil {
		return cmd.Process.Pid
	}
	return 0
}

// pids returns the process ids of every running child.
func (s *supervisor) pids() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for name, cmd := range s.running {
		out[name] = cmd.Process.Pid
	}
	return out
}

// stopAll asks every child to stop with SIGTERM, and kills those that have
// not stopped after stopGrace.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	s.stopping = true
	cmds := make([]*exec.Cmd, 0, len(s.running))
	for _, cmd := range s.running {
		cmds = append(cmds, cmd)
	}
	s.mu.Unlock()

	for _, cmd := range cmds {
		cmd.Process.Signal(syscall.SIGTERM)
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopGrace):
		for _, cmd := range cmds {
			cmd.Process.Kill()
		}
		<-done
	}
}
