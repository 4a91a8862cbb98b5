package dataapi_test

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/dataapi"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/store"
)

// The throughput benchmarks report, besides the calls per second, the CPU
// time the benchmark's process spent per call (cpu-µs/op). With the
// clients in the benchmark's process, the default, that is the server's
// and the clients' time together; with -dataapi.client=process the clients
// run in a process of their own, started from the test binary, and
// cpu-µs/op is the server's alone, with the clients' reported as
// client-cpu-µs/op. On a machine of few cores, the server's CPU time per
// call bounds what it can serve when it has the machine to itself.
var (
	bigRows = flag.Bool("dataapi.bigrows", false,
		"also measure query latency over 1,000,000 rows, which take minutes to load")
	clientMode = flag.String("dataapi.client", "inproc",
		"where the clients of the throughput benchmarks run: inproc or process")
	keepEdges = flag.Bool("dataapi.keep", true,
		"let the store keep the records that queries read as JSON; with false, "+
			"every query reads and encodes its records")
)

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
	rootCert   *x509.Certificate
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
	if !*keepEdges {
		st.SetCacheBytes(0)
	}

	root, err := pki.NewRootCA(benchNetwork, benchKey(b, pki.RootCA))
	if err != nil {
		b.Fatal(err)
	}
	accounts := benchSubCA(b, root, pki.NewName(pki.AccountsCA, benchNetwork, 0))
	services := benchSubCA(b, root, pki.NewName(pki.ServicesCA, benchNetwork, 0))
	service := benchSubCA(b, services, pki.NewName(pki.ServiceCA, benchNetwork, sid))
	members := benchSubCA(b, service, pki.NewName(pki.MembersCA, benchNetwork, sid))

	server := pki.AccountName(benchNetwork, uuid.NewString())
	p := &benchPod{store: st, roots: x509.NewCertPool(), rootCert: root.Cert,
		serverName: server.String(),
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

// client returns a caller of the pod; see caller.
func (p *benchPod) client(b *testing.B) caller {
	b.Helper()
	c, err := dialCaller(p.base, p.roots, p.serverName, p.clientCert)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.close)
	return c
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

// loadPart is how many assets load appends in one transaction.
const loadPart = 10_000

// load appends n assets straight to the store, loadPart in a transaction,
// which is much faster than the durable appends of the Data API and leaves
// the same rows.
func (p *benchPod) load(b *testing.B, n int) {
	b.Helper()
	owner := store.Origin{ID: uuid.NewString(), IDType: dataapi.IDTypeMember}
	part := make([]store.Record, 0, loadPart)
	for i := 0; i < n; i += loadPart {
		part = part[:0]
		for j := i; j < min(n, i+loadPart); j++ {
			part = append(part, benchAsset(j))
		}
		if _, err := p.store.AppendMany(b.Context(), "network_assets", part, owner); err != nil {
			b.Fatalf("loading %d assets: %v", n, err)
		}
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

// callLoad is the work of a throughput benchmark: n calls over conns
// connections at once, posting Bodies in turn to URL, each answered with
// 200 and a body that starts with Want. A client process reads it as JSON.
type callLoad struct {
	URL    string   `json:"url"`
	Bodies [][]byte `json:"bodies"`
	Want   string   `json:"want"`
	Conns  int      `json:"conns"`
	N      int      `json:"n"`

	// What a client process needs to connect: the root certificate and
	// the client's certificate chain and key, as PEM, and the name of the
	// server.
	ServerName string `json:"server_name"`
	Roots      []byte `json:"roots"`
	Cert       []byte `json:"cert"`
	Key        []byte `json:"key"`
}

// call makes call i with c, reading the answer into buf.
func (l *callLoad) call(c caller, buf *bytes.Buffer, i int) error {
	data, err := c.post(buf, l.URL, l.Bodies[i%len(l.Bodies)])
	if err == nil && !bytes.HasPrefix(data, []byte(l.Want)) {
		err = fmt.Errorf("the call answered %.200s, not %s...", data, l.Want)
	}
	return err
}

// run makes the b.N calls of l over conns connections and reports the
// calls per second and the CPU time per call. The connections make their
// handshakes before the timer starts and must last the whole run.
func (p *benchPod) run(b *testing.B, conns int, l *callLoad) {
	l.Conns, l.N = conns, b.N
	switch *clientMode {
	case "inproc":
		p.runInProcess(b, l)
	case "process":
		p.runClientProcess(b, l)
	default:
		b.Fatalf("-dataapi.client is %q, not inproc or process", *clientMode)
	}
}

// runInProcess makes the calls of l from goroutines of the benchmark. It
// spreads them itself rather than through b.RunParallel, whose goroutines
// come in multiples of GOMAXPROCS, so that one connection means one.
func (p *benchPod) runInProcess(b *testing.B, l *callLoad) {
	clients := make([]caller, l.Conns)
	for i := range clients {
		clients[i] = p.client(b)
	}
	opened := p.opened.Load()

	start := sampleCPU(b)
	b.ResetTimer()
	bufs := make([]bytes.Buffer, l.Conns)
	err := spread(l.Conns, l.N, func(w, i int) error {
		return l.call(clients[w], &bufs[w], i)
	})
	b.StopTimer()
	used := sampleCPU(b).since(start)
	if err != nil {
		b.Fatal(err)
	}
	p.checkOpened(b, opened, l.Conns)
	reportRate(b, used, 0)
}

func (p *benchPod) checkOpened(b *testing.B, before int64, conns int) {
	if n := p.opened.Load() - before; n != 0 {
		b.Fatalf("%d connections were opened while timed; the %d opened before must "+
			"last the run", n, conns)
	}
}

// reportRate reports the calls per second and the CPU time per call of the
// benchmark's process, and of the clients' process if it was one, and the
// share of the machine's CPU time that its host gave to others (steal-%),
// when the kernel tells. A virtual machine's host may run other machines'
// work on its cores: the calls per second fall with the steal, while the
// CPU time per call is what the calls cost.
func reportRate(b *testing.B, used cpuUse, clientCPU time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(used.proc.Microseconds())/float64(b.N), "cpu-µs/op")
	if clientCPU > 0 {
		b.ReportMetric(float64(clientCPU.Microseconds())/float64(b.N), "client-cpu-µs/op")
	}
	if used.stealPct >= 0 {
		b.ReportMetric(used.stealPct, "steal-%")
	}
}

// cpuSample is the CPU time the process has used, user and system, and
// the machine's steal and total time in clock ticks, from /proc/stat;
// those are zero where it cannot be read.
type cpuSample struct {
	proc       time.Duration
	steal, all uint64
}

// cpuUse is what was used between two samples; stealPct is -1 where the
// machine's times are unknown.
type cpuUse struct {
	proc     time.Duration
	stealPct float64
}

func sampleCPU(tb testing.TB) cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("reading the CPU time: %v", err)
	}
	s := cpuSample{proc: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	s.steal, s.all = machineTimes()
	return s
}

func (s cpuSample) since(from cpuSample) cpuUse {
	u := cpuUse{proc: s.proc - from.proc, stealPct: -1}
	if s.all > from.all && from.all > 0 {
		u.stealPct = 100 * float64(s.steal-from.steal) / float64(s.all-from.all)
	}
	return u
}

// machineTimes returns the steal and total time of all CPUs, from the
// "cpu" line of /proc/stat: user nice system idle iowait irq softirq
// steal, then guest times, which user and nice include.
func machineTimes() (steal, all uint64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:9] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0
		}
		all += n
		if i == 7 {
			steal = n
		}
	}
	return steal, all
}

