// Package logring keeps the most recent log records of a process in memory,
// so that the pod's web page can show what the pod did lately without
// reading its log files.
package logring

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultSize is how many records a Ring keeps when New is given no size.
const DefaultSize = 200

// maxAttrsLength caps the attributes of one record, in bytes: a stack trace
// must not fill the ring's memory.
const maxAttrsLength = 2 << 10

// Record is one kept log record.
type Record struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`

	// Attrs are the record's attributes as "key=value" pairs separated by
	// spaces, with groups written as dotted key prefixes, as slog's text
	// handler writes them.
	Attrs string `json:"attrs"`
}

// Ring holds the last records logged through its handlers. It is safe for
// concurrent use.
type Ring struct {
	mu   sync.Mutex
	recs []Record // a circle; next is where the next record goes
	next int
	full bool
}

// New returns a Ring that keeps the last size records, DefaultSize when
// size is not positive.
func New(size int) *Ring {
	if size <= 0 {
		size = DefaultSize
	}
	return &Ring{recs: make([]Record, size)}
}

// Handler returns a handler that keeps every record next is enabled for in
// r and then hands it to next.
func (r *Ring) Handler(next slog.Handler) slog.Handler {
	return &handler{ring: r, next: next}
}

// Recent returns the kept records, oldest first.
func (r *Ring) Recent() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Record(nil), r.recs[:r.next]...)
	}
	out := make([]Record, 0, len(r.recs))
	out = append(out, r.recs[r.next:]...)
	return append(out, r.recs[:r.next]...)
}

func (r *Ring) add(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[r.next] = rec
	r.next++
	if r.next == len(r.recs) {
		r.next, r.full = 0, true
	}
}

// handler is the slog.Handler of a Ring. prefix holds the attributes of
// WithAttrs, already written; group is the dotted prefix of WithGroup.
type handler struct {
	ring   *Ring
	next   slog.Handler
	prefix string
	group  string
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(h.prefix)
	rec.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return b.Len() < maxAttrsLength
	})

	h.ring.add(Record{Time: rec.Time, Level: rec.Level.String(), Message: rec.Message,
		Attrs: truncate(b.String(), maxAttrsLength)})
	return h.next.Handle(ctx, rec)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	return &handler{ring: h.ring, next: h.next.WithAttrs(attrs),
		prefix: truncate(b.String(), maxAttrsLength), group: h.group}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{ring: h.ring, next: h.next.WithGroup(name), prefix: h.prefix,
		group: h.group + name + "."}
}

// writeAttr writes " key=value" for a, or one such pair per member of a
// group, following slog's rules: empty attributes are dropped and a group
// without a key is inlined.
func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			group += a.Key + "."
		}
		for _, m := range a.Value.Group() {
			writeAttr(b, group, m)
		}
		return
	}

	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(quote(group + a.Key))
	b.WriteByte('=')
	switch a.Value.Kind() {
	case slog.KindTime:
		b.WriteString(a.Value.Time().Format(time.RFC3339Nano))
	default:
		b.WriteString(quote(a.Value.String()))
	}
}

// quote returns s, quoted when it is empty or has spaces, quotes, equals
// signs or characters that do not print.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if c == '=' || c == '"' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return strconv.Quote(s)
		}
	}
	return s
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
