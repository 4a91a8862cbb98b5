package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// errNotTaken marks, in the answer of runTogether, a write that the batch
// did not take.
var errNotTaken = errors.New("not taken by the batch")

// testOp returns a write of fn, as write makes it.
func testOp(fn writeFunc) *writeOp {
	return &writeOp{ctx: context.Background(), fn: fn, done: make(chan error, 1)}
}

// runTogether runs ops as one batch of the writer of s, as if they had come
// while the first ran, and returns what each was answered.
func runTogether(s *Store, ops ...*writeOp) []error {
	more := make(chan *writeOp, len(ops))
	for _, op := range ops[1:] {
		more <- op
	}
	s.runBatch(ops[0], more)

	errs := make([]error, len(ops))
	for i, op := range ops {
		select {
		case errs[i] = <-op.done:
		default:
			errs[i] = errNotTaken
		}
	}
	return errs
}

// inserter returns a write that appends the n-th asset to network_assets
// and keeps its cursor in *cursor, and then runs then, if not nil.
func inserter(tb testing.TB, s *Store, n int, cursor *string, then writeFunc) *writeOp {
	tb.Helper()
	cl := cl(tb, s, "network_assets")
	vals, err := normalize(cl.Items, asset(n, time.Now()))
	if err != nil {
		tb.Fatal(err)
	}
	rw, err := s.newRow(cl, vals, owner)
	if err != nil {
		tb.Fatal(err)
	}
	return testOp(func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if *cursor, err = s.appendRow(ctx, tx, cl.Name, rw); err != nil || then == nil {
			return err
		}
		return then(ctx, tx)
	})
}

// storedCursors returns the cursors of the rows of network_assets.
func storedCursors(tb testing.TB, s *Store) map[string]bool {
	tb.Helper()
	rows, err := s.r.Query(`SELECT "cursor" FROM "_network_assets"`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			tb.Fatal(err)
		}
		out[c] = true
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestBatchFailures runs batches in which one write fails, in the ways a
// write can fail, after it wrote a row.
func TestBatchFailures(t *testing.T) {
	errInjected := errors.New("injected failure")
	tests := []struct {
		name string
		then writeFunc // run by the middle write after its insert

		// wantErr is what the middle write must fail with.
		wantErr func(error) bool

		// lost says that the failure loses the transaction: the write
		// before fails too, and the one after is left for the next batch.
		lost bool
	}{{
		name:    "error",
		then:    func(context.Context, *sql.Tx) error { return errInjected },
		wantErr: func(err error) bool { return errors.Is(err, errInjected) },
	}, {
		name: "constraint",
		then: func(ctx context.Context, tx *sql.Tx) error {
			// A second row with the cursor of the first.
			_, err := tx.ExecContext(ctx, `INSERT INTO "_network_assets" ("cursor")
				SELECT "cursor" FROM "_network_assets" ORDER BY rowid DESC LIMIT 1`)
			return err
		},
		wantErr: func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
		},
	}, {
		name: "panic",
		then: func(context.Context, *sql.Tx) error { panic("injected panic") },
		wantErr: func(err error) bool {
			var p *writePanic
			return errors.As(err, &p) && p.value == "injected panic"
		},
	}, {
		name: "transaction lost",
		then: func(ctx context.Context, tx *sql.Tx) error {
			// As SQLite does on a full disk or an I/O error.
			if _, err := tx.ExecContext(ctx, "ROLLBACK"); err != nil {
				return err
			}
			return errInjected
		},
		wantErr: func(err error) bool { return errors.Is(err, errInjected) },
		lost:    true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, addressBook(t))
			var before, failed, after string
			errs := runTogether(s, inserter(t, s, 0, &before, nil),
				inserter(t, s, 1, &failed, tt.then), inserter(t, s, 2, &after, nil))

			if !tt.wantErr(errs[1]) {
				t.Errorf("the failing write got %v", errs[1])
			}
			if tt.lost {
				if errs[0] == nil || errs[2] != errNotTaken {
					t.Fatalf("the writes around it got %v and %v; want an error and %v",
						errs[0], errs[2], errNotTaken)
				}
				// The write left out runs in the next batch.
				if err := runTogether(s, inserter(t, s, 2, &after, nil))[0]; err != nil {
					t.Fatalf("the next batch: %v", err)
				}
			} else if errs[0] != nil || errs[2] != nil {
				t.Fatalf("the writes around it got %v and %v", errs[0], errs[2])
			}

			want := map[string]bool{after: true}
			if !tt.lost {
				want[before] = true
			}
			if stored := storedCursors(t, s); !maps.Equal(stored, want) {
				t.Errorf("stored %v; want %v", stored, want)
			}
		})
	}
}

