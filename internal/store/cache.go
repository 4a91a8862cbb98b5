package store

import (
	"sync"
	"time"

	"github.com/byoda/byoda-go/internal/contract"
)

// Pages of records are the bulk of what queries read, and reading a row
// with every column of its class, converting the values and writing them
// as JSON costs far more than finding the row. So the store keeps the
// edges of the array rows that queries read, with their nodes as JSON, by
// rowid. A query whose rows are all kept finds them through the rowids
// alone, which the index of a filter holds; one that misses reads its rows
// in full and keeps them.
//
// Appends change no row that is kept. A write that changes or deletes rows
// clears what is kept of its class when it commits, and the commit and the
// clearing wait for the queries that use what is kept, which in turn wait
// for them: a query sees either the rows and the kept edges from before
// the commit, or both from after it. Deleting rows must clear too, as
// SQLite may give a rowid that was freed to a new row.

// DefaultCacheBytes bounds the memory of the edges a store keeps.
const DefaultCacheBytes = 16 << 20

// cachedEdgeOverhead is about how many bytes a kept edge takes besides its
// strings and JSON.
const cachedEdgeOverhead = 160

// edgeCache keeps edges of the array rows of a store by class and rowid.
type edgeCache struct {
	// barrier is held for reading by queries that use the cache, from
	// before their first statement until they have what they keep, and
	// for writing by commits that change or delete rows.
	barrier sync.RWMutex

	// mu guards what follows.
	mu      sync.Mutex
	limit   int // bytes; 0 keeps nothing
	size    int
	classes map[*contract.Class]map[int64]*cachedEdge
}

// cachedEdge is a kept edge; it does not change once kept.
type cachedEdge struct {
	cursor    string
	origin    Origin
	expires   time.Time
	json      []byte
	footprint int
}

func newEdgeCache(limit int) *edgeCache {
	return &edgeCache{limit: limit, classes: map[*contract.Class]map[int64]*cachedEdge{}}
}

// on reports whether the cache keeps anything.
func (c *edgeCache) on() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit > 0
}

// setLimit bounds the cache to limit bytes, 0 keeping nothing.
func (c *edgeCache) setLimit(limit int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = max(0, limit)
	c.shrink(c.limit)
}

// lookup returns the kept edges of the rows of cl, in order, or false if
// one of them is not kept.
func (c *edgeCache) lookup(cl *contract.Class, rowids []int64) ([]Edge, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.classes[cl]
	if len(kept) < len(rowids) {
		return nil, false
	}
	edges := make([]Edge, len(rowids))
	for i, id := range rowids {
		ce, ok := kept[id]
		if !ok {
			return nil, false
		}
		edges[i] = ce.edge()
	}
	return edges, true
}

func (ce *cachedEdge) edge() Edge {
	return Edge{Cursor: ce.cursor, Origin: ce.origin, Expires: ce.expires, JSON: ce.json}
}

// keep keeps the edges of the rows of cl, whose JSON it must be the only
// holder of.
func (c *edgeCache) keep(cl *contract.Class, rowids []int64, edges []Edge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range edges {
		ce := &cachedEdge{cursor: e.Cursor, origin: e.Origin, expires: e.Expires, json: e.JSON}
		ce.footprint = cachedEdgeOverhead + len(ce.json) + len(ce.cursor) +
			len(ce.origin.ID) + len(ce.origin.IDType) + len(ce.origin.ClassName)
		if ce.footprint > c.limit/4 {
			continue
		}
		if c.size+ce.footprint > c.limit {
			c.shrink(c.limit * 3 / 4)
		}
		kept := c.classes[cl]
		if kept == nil {
			kept = map[int64]*cachedEdge{}
			c.classes[cl] = kept
		}
		if _, ok := kept[rowids[i]]; !ok {
			kept[rowids[i]] = ce
			c.size += ce.footprint
		}
	}
}

// shrink drops edges until the cache holds at most size bytes. Which go
// is as random as the order of Go's maps.
func (c *edgeCache) shrink(size int) {
	for cl, kept := range c.classes {
		for id, ce := range kept {
			if c.size <= size {
				return
			}
			delete(kept, id)
			c.size -= ce.footprint
		}
		delete(c.classes, cl)
	}
}

// clear drops the edges of the classes named, or of every class when all
// is set.
func (c *edgeCache) clear(names map[string]bool, all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for cl, kept := range c.classes {
		if all || names[cl.Name] {
			for _, ce := range kept {
				c.size -= ce.footprint
			}
			delete(c.classes, cl)
		}
	}
}

// SetCacheBytes bounds the memory of the edges that s keeps for queries to
// n bytes; 0 keeps none. Open starts with DefaultCacheBytes.
func (s *Store) SetCacheBytes(n int) {
	s.cache.setLimit(n)
}
