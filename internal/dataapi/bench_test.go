package dataapi_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/dataapi"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/store"
)

var bigRows = flag.Bool("dataapi.bigrows", false,
	"also measure query latency over 1,000,000 rows, which take minutes to load")

// benchNetwork is the network of the benchmarks' certificates.
const benchNetwork = "byoda.test"

// benchPublishers is how many publishers the loaded assets share; a filter
// on one selects this fraction of the rows.
const benchPublishers = 10

// benchPod is a membership's Data API behind HTTPS on loopback, which
// requires a member certificate of the client and serves its owner.
type benchPod struct {
	srv   *httptest.Server
	store *store.Store
	base  string // URL of the membership's Data API

	// opened counts the connections the server accepted.
	opened atomic.Int64

	roots      *x509.CertPool
	serverName string
	clientCert tls.Certificate
}

// newBenchPod starts a pod for the address book with a network of its own:
// a root CA, an account certificate for the server and a member
// certificate, through the members CA, for the client.
func newBenchPod(b *testing.B) *benchPod {
	b.Helper()
	owner := uuid.NewString()
	a, st := openAPI(b, readAddressBook(b), owner)
	sid := a.ServiceID

	root, err := pki.NewRootCA(benchNetwork, benchKey(b, pki.RootCA))
	if err != nil {
		b.Fatal(err)
	}
	accounts := benchSubCA(b, root, pki.NewName(pki.AccountsCA, benchNetwork, 0))
	services := benchSubCA(b, root, pki.NewName(pki.ServicesCA, benchNetwork, 0))
	service := benchSubCA(b, services, pki.NewName(pki.ServiceCA, benchNetwork, sid))
	members := benchSubCA(b, service, pki.NewName(pki.MembersCA, benchNetwork, sid))

	server := pki.AccountName(benchNetwork, uuid.NewString())
	p := &benchPod{store: st, roots: x509.NewCertPool(), serverName: server.String(),
		clientCert: benchLeaf(b, members, pki.MemberName(benchNetwork, owner, sid))}
	p.roots.AddCert(root.Cert)

	verifier := &pki.Verifier{Network: benchNetwork, Root: root.Cert}
	want := pki.Want{Types: []pki.IDType{pki.Member}, ServiceID: sid, ServiceCA: service.Cert,
		Usage: x509.ExtKeyUsageClientAuth}
	p.srv = httptest.NewUnstartedServer(nil)
	p.srv.Config = api.NewServer(benchHandler(a), nil)
	p.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.opened.Add(1)
		}
	}
	p.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{benchLeaf(b, accounts, server)},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS13,
		// The chain is checked at the handshake, once per connection.
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verifier.Verify(cs.PeerCertificates, want)
			return err
		},
	}
	p.srv.StartTLS()
	b.Cleanup(p.srv.Close)
	p.base = fmt.Sprintf("%s/api/v1/data/%d/", p.srv.URL, sid)
	return p
}

// benchHandler serves the Data API to the member whose certificate the TLS
// connection carries, and answers /ping for opening connections.
func benchHandler(a *dataapi.API) http.Handler {
	logger := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("POST /api/v1/data/{service_id}/{class}/{action}", api.Handle(logger,
		func(w http.ResponseWriter, r *http.Request) error {
			who, err := certRequester(r)
			if err != nil {
				return err
			}
			return a.Serve(w, r, who, r.PathValue("class"), r.PathValue("action"))
		}))
	return mux
}

// certRequester maps the client certificate, verified at the handshake, to
// the member it names.
func certRequester(r *http.Request) (dataapi.Requester, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return dataapi.Requester{}, api.Errorf(http.StatusUnauthorized,
			"a client certificate is required")
	}
	name, err := pki.ParseName(r.TLS.PeerCertificates[0].Subject.CommonName, benchNetwork)
	if err != nil || name.Type != pki.Member {
		return dataapi.Requester{}, api.Errorf(http.StatusForbidden,
			"only member certificates may call the Data API")
	}
	addr, err := api.ClientAddr(r)
	if err != nil {
		return dataapi.Requester{}, err
	}
	return dataapi.Requester{IDType: dataapi.IDTypeMember, ID: name.ID,
		ServiceID: name.ServiceID, Addr: addr}, nil
}