// TestBatchAllFail checks that a batch in which nothing succeeds leaves
// the writer able to go on.
func TestBatchAllFail(t *testing.T) {
	s := openStore(t, addressBook(t))
	fail := func(context.Context, *sql.Tx) error { return errors.New("no") }
	for i, err := range runTogether(s, testOp(fail), testOp(fail)) {
		if err == nil {
			t.Errorf("write %d succeeded", i)
		}
	}
	appendAssets(t, s, "network_assets", 1)
}

func TestWritePanicReachesCaller(t *testing.T) {
	s := openStore(t, addressBook(t))
	func() {
		defer func() {
			if _, ok := recover().(*writePanic); !ok {
				t.Error("write did not panic with the panic of its function")
			}
		}()
		s.write(context.Background(), 0, func(context.Context, *sql.Tx) error {
			panic("injected panic")
		})
	}()
	appendAssets(t, s, "network_assets", 1)
}

func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t))
	const writers, each = 8, 40

	edges := make([][]Edge, writers)
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				e, err := s.Append(ctx, "network_assets", asset(w*each+i, time.Now()), owner)
				if err != nil {
					errs <- err
					return
				}
				edges[w] = append(edges[w], e)
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	acked := map[string]bool{}
	for _, e := range slices.Concat(edges...) {
		if acked[e.Cursor] {
			t.Errorf("cursor %s given twice", e.Cursor)
		}
		acked[e.Cursor] = true
	}
	stored := storedCursors(t, s)
	if len(acked) != writers*each || len(stored) != len(acked) {
		t.Fatalf("%d cursors acknowledged, %d stored; want %d", len(acked), len(stored),
			writers*each)
	}
	for c := range acked {
		if !stored[c] {
			t.Errorf("acknowledged cursor %s is not stored", c)
		}
	}
}

// TestCountersUnderConcurrency appends and deletes from 8 goroutines at
// once and checks every counter against the rows.
func TestCountersUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, addressBook(t, withGaap))
	const writers, each = 8, 30

	filters := []string{`{}`, `{"b":{"eq":0}}`, `{"b":{"eq":1}}`}
	for w := range writers {
		filters = append(filters, fmt.Sprintf(`{"a":{"eq":%d}}`, w),
			fmt.Sprintf(`{"a":{"eq":%d},"b":{"eq":1}}`, w))
	}
	// Counters that exist before the writes, so that the writes keep them.
	for _, raw := range filters {
		if n, err := s.Counter(ctx, "gaap", filter(t, s, "gaap", raw)); err != nil || n != 0 {
			t.Fatalf("Counter(%s) = %d, %v", raw, n, err)
		}
	}

	errs := make(chan error, writers)
	for w := range writers {
		go func() { errs <- appendAndDelete(ctx, s, w, each) }()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	for _, raw := range filters {
		f := filter(t, s, "gaap", raw)
		rows := int64(len(queryAll(t, s, "gaap", f)))
		got, err := s.Counter(ctx, "gaap", f)
		if err != nil || got != rows {
			t.Errorf("Counter(%s) = %d, %v; %d rows match", raw, got, err, rows)
		}
	}
	if rows := len(queryAll(t, s, "gaap", Filter{})); rows != writers*each*2/3 {
		t.Errorf("%d rows, want %d", rows, writers*each*2/3)
	}
}

