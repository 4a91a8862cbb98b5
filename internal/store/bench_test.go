package store

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var benchRows = flag.Int("store.benchrows", 0,
	"also benchmark queries over a table of this many rows, such as 1000000")

// reportOps reports the operations per second of a benchmark, and the CPU
// time per operation of the process since cpu, a cpuTime taken when the
// timer started.
func reportOps(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("reading the CPU time: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppend appends assets, each in its own durable transaction.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, addressBook(b))
	records := make([]Record, 1000)
	for i := range records {
		records[i] = asset(i, time.Now())
	}

	cpu := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, "network_assets", records[i%len(records)], owner); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b, cpu)
}

// appendWriters is how many goroutines BenchmarkAppendParallel8 appends
// from, as many as the Data API's target has client connections.
const appendWriters = 8

// BenchmarkAppendParallel8 appends assets from 8 goroutines at once, however
// many CPUs there are, each append durable when it returns.
func BenchmarkAppendParallel8(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, addressBook(b))
	records := make([]Record, 1000)
	for i := range records {
		records[i] = asset(i, time.Now())
	}

	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((appendWriters + procs - 1) / procs)
	cpu := cpuTime(b)
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := records[next.Add(1)%int64(len(records))]
			if _, err := s.Append(ctx, "network_assets", r, owner); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b, cpu)
}

// BenchmarkQuery50Filtered reads pages of 50 assets of one publisher, a
// tenth of the rows, through the publisher's index.
func BenchmarkQuery50Filtered(b *testing.B) {
	sizes := []int{1_000, 100_000}
	if *benchRows > 0 {
		sizes = append(sizes, *benchRows)
	}
	for _, rows := range sizes {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			// b.Loop runs this function once, so the setup is done once.
			s := openStore(b, addressBook(b))
			fillAssets(b, s, rows)
			f := filter(b, s, "network_assets", `{"publisher":{"eq":"publisher-3"}}`)
			ctx := context.Background()
			after := ""
			cpu := cpuTime(b)
			for b.Loop() {
				p, err := s.Query(ctx, "network_assets",
					QueryOptions{Filter: f, First: 50, After: after})
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Edges) == 0 {
					b.Fatal("no edges")
				}
				after = p.EndCursor
				if !p.HasNextPage {
					after = ""
				}
			}
			reportOps(b, cpu)
		})
	}
}

// fillAssets appends n assets in one transaction, which is much faster
// than n durable appends.
func fillAssets(b *testing.B, s *Store, n int) {
	b.Helper()
	ctx := context.Background()
	cl, _ := s.Contract().Class("network_assets")
	err := s.write(ctx, 0, func(ctx context.Context, tx *sql.Tx) error {
		for i := range n {
			r := asset(i, time.Now())
			r["publisher"] = fmt.Sprintf("publisher-%d", i%10)
			vals, err := normalize(cl.Items, r)
			if err != nil {
				return err
			}
			rw, err := s.newRow(cl, vals, owner)
			if err != nil {
				return err
			}
			if _, err := s.appendRow(ctx, tx, cl.Name, rw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("filling %d assets: %v", n, err)
	}
}