func benchKey(b *testing.B, t pki.IDType) crypto.Signer {
	b.Helper()
	key, err := pki.GenerateKey(t)
	if err != nil {
		b.Fatal(err)
	}
	return key
}

// benchSubCA has parent issue the CA called name.
func benchSubCA(b *testing.B, parent *pki.CA, name pki.Name) *pki.CA {
	b.Helper()
	cert, key, err := parent.Issue(name)
	if err != nil {
		b.Fatal(err)
	}
	return &pki.CA{Name: name, Cert: cert, Chain: parent.IssuerChain(), Key: key}
}

// benchLeaf has ca issue the TLS certificate of name, with its chain.
func benchLeaf(b *testing.B, ca *pki.CA, name pki.Name) tls.Certificate {
	b.Helper()
	cert, key, err := ca.Issue(name)
	if err != nil {
		b.Fatal(err)
	}
	chain := [][]byte{cert.Raw}
	for _, c := range ca.IssuerChain() {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}
}

// client returns a client with a transport of its own, so that its
// connection is its own, which has already made the TLS handshake.
func (p *benchPod) client(b *testing.B) *http.Client {
	b.Helper()
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.roots, ServerName: p.serverName,
			Certificates: []tls.Certificate{p.clientCert}, MinVersion: tls.VersionTLS13},
		MaxIdleConnsPerHost: 1,
	}}
	b.Cleanup(c.CloseIdleConnections)

	resp, err := c.Get(p.srv.URL + "/ping")
	if err != nil {
		b.Fatalf("opening a connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("ping answered %s", resp.Status)
	}
	return c
}

// post sends body to action on class and returns the body of a 200 answer.
func (p *benchPod) post(c *http.Client, class, action string, body []byte) ([]byte, error) {
	resp, err := c.Post(p.base+class+"/"+action, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s %s", class, action, resp.Status, data)
	}
	return data, nil
}

// benchAsset returns asset n of a network_assets load.
func benchAsset(n int) store.Record {
	return store.Record{
		"created_timestamp": time.Now().UTC(),
		"asset_id":          uuid.NewString(),
		"asset_type":        "post",
		"title":             fmt.Sprintf("asset %d", n),
		"publisher":         fmt.Sprintf("publisher-%d", n%benchPublishers),
		"keywords":          []any{"just", "testing"},
	}
}

// loaders is how many goroutines load rows at once, so that the store can
// commit their appends together.
const loaders = 8

// load appends n assets straight to the store, through durable appends as
// the Data API makes them, from a few goroutines at once.
func (p *benchPod) load(b *testing.B, n int) {
	b.Helper()
	owner := store.Origin{ID: uuid.NewString(), IDType: dataapi.IDTypeMember}
	err := spread(loaders, n, func(_, i int) error {
		_, err := p.store.Append(b.Context(), "network_assets", benchAsset(i), owner)
		return err
	})
	if err != nil {
		b.Fatalf("loading %d assets: %v", n, err)
	}
}

