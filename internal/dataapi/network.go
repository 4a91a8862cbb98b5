package dataapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/store"
)

// Bounds of a network query.
const (
	DefaultMaxPeers    = 32
	DefaultPeerTimeout = 5 * time.Second
	DefaultDeadline    = 10 * time.Second

	// originMaxAge is how old a query's timestamp may be before the pods it
	// reaches answer with their own data only.
	originMaxAge = 300 * time.Second

	maxPeerReply = 8 << 20
)

// Network is what a membership needs to query the pods of its network.
type Network struct {
	// Domain is the network's domain.
	Domain string

	// PodPort is the port pods serve other pods on.
	PodPort int

	// Root is the network's root CA; ServiceCA the service's own CA, which
	// every member certificate of the service must lead through.
	Root      *x509.Certificate
	ServiceCA *x509.Certificate

	// Dial opens connections, resolving the network's names.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Cert returns the membership's current TLS certificate, and DataKey its
	// member data key, which signs the queries it starts.
	Cert    func() *tls.Certificate
	DataKey func() crypto.Signer

	// MaxPeers, PeerTimeout and Deadline bound a fan-out
	// [DefaultMaxPeers, DefaultPeerTimeout, DefaultDeadline].
	MaxPeers    int
	PeerTimeout time.Duration
	Deadline    time.Duration

	once   sync.Once
	client *http.Client
}

func (n *Network) init() {
	n.once.Do(func() {
		if n.MaxPeers == 0 {
			n.MaxPeers = DefaultMaxPeers
		}
		if n.PeerTimeout == 0 {
			n.PeerTimeout = DefaultPeerTimeout
		}
		if n.Deadline == 0 {
			n.Deadline = DefaultDeadline
		}
		pool := x509.NewCertPool()
		pool.AddCert(n.Root)
		n.client = &http.Client{Timeout: n.PeerTimeout, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate,
					error) {
					return n.Cert(), nil
				}},
			DialContext:         n.Dial,
			TLSHandshakeTimeout: n.PeerTimeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     time.Minute,
		}}
	})
}

// memberURL returns the URL of path on the pod of member id.
func (n *Network) memberURL(sid uint32, id, path string) string {
	host := pki.MemberName(n.Domain, id, sid).String()
	return "https://" + net.JoinHostPort(host, strconv.Itoa(n.PodPort)) + path
}

// queryOrigin signs a query this membership starts, or checks the origin
// of one that reached it from a neighbour; a neighbour's query that is too
// old is answered from local data only.
func (a *API) queryOrigin(ctx context.Context, who Requester, req *request) error {
	if req.OriginMemberID == "" && req.OriginSignature == "" {
		if who.IDType != IDTypeMember || who.ID != a.MemberID {
			return api.Errorf(http.StatusBadRequest, "a query with depth may only come "+
				"from this pod's member, or carry its origin's signature")
		}
		if max := a.Store.Contract().MaxQueryDepth; req.Depth > max {
			return api.Errorf(http.StatusBadRequest,
				"depth %d is more than the service allows (%d)", req.Depth, max)
		}
		req.OriginMemberID = a.MemberID
		req.Timestamp = PythonISOTime(time.Now())
		v := SignatureFormatVersion
		req.SignatureFormatVersion = &v

		sig, err := SignOrigin(a.originQuery(req), a.Net.DataKey())
		if err != nil {
			return err
		}
		req.OriginSignature = sig
		return nil
	}

	cert, err := a.memberDataCert(ctx, req.OriginMemberID)
	if err != nil {
		return api.Wrap(http.StatusBadRequest, err,
			"the data certificate of the query's origin could not be fetched")
	}
	if err := VerifyOrigin(a.originQuery(req), req.OriginSignature, cert); err != nil {
		return api.Wrap(http.StatusBadRequest, err, "the query's origin signature "+
			"does not verify")
	}

	ts, err := time.Parse(time.RFC3339Nano, req.Timestamp)
	if err != nil || time.Since(ts) > originMaxAge {
		req.Depth = 0
	}
	return nil
}

func (a *API) originQuery(req *request) OriginQuery {
	q := OriginQuery{ServiceID: a.ServiceID, Relations: req.Relations,
		Timestamp: req.Timestamp, OriginMemberID: req.OriginMemberID}
	if len(req.Filter) > 0 {
		json.Unmarshal(req.Filter, &q.Filter)
	}
	return q
}

// memberDataCert downloads the member data certificate of member id from
// its pod and checks it leads through the service's own CA.
func (a *API) memberDataCert(ctx context.Context, id string) (*x509.Certificate, error) {
	if _, err := pki.ParseUUID(id); err != nil {
		return nil, err
	}
	body, err := a.peerCall(ctx, http.MethodGet, a.Net.memberURL(a.ServiceID, id,
		"/member-data-cert.pem"), nil)
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCerts(body)
	if err != nil {
		return nil, err
	}

	v := &pki.Verifier{Network: a.Net.Domain, Root: a.Net.Root}
	name, err := v.Verify(certs, pki.Want{Types: []pki.IDType{pki.MemberData},
		ServiceID: a.ServiceID, ServiceCA: a.Net.ServiceCA})
	if err != nil {
		return nil, err
	}
	if name.ID != id {
		return nil, fmt.Errorf("the data certificate served for %s is %s's", id, name.ID)
	}
	return certs[0], nil
}

