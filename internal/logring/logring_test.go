package logring

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func newLogger(size int) (*Ring, *slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	ring := New(size)
	text := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	return ring, slog.New(ring.Handler(text)), &buf
}

func TestRingKeepsWhatTheLogShows(t *testing.T) {
	ring, logger, buf := newLogger(10)
	logger.Debug("hidden", "k", 1)
	logger.Info("joined service", "service_id", 7, "member_id", "abc")
	logger.With("pod", "p1").WithGroup("req").Warn("refused", "status", 403,
		slog.Group("peer", "addr", "127.0.0.2"), "why", "two words")

	got := ring.Recent()
	if len(got) != 2 {
		t.Fatalf("kept %d records, want 2: %+v", len(got), got)
	}
	if got[0].Message != "joined service" || got[0].Level != "INFO" ||
		got[0].Attrs != "service_id=7 member_id=abc" || got[0].Time.IsZero() {
		t.Errorf("first record %+v", got[0])
	}
	want := `pod=p1 req.status=403 req.peer.addr=127.0.0.2 req.why="two words"`
	if got[1].Level != "WARN" || got[1].Attrs != want {
		t.Errorf("second record attrs %q, want %q", got[1].Attrs, want)
	}
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "refused") {
		t.Errorf("the wrapped handler wrote:\n%s", buf.String())
	}
}

func TestRingWrapsAround(t *testing.T) {
	ring, logger, _ := newLogger(3)
	if got := ring.Recent(); len(got) != 0 {
		t.Fatalf("a new ring holds %d records", len(got))
	}
	for i := range 7 {
		logger.Info(fmt.Sprint("line ", i))
	}

	var msgs []string
	for _, r := range ring.Recent() {
		msgs = append(msgs, r.Message)
	}
	if strings.Join(msgs, ",") != "line 4,line 5,line 6" {
		t.Errorf("kept %q", msgs)
	}
}

func TestRingCapsLongAttributes(t *testing.T) {
	ring, logger, _ := newLogger(2)
	logger.Error("handler panicked", "stack", strings.Repeat("é", 5000))

	got := ring.Recent()[0].Attrs
	if len(got) > maxAttrsLength+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("attrs of %d bytes, ending %q", len(got), got[len(got)-8:])
	}
}

func TestRingDefaultSizeAndEmptyValues(t *testing.T) {
	ring, logger, _ := newLogger(0)
	if len(ring.recs) != DefaultSize {
		t.Errorf("New(0) keeps %d records", len(ring.recs))
	}
	logger.Info("x", "empty", "", "eq", "a=b", slog.Attr{}, slog.Group("", "in", 1))
	if got := ring.Recent()[0].Attrs; got != `empty="" eq="a=b" in=1` {
		t.Errorf("attrs %q", got)
	}
}

func TestRingConcurrentUse(t *testing.T) {
	ring, logger, _ := newLogger(50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				logger.Info("work", "g", g, "i", i)
				if i%10 == 0 {
					ring.Recent()
				}
			}
		})
	}
	wg.Wait()
	if got := len(ring.Recent()); got != 50 {
		t.Errorf("kept %d records after 800, want 50", got)
	}
}
