package dataapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/store"
)

// TestDatalogBatches checks that queued datalog entries are written in
// batches, and that a bad entry in a batch loses no other.
func TestDatalogBatches(t *testing.T) {
	ta := newTestAPI(t)
	count := func() int64 {
		t.Helper()
		n, err := ta.api.Store.Counter(context.Background(), "datalogs", store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	entry := func(n int) store.Record {
		return store.Record{"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano),
			"remote_addr": "127.0.0.1", "operation": "query",
			"object": fmt.Sprintf("class-%d", n)}
	}
	ta.api.appendDatalogs([]store.Record{entry(1), entry(2)})
	if n := count(); n != 2 {
		t.Errorf("after a batch of 2, %d entries", n)
	}
	batch := []store.Record{entry(3), entry(4), entry(5)}
	batch[1]["created_timestamp"] = "yesterday"
	ta.api.appendDatalogs(batch)
	if n := count(); n != 4 {
		t.Errorf("after a batch of 3 with a bad entry, %d entries; want 4", n)
	}

	const queries = 300
	for range queries {
		ta.ok("network_assets", "query", nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ta.api.WaitDatalogs(ctx); err != nil {
		t.Fatal(err)
	}
	if n, dropped := count(), ta.api.DroppedDatalogs(); n+dropped != 4+queries {
		t.Errorf("after %d queries, %d entries and %d dropped; want %d in all", queries, n,
			dropped, 4+queries)
	}
}