// appendAndDelete appends n records with a = w to gaap and deletes every
// third one again.
func appendAndDelete(ctx context.Context, s *Store, w, n int) error {
	cl, err := s.class("gaap", 0)
	if err != nil {
		return err
	}
	for i := range n {
		r := Record{"a": w, "b": i % 2, "c": i}
		if _, err := s.Append(ctx, "gaap", r, owner); err != nil {
			return err
		}
		if i%3 != 0 {
			continue
		}
		f, err := ParseFilter(cl, []byte(fmt.Sprintf(`{"a":{"eq":%d},"c":{"eq":%d}}`, w, i)))
		if err != nil {
			return err
		}
		if d, err := s.Delete(ctx, "gaap", f); err != nil || d != 1 {
			return fmt.Errorf("deleting record %d of writer %d: %d, %w", i, w, d, err)
		}
	}
	return nil
}

// hold starts a write that appends an asset and then waits for release, so
// that the writer is busy until then. It returns once the write runs; the
// write's error comes on the returned channel.
func hold(t *testing.T, s *Store, release <-chan struct{}) (<-chan error, *string) {
	t.Helper()
	var cursor string
	running := make(chan struct{})
	op := inserter(t, s, 0, &cursor, func(context.Context, *sql.Tx) error {
		close(running)
		<-release
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- s.write(context.Background(), 0, op.fn) }()
	<-running
	return done, &cursor
}

func TestCancelWhileWaiting(t *testing.T) {
	s := openStore(t, addressBook(t))
	release := make(chan struct{})
	held, _ := hold(t, s, release)

	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	waiting := make(chan error, 1)
	go func() {
		waiting <- s.write(ctx, 0, func(context.Context, *sql.Tx) error {
			ran.Store(true)
			return nil
		})
	}()
	cancel()
	// The writer is busy, so the write can only end by its context.
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled write got %v", err)
	}

	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// Writes run in order, so the cancelled one would have run by now.
	appendAssets(t, s, "network_assets", 1)
	if ran.Load() {
		t.Error("a write cancelled while it waited ran")
	}
}

// TestCancelWhileRunning cancels the context of a write while it runs,
// which must not stop it.
func TestCancelWhileRunning(t *testing.T) {
	s := openStore(t, addressBook(t))
	ctx, cancel := context.WithCancel(context.Background())
	var first, second string
	next := inserter(t, s, 1, &second, nil)
	op := inserter(t, s, 0, &first, func(ctx context.Context, tx *sql.Tx) error {
		cancel()
		return next.fn(ctx, tx)
	})
	if err := s.write(ctx, 0, op.fn); err != nil {
		t.Fatalf("a write whose context was cancelled while it ran: %v", err)
	}
	if stored := storedCursors(t, s); len(stored) != 2 || !stored[first] || !stored[second] {
		t.Errorf("stored %v; want %s and %s", stored, first, second)
	}
}

// TestCloseFinishesWrites closes the store while the writer runs a write,
// which must still be durable, and checks that later writes fail.
func TestCloseFinishesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(context.Background(), path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	held, cursor := hold(t, s, release)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-s.closing
	_, err = s.Append(context.Background(), "network_assets", asset(1, time.Now()), owner)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Append while closing: %v, want ErrClosed", err)
	}

	close(release)
	if err := <-held; err != nil {
		t.Errorf("the write that ran while closing: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if stored := storedCursors(t, s); len(stored) != 1 || !stored[*cursor] {
		t.Errorf("stored %v; want %s", stored, *cursor)
	}
}

// TestCloseUnderLoad closes the store while 8 goroutines append: every
// append either returned and is stored, or failed with ErrClosed.
func TestCloseUnderLoad(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(ctx, path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each, closeAfter = 8, 200, 100

	var mu sync.Mutex
	var acked []string
	appended := make(chan struct{}, writers*each)
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				e, err := s.Append(ctx, "network_assets", asset(w*each+i, time.Now()), owner)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked = append(acked, e.Cursor)
				mu.Unlock()
				appended <- struct{}{}
			}
			errs <- nil
		}()
	}
	for range closeAfter {
		<-appended
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range writers {
		if err := <-errs; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("an append failed with %v, want ErrClosed", err)
		}
	}

	s, err = Open(ctx, path, addressBook(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := storedCursors(t, s)
	mu.Lock()
	defer mu.Unlock()
	for _, c := range acked {
		if !stored[c] {
			t.Errorf("acknowledged cursor %s is not stored", c)
		}
	}
}