// spread calls fn(w, i) for every i below n from workers goroutines at
// once, w being the goroutine's number, and returns the first error; a
// goroutine stops at its first error.
func spread(workers, n int, fn func(w, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(w, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// runConns runs b.N calls of op over conns connections at once, one client
// per connection, and reports the calls per second. The connections make
// their handshakes before the timer starts and must last the whole run.
// It spreads the calls itself rather than through b.RunParallel, whose
// goroutines come in multiples of GOMAXPROCS, so that one connection means
// one.
func runConns(b *testing.B, p *benchPod, conns int, op func(c *http.Client, i int) error) {
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = p.client(b)
	}
	opened := p.opened.Load()

	b.ResetTimer()
	err := spread(conns, b.N, func(w, i int) error { return op(clients[w], i) })
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if n := p.opened.Load() - opened; n != 0 {
		b.Fatalf("%d connections were opened while timed; the %d opened before must "+
			"last the run", n, conns)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// appendBodies returns n append requests for network_assets, which the
// benchmarks send in turn rather than build while timed.
func appendBodies(b *testing.B, n int) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		var err error
		bodies[i], err = json.Marshal(map[string]any{"data": benchAsset(i)})
		if err != nil {
			b.Fatal(err)
		}
	}
	return bodies
}

func benchmarkAppend(b *testing.B, conns int) {
	p := newBenchPod(b)
	bodies := appendBodies(b, 1024)
	runConns(b, p, conns, func(c *http.Client, i int) error {
		data, err := p.post(c, "network_assets", "append", bodies[i%len(bodies)])
		if err == nil && string(bytes.TrimSpace(data)) != "1" {
			err = fmt.Errorf("append answered %s, not 1", data)
		}
		return err
	})
}

// BenchmarkAppend1 appends assets over one connection; every append is a
// durable transaction, and so is its datalog entry.
func BenchmarkAppend1(b *testing.B) { benchmarkAppend(b, 1) }

// BenchmarkAppend8 appends assets over eight connections at once.
func BenchmarkAppend8(b *testing.B) { benchmarkAppend(b, 8) }

// filteredQuery asks for the first 50 assets of one publisher.
var filteredQuery = []byte(`{"filter":{"publisher":{"eq":"publisher-3"}},"first":50}`)

// queryPage is the part of a query's answer the benchmarks check.
type queryPage struct {
	TotalCount int `json:"total_count"`
	PageInfo   struct {
		HasNextPage bool    `json:"has_next_page"`
		EndCursor   *string `json:"end_cursor"`
	} `json:"page_info"`
}

func benchmarkQuery50Filtered(b *testing.B, conns int) {
	p := newBenchPod(b)
	p.load(b, 100*benchPublishers)
	runConns(b, p, conns, func(c *http.Client, _ int) error {
		data, err := p.post(c, "network_assets", "query", filteredQuery)
		if err != nil {
			return err
		}
		var page queryPage
		if err := json.Unmarshal(data, &page); err != nil || page.TotalCount != 50 {
			return fmt.Errorf("the query answered %.200s, not 50 assets", data)
		}
		return nil
	})
}

// BenchmarkQuery50Filtered1 reads the first 50 of the 100 assets of one
// publisher over one connection; each query also writes a datalog entry.
func BenchmarkQuery50Filtered1(b *testing.B) { benchmarkQuery50Filtered(b, 1) }

// BenchmarkQuery50Filtered8 reads the same page over eight connections.
func BenchmarkQuery50Filtered8(b *testing.B) { benchmarkQuery50Filtered(b, 8) }

// BenchmarkQueryLatency pages through the assets of one publisher, 50 at a
// time, over tables of growing size, and reports the median and 99th
// percentile latency of a query.
func BenchmarkQueryLatency(b *testing.B) {
	sizes := []int{1_000, 100_000}
	if *bigRows {
		sizes = append(sizes, 1_000_000)
	}
	for _, rows := range sizes {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			// With b.Loop the function runs once, and so does the load.
			p := newBenchPod(b)
			p.load(b, rows)
			c := p.client(b)

			var lat []time.Duration
			after := ""
			for b.Loop() {
				start := time.Now()
				var err error
				if after, err = p.nextPage(c, after); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			reportLatency(b, lat)
		})
	}
}

// nextPage queries the page of one publisher's assets after the cursor and
// returns the cursor of the page to read next: "" after the last.
func (p *benchPod) nextPage(c *http.Client, after string) (string, error) {
	req := map[string]any{"filter": map[string]any{"publisher": map[string]any{
		"eq": "publisher-3"}}, "first": 50}
	if after != "" {
		req["after"] = after
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}

	data, err := p.post(c, "network_assets", "query", body)
	if err != nil {
		return "", err
	}
	var page queryPage
	if err := json.Unmarshal(data, &page); err != nil || page.TotalCount == 0 {
		return "", fmt.Errorf("the query answered %.200s, not a page of assets", data)
	}
	if !page.PageInfo.HasNextPage || page.PageInfo.EndCursor == nil {
		return "", nil
	}
	return *page.PageInfo.EndCursor, nil
}

// reportLatency reports the median and 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
