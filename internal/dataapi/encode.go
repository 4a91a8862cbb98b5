package dataapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/store"
)

// Query responses are the bulk of what the Data API writes: pages of up to
// a thousand records. They are written by hand, byte for byte as
// encoding/json writes them, with a final newline: local records come
// from the store already in JSON, and records of other pods go through
// the store's encoder, which is much faster than encoding/json.

// maxPooledResponse is the largest response buffer kept for reuse.
const maxPooledResponse = 1 << 20

// responseBuffers keeps the buffers of query responses for later ones.
var responseBuffers = sync.Pool{New: func() any { return new([]byte) }}

// writeQueryResponse writes resp, a page of records of the class rec, as
// api.WriteJSON would.
func writeQueryResponse(w http.ResponseWriter, rec *contract.Class, resp *queryResponse) {
	bp := responseBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledResponse {
			responseBuffers.Put(bp)
		}
	}()

	b := (*bp)[:0]
	if n := responseSize(resp); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b, err := appendQueryResponse(b, rec, resp)
	*bp = b
	if err != nil {
		// Only encoding/json knows how to fail the same way.
		withNodes(resp)
		api.WriteJSON(w, http.StatusOK, resp)
		return
	}
	// With its length known, the answer goes out whole rather than in
	// chunks, in fewer TLS records and writes.
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// responseSize guesses how many bytes the JSON of resp takes, so that its
// buffer grows rarely.
func responseSize(resp *queryResponse) int {
	return 256 + 1024*len(resp.Edges)
}

// appendQueryResponse appends the JSON of resp and a newline to b.
func appendQueryResponse(b []byte, rec *contract.Class, resp *queryResponse) ([]byte, error) {
	var err error
	b = append(b, `{"total_count":`...)
	b = strconv.AppendInt(b, int64(resp.TotalCount), 10)
	b = append(b, `,"edges":`...)
	if resp.Edges == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range resp.Edges {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendEdge(b, rec, &resp.Edges[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}

	b = append(b, `,"page_info":{"has_next_page":`...)
	b = strconv.AppendBool(b, resp.PageInfo.HasNextPage)
	b = append(b, `,"end_cursor":`...)
	b = appendStringPtr(b, resp.PageInfo.EndCursor)
	b = append(b, '}')
	if len(resp.Unanswered) > 0 {
		b = append(b, `,"unanswered_peers":[`...)
		for i, id := range resp.Unanswered {
			if i > 0 {
				b = append(b, ',')
			}
			b = store.AppendJSONString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...), nil
}

func appendEdge(b []byte, rec *contract.Class, e *queryEdge) ([]byte, error) {
	b = append(b, `{"cursor":`...)
	b = store.AppendJSONString(b, e.Cursor)
	b = append(b, `,"origin":`...)
	b = store.AppendJSONString(b, e.Origin)
	b = append(b, `,"node":`...)
	var err error
	if e.json != nil {
		b = append(b, e.json...)
	} else {
		b, err = store.AppendJSON(b, rec, e.Node)
	}
	if err != nil {
		return b, err
	}
	b = append(b, `,"expires_at":`...)
	b = appendStringPtr(b, e.ExpiresAt)
	return append(b, '}'), nil
}

// withNodes gives the edges of resp that hold JSON their nodes, for
// encoding/json. Numbers stay as they were written.
func withNodes(resp *queryResponse) {
	for i := range resp.Edges {
		e := &resp.Edges[i]
		if e.json == nil {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(e.json))
		dec.UseNumber()
		if dec.Decode(&e.Node) != nil {
			e.Node = nil // not reached: the store writes JSON
		}
		e.json = nil
	}
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return store.AppendJSONString(b, *s)
}
