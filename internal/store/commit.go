package store

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
)

// Writes share commits. A durable commit costs a sync of the WAL, which
// takes far longer than the statements of a write, so one writer goroutine
// runs a write together with those that wait for it or come while it runs,
// in one transaction, and syncs once for all of them. Each write runs in a
// savepoint of its own, so that one that fails leaves the others; each is
// answered only after the commit, so a write that returned is durable. A
// write that finds the writer idle starts at once: nothing waits for
// company.
const (
	// maxBatch bounds the writes that share a transaction.
	maxBatch = 256

	// maxBatchBytes bounds, roughly, the data that the writes of one
	// transaction write; the last write taken may go past it. It keeps
	// large records from making a transaction that holds up the writes
	// behind it and swells the WAL.
	maxBatchBytes = 1 << 20
)

// writeFunc is the work of a write, run in tx. It must run its statements
// with the ctx it is given, which carries the values of the context of the
// caller of write but not its cancellation: interrupting a statement would roll
// back the transaction that the write shares with others.
type writeFunc func(ctx context.Context, tx *sql.Tx) error

// writeOp is a write handed to the writer goroutine.
type writeOp struct {
	ctx  context.Context
	size int
	fn   writeFunc

	// changes names the class whose rows the write changes or deletes,
	// rather than only adds to; "*" stands for every class. The edges
	// kept of it are cleared as the write commits.
	changes string

	// err is the outcome of fn, set by the writer, which then sends the
	// outcome of the write on done. done is buffered, so that the writer
	// never waits for the caller.
	err  error
	done chan error
}

// writePanic carries a panic of a writeFunc back to the caller of write,
// which panics again with it, so that a faulty write fails its own request
// as it did when it ran there, rather than the process.
type writePanic struct {
	value any
	stack []byte
}

func (p *writePanic) Error() string {
	return fmt.Sprintf("panic in a data store write: %v\n\n%s", p.value, p.stack)
}

// write runs fn in a transaction of the writer and returns once fn's work
// is committed and durable, or with fn's error, and then nothing of fn's
// work remains. size is about how many bytes fn writes, 0 when few.
//
// ctx counts until the writer takes fn up; from then on fn runs to its end
// and write reports how it went.
func (s *Store) write(ctx context.Context, size int, fn writeFunc) error {
	return s.writeChanging(ctx, "", size, fn)
}

// writeChanging is write for a write that changes or deletes rows of the
// class named, or of every class for "*", which clears the edges kept of
// them; see edgeCache.
func (s *Store) writeChanging(ctx context.Context, class string, size int,
	fn writeFunc) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting to write: %w", err)
	}
	op := &writeOp{ctx: context.WithoutCancel(ctx), size: size, fn: fn, changes: class,
		done: make(chan error, 1)}
	select {
	case s.ops <- op:
	case <-ctx.Done():
		return fmt.Errorf("waiting to write: %w", ctx.Err())
	case <-s.closing:
		return ErrClosed
	}

	err := <-op.done
	if p, ok := err.(*writePanic); ok {
		panic(p)
	}
	return err
}

// startWriter starts the goroutine that runs the writes of s.
func (s *Store) startWriter() {
	s.ops = make(chan *writeOp)
	s.closing = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.runWriter()
}

// stopWriter stops the writer once it has run the writes it took up.
func (s *Store) stopWriter() {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.stopped
}

// runWriter runs batches of writes until stopWriter. The channel of writes
// is unbuffered, so a write that the writer took is in its batch, and one
// that it did not take can still give up.
func (s *Store) runWriter() {
	defer close(s.stopped)
	for {
		select {
		case op := <-s.ops:
			s.runBatch(op, s.ops)
		case <-s.closing:
			return
		}
	}
}

// runBatch runs first, and the writes that more gives while the batch runs,
// in one transaction, and answers each: with its own error if it failed,
// else with the error that kept the transaction from committing, if any.
func (s *Store) runBatch(first *writeOp, more <-chan *writeOp) {
	batch, err := s.runTx(first, more)
	for _, op := range batch {
		if op.err == nil {
			op.err = err
		}
		op.done <- op.err
	}
}

// runTx runs first and the writes that nextOp takes from more in one
// transaction, commits what succeeded, and returns the writes it ran. An
// error it returns undid the whole transaction.
func (s *Store) runTx(first *writeOp, more <-chan *writeOp) ([]*writeOp, error) {
	// The writer's own context: no caller's cancellation may undo the
	// writes of the others.
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return []*writeOp{first}, fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback()

	var batch []*writeOp
	done, size := 0, 0
	for op := first; op != nil; op = nextOp(more, len(batch), size) {
		batch = append(batch, op)
		size += op.size
		op.err, err = runOp(ctx, tx, op)
		if op.err != nil || err != nil {
			// What the write read of the counters may have been undone.
			clear(s.counterKeys)
		}
		if err != nil {
			return batch, err
		}
		if op.err == nil {
			done++
		}
	}
	if done == 0 {
		return batch, nil
	}
	if err := s.commit(tx, batch); err != nil {
		clear(s.counterKeys)
		return batch, fmt.Errorf("committing: %w", err)
	}
	return batch, nil
}

// commit commits tx, the transaction of batch. When a write of batch
// changes rows, the commit waits for the queries that use kept edges, and
// they for it, and the edges kept of the classes changed are cleared.
func (s *Store) commit(tx *sql.Tx, batch []*writeOp) error {
	var changed map[string]bool
	all := false
	for _, op := range batch {
		switch {
		case op.changes == "*":
			all = true
		case op.changes != "":
			if changed == nil {
				changed = map[string]bool{}
			}
			changed[op.changes] = true
		}
	}
	if changed == nil && !all {
		return tx.Commit()
	}

	s.cache.barrier.Lock()
	defer s.cache.barrier.Unlock()
	err := tx.Commit()
	s.cache.clear(changed, all)
	return err
}

// nextOp returns a write waiting in more, if a batch of n writes of size
// bytes may take one more; it never waits for one.
func nextOp(more <-chan *writeOp, n, size int) *writeOp {
	if n >= maxBatch || size >= maxBatchBytes {
		return nil
	}
	select {
	case op := <-more:
		return op
	default:
		return nil
	}
}

// runOp runs op in a savepoint of tx, which it rolls back if op fails, and
// returns op's error. The second error means that the transaction was lost,
// as SQLite does on some errors, such as a full disk: it stops the batch,
// lest the writes after op run outside the transaction.
func runOp(ctx context.Context, tx *sql.Tx, op *writeOp) (opErr, txErr error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT byoda_write"); err != nil {
		return nil, fmt.Errorf("opening savepoint: %w", err)
	}

	opErr = op.call(tx)
	if opErr != nil {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO byoda_write"); err != nil {
			return opErr, fmt.Errorf("rolling back a failed write: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE byoda_write"); err != nil {
		return opErr, fmt.Errorf("releasing savepoint: %w", err)
	}
	return opErr, nil
}

// call runs the work of op, turning a panic into a writePanic.
func (op *writeOp) call(tx *sql.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &writePanic{value: v, stack: debug.Stack()}
		}
	}()
	return op.fn(op.ctx, tx)
}