// clientEnv names the file holding the callLoad that TestBenchClient runs.
const clientEnv = "BYODA_DATAAPI_BENCH_CLIENT"

// runClientProcess makes the calls of l from a client process: the test
// binary running TestBenchClient. The process opens its connections and
// says "ready"; it starts on "go" and says "done" with the CPU time it
// spent, in nanoseconds, once every call was answered.
func (p *benchPod) runClientProcess(b *testing.B, l *callLoad) {
	l.ServerName = p.serverName
	l.Roots = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.rootCert.Raw})
	for _, der := range p.clientCert.Certificate {
		l.Cert = append(l.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE",
			Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(p.clientCert.PrivateKey)
	if err != nil {
		b.Fatal(err)
	}
	l.Key = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	job := filepath.Join(b.TempDir(), "load.json")
	data, err := json.Marshal(l)
	if err == nil {
		err = os.WriteFile(job, data, 0o600)
	}
	if err != nil {
		b.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchClient$", "-test.count=1",
		"-dataapi.http="+*httpClient)
	cmd.Env = append(os.Environ(), clientEnv+"="+job)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	expect := func(word string) string {
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), word); ok {
				return rest
			}
		}
		b.Fatalf("the client process ended before saying %q: %s", word, stderr.Bytes())
		return ""
	}

	expect("ready")
	opened := p.opened.Load()
	start := sampleCPU(b)
	b.ResetTimer()
	fmt.Fprintln(stdin, "go")
	var clientCPU time.Duration
	if _, err := fmt.Sscan(expect("done"), &clientCPU); err != nil {
		b.Fatalf("the client process said done without its CPU time: %v", err)
	}
	b.StopTimer()
	used := sampleCPU(b).since(start)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("the client process failed: %v\n%s", err, stderr.Bytes())
	}
	p.checkOpened(b, opened, l.Conns)
	reportRate(b, used, clientCPU)
}