// peerCall sends one request to another pod with the membership's
// certificate and returns the body of a 200 reply.
func (a *API) peerCall(ctx context.Context, method, url string, body any) ([]byte, error) {
	a.Net.init()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}

	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.Net.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerReply))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var d struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(data, &d)
		return nil, &api.StatusError{Status: resp.StatusCode, Detail: d.Detail}
	}
	return data, nil
}

// targets returns the member ids a network query goes to: remote_member_id,
// or the network links with one of the relations, never the sender or
// this member.
func (a *API) targets(ctx context.Context, req request, sender string) ([]string, error) {
	if req.RemoteMemberID != "" {
		return []string{req.RemoteMemberID}, nil
	}

	links, err := a.links(ctx, "")
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, r := range req.Relations {
		want[strings.ToLower(r)] = true
	}

	seen := map[string]bool{sender: true, a.MemberID: true}
	var out []string
	for _, l := range links {
		if seen[l.memberID] || (len(want) > 0 && !want[l.relation]) {
			continue
		}
		seen[l.memberID] = true
		out = append(out, l.memberID)
	}
	return out, nil
}

type link struct{ memberID, relation string }

// links returns the membership's network links, only those with member id
// when id is not empty.
func (a *API) links(ctx context.Context, id string) ([]link, error) {
	cl, ok := a.Store.Contract().Class("network_links")
	if !ok {
		return nil, nil
	}
	var f store.Filter
	if id != "" {
		var err error
		f, err = store.ParseFilter(cl, json.RawMessage(
			fmt.Sprintf(`{"member_id": {"eq": %q}}`, id)))
		if err != nil {
			return nil, fmt.Errorf("filtering network links: %w", err)
		}
	}

	var out []link
	after := ""
	for range 100 {
		page, err := a.Store.Query(ctx, "network_links", store.QueryOptions{Filter: f,
			First: store.MaxPageSize, After: after})
		if err != nil {
			return nil, fmt.Errorf("reading network links: %w", err)
		}
		for _, e := range page.Edges {
			member, _ := e.Node["member_id"].(string)
			rel, _ := e.Node["relation"].(string)
			if member != "" {
				out = append(out, link{member, strings.ToLower(rel)})
			}
		}
		if !page.HasNextPage {
			break
		}
		after = page.EndCursor
	}
	return out, nil
}

// fanOut sends a query to the targets, at most MaxPeers of them at once,
// and collects the edges of those that answer within the deadline. It
// returns the member ids that did not answer.
func (a *API) fanOut(ctx context.Context, class string, req request, targets []string,
) ([]queryEdge, []string) {
	a.Net.init()
	ctx, cancel := context.WithTimeout(ctx, a.Net.Deadline)
	defer cancel()

	next := req
	next.Depth--
	type result struct {
		id    string
		edges []queryEdge
		err   error
	}
	results := make(chan result, len(targets))
	sem := make(chan struct{}, a.Net.MaxPeers)
	for _, id := range targets {
		go func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				results <- result{id: id, err: ctx.Err()}
				return
			}
			url := a.Net.memberURL(a.ServiceID, id, fmt.Sprintf("/api/v1/data/%d/%s/query",
				a.ServiceID, class))
			body, err := a.peerCall(ctx, http.MethodPost, url, next)
			var resp queryResponse
			if err == nil {
				err = json.Unmarshal(body, &resp)
			}
			results <- result{id: id, edges: resp.Edges, err: err}
		}()
	}

	var edges []queryEdge
	var missing []string
	for range targets {
		r := <-results
		if r.err != nil {
			a.Logger.Debug("peer did not answer a network query", "member_id", r.id,
				"err", r.err)
			missing = append(missing, r.id)
			continue
		}
		edges = append(edges, r.edges...)
	}
	return edges, missing
}

// remoteAppend appends a record on another member's pod, as this member.
func (a *API) remoteAppend(ctx context.Context, class string, req request) (any, error) {
	a.Net.init()
	if req.Depth != 1 {
		return nil, api.Errorf(http.StatusBadRequest,
			"an append on another pod needs depth 1, not %d", req.Depth)
	}
	if _, err := pki.ParseUUID(req.RemoteMemberID); err != nil {
		return nil, api.Errorf(http.StatusUnprocessableEntity,
			"remote_member_id must be a UUID")
	}

	next := req
	next.Depth, next.RemoteMemberID = 0, ""
	url := a.Net.memberURL(a.ServiceID, req.RemoteMemberID,
		fmt.Sprintf("/api/v1/data/%d/%s/append", a.ServiceID, class))
	ctx, cancel := context.WithTimeout(ctx, a.Net.PeerTimeout)
	defer cancel()

	body, err := a.peerCall(ctx, http.MethodPost, url, next)
	if err != nil {
		var se *api.StatusError
		if errors.As(err, &se) {
			return nil, api.Wrap(http.StatusBadGateway, err, fmt.Sprintf(
				"the pod of %s refused the append: %s", req.RemoteMemberID, se.Detail))
		}
		return nil, api.Wrap(http.StatusBadGateway, err,
			"the pod of "+req.RemoteMemberID+" could not be reached")
	}
	var n int
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, api.Wrap(http.StatusBadGateway, err, "the remote pod's answer is not a count")
	}
	return n, nil
}