// TestBenchClient is the client process of the throughput benchmarks; run
// directly, it does nothing. It makes the calls of the callLoad in the
// file that clientEnv names; see runClientProcess.
func TestBenchClient(t *testing.T) {
	job := os.Getenv(clientEnv)
	if job == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "bench client:", err)
		os.Exit(2)
	}
	var l callLoad
	data, err := os.ReadFile(job)
	if err == nil {
		err = json.Unmarshal(data, &l)
	}
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(l.Roots) {
		fail(fmt.Errorf("no root certificate in %s", job))
	}
	cert, err := tls.X509KeyPair(l.Cert, l.Key)
	if err != nil {
		fail(err)
	}

	clients := make([]caller, l.Conns)
	for i := range clients {
		if clients[i], err = dialCaller(l.URL, roots, l.ServerName, cert); err != nil {
			fail(err)
		}
	}
	fmt.Println("ready")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "go\n" {
		fail(fmt.Errorf("waiting for go: %q, %v", line, err))
	}
	bufs := make([]bytes.Buffer, l.Conns)
	start := sampleCPU(t)
	if err := spread(l.Conns, l.N, func(w, i int) error {
		return l.call(clients[w], &bufs[w], i)
	}); err != nil {
		fail(err)
	}
	fmt.Println("done", int64(sampleCPU(t).since(start).proc))
	os.Exit(0)
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
	p.run(b, conns, &callLoad{URL: p.base + "network_assets/append",
		Bodies: appendBodies(b, 1024), Want: "1\n"})
}

// BenchmarkAppend1 appends assets over one connection; every append is a
// durable transaction, and so is its datalog entry.
func BenchmarkAppend1(b *testing.B) { benchmarkAppend(b, 1) }

// BenchmarkAppend8 appends assets over eight connections at once.
func BenchmarkAppend8(b *testing.B) { benchmarkAppend(b, 8) }

// filteredQuery asks for the first 50 assets of one publisher.
var filteredQuery = []byte(`{"filter":{"publisher":{"eq":"publisher-3"}},"first":50}`)

func benchmarkQuery50Filtered(b *testing.B, conns int) {
	p := newBenchPod(b)
	p.load(b, 100*benchPublishers)
	// The answer must hold 50 edges; encoding/json writes total_count
	// first, so its prefix tells without decoding the whole answer.
	p.run(b, conns, &callLoad{URL: p.base + "network_assets/query",
		Bodies: [][]byte{filteredQuery}, Want: `{"total_count":50,"edges":[{`})
}

// BenchmarkQuery50Filtered1 reads the first 50 of the 100 assets of one
// publisher over one connection; each query also writes a datalog entry.
func BenchmarkQuery50Filtered1(b *testing.B) { benchmarkQuery50Filtered(b, 1) }

// BenchmarkQuery50Filtered8 reads the same page over eight connections.
func BenchmarkQuery50Filtered8(b *testing.B) { benchmarkQuery50Filtered(b, 8) }

// queryPage is the part of a query's answer the latency benchmark reads.
type queryPage struct {
	TotalCount int `json:"total_count"`
	PageInfo   struct {
		HasNextPage bool    `json:"has_next_page"`
		EndCursor   *string `json:"end_cursor"`
	} `json:"page_info"`
}

// BenchmarkQueryLatency pages through the assets of one publisher, 50 at a
// time, over tables of growing size, and reports the median and 99th
// percentile latency of a query: from the request's write until the last
// byte of the answer, which the client then decodes for its cursor. Its
// client is in the benchmark's process.
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
			start := sampleCPU(b)
			for b.Loop() {
				var took time.Duration
				var err error
				if after, took, err = p.nextPage(c, after); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, took)
			}
			reportRate(b, sampleCPU(b).since(start), 0)
			reportLatency(b, lat)
		})
	}
}

// nextPage queries the page of one publisher's assets after the cursor and
// returns the cursor of the page to read next, "" after the last, and how
// long the call took.
func (p *benchPod) nextPage(c caller, after string) (string, time.Duration, error) {
	req := map[string]any{"filter": map[string]any{"publisher": map[string]any{
		"eq": "publisher-3"}}, "first": 50}
	if after != "" {
		req["after"] = after
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", 0, err
	}

	var buf bytes.Buffer
	start := time.Now()
	data, err := c.post(&buf, p.base+"network_assets/query", body)
	took := time.Since(start)
	if err != nil {
		return "", 0, err
	}
	var page queryPage
	if err := json.Unmarshal(data, &page); err != nil || page.TotalCount == 0 {
		return "", 0, fmt.Errorf("the query answered %.200s, not a page of assets", data)
	}
	if !page.PageInfo.HasNextPage || page.PageInfo.EndCursor == nil {
		return "", took, nil
	}
	return *page.PageInfo.EndCursor, took, nil
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
