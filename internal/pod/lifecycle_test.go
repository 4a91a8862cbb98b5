package pod

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/byoda/byoda-go/internal/auth"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/store"
	"github.com/byoda/byoda-go/internal/testnet"
)

func startNet(t *testing.T) *testnet.Net {
	t.Helper()
	return testnet.Start(t, []string{contractPath(), contractPath()},
		[]uint32{notesSID, otherSID})
}

// TestStartJoinRestart starts a pod that joins a service at start, joins a
// second through the API, and restarts with the same identity and
// memberships.
func TestStartJoinRestart(t *testing.T) {
	n := startNet(t)
	cfg := newPodConfig(t, n, notesSID)
	tp := startPod(t, n, cfg)

	if got := resolve(t, n, tp.accountName()); got != cfg.BindAddress {
		t.Fatalf("account resolves to %v, want %v", got, cfg.BindAddress)
	}
	m, ok := tp.pod.Membership(notesSID)
	if !ok {
		t.Fatal("JOIN_SERVICE_IDS did not join")
	}
	if got := resolve(t, n, m.Name()); got != cfg.BindAddress {
		t.Fatalf("member resolves to %v, want %v", got, cfg.BindAddress)
	}

	// The member name gets the member certificate, on both ports.
	r := tp.do(tp.client(nil, m.Name()), "GET", tp.httpsURL("/member-cert.pem"), nil, "")
	want(t, r, 200, "member cert")
	if cn := r.tls.PeerCertificates[0].Subject.CommonName; cn != m.Name() {
		t.Fatalf("server certificate for the member name is %s", cn)
	}
	certs, err := pki.ParseCerts(r.body)
	if err != nil || certs[0].Subject.CommonName != m.Name() {
		t.Fatalf("member-cert.pem: %v", err)
	}
	r = tp.do(tp.client(nil, m.Name()), "GET", tp.httpsURL("/member-data-cert.pem"), nil, "")
	want(t, r, 200, "member data cert")
	want(t, tp.do(tp.client(nil, ""), "GET", tp.httpsURL("/member-cert.pem"), nil, ""), 404,
		"member cert on the account name")

	// Joining through the API serves the new membership at once.
	token := tp.accountToken()
	r = tp.do(tp.client(nil, ""), "POST", tp.httpsURL(fmt.Sprintf(
		"/api/v1/pod/member/service_id/%d/version/1", otherSID)), nil, token)
	want(t, r, 200, "join")
	var joined struct {
		MemberID string `json:"member_id"`
	}
	r.json(t, &joined)
	other := pki.MemberName(testnet.Network, joined.MemberID, otherSID).String()
	r = tp.do(tp.client(nil, other), "GET", tp.httpsURL("/api/v1/status"), nil, "")
	want(t, r, 200, "status on the new member name")
	if r.tls.PeerCertificates[0].Subject.CommonName != other {
		t.Fatal("the new membership is not served at once")
	}
	want(t, tp.do(tp.client(nil, ""), "POST", tp.httpsURL(fmt.Sprintf(
		"/api/v1/pod/member/service_id/%d/version/1", otherSID)), nil, token), 409,
		"second join")

	accountCert := tp.accountCert().Leaf
	tp.stop()

	// A restart loads the same identity and memberships.
	again := startPod(t, n, cfg)
	if !bytes.Equal(again.accountCert().Leaf.Raw, accountCert.Raw) {
		t.Fatal("the restarted pod has another account certificate")
	}
	for sid, id := range map[uint32]string{notesSID: m.MemberID, otherSID: joined.MemberID} {
		got, ok := again.pod.Membership(sid)
		if !ok || got.MemberID != id {
			t.Fatalf("membership of %d after restart: %v", sid, got)
		}

		// The data store kept the member object written at the join.
		page, err := got.Store.Query(context.Background(), "member", store.QueryOptions{})
		if err != nil || len(page.Edges) != 1 || page.Edges[0].Node["member_id"] != id {
			t.Fatalf("member object of %d after restart: %+v, %v", sid, page, err)
		}
	}
}

func TestPodAPIs(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	c := tp.client(nil, "")
	token := tp.accountToken()

	r := tp.do(c, "GET", tp.httpsURL("/api/v1/pod/account"), nil, token)
	want(t, r, 200, "account")
	var account struct {
		AccountID string `json:"account_id"`
		Services  []struct {
			ServiceID uint32 `json:"service_id"`
			Member    bool   `json:"member"`
		} `json:"services"`
	}
	r.json(t, &account)
	if account.AccountID != tp.cfg.AccountID || len(account.Services) != 2 {
		t.Fatalf("account %s", r.body)
	}
	if strings.Contains(string(r.body), "secret") {
		t.Fatalf("account reply mentions a secret: %s", r.body)
	}

	path := fmt.Sprintf("/api/v1/pod/member/service_id/%d", notesSID)
	r = tp.do(c, "GET", tp.httpsURL(path), nil, token)
	want(t, r, 200, "member")
	if strings.Contains(string(r.body), "private_key") {
		t.Fatalf("member reply has a private key: %s", r.body)
	}
	want(t, tp.do(c, "GET", tp.httpsURL("/api/v1/pod/member/service_id/7"), nil, token), 404,
		"member of an unknown service")

	r = tp.do(c, "PUT", tp.httpsURL(path+"/version/1"), nil, token)
	want(t, r, 200, "re-register")
	want(t, tp.do(c, "PUT", tp.httpsURL(path+"/version/2"), nil, token), 404,
		"upgrade to a version the service does not publish")

	r = tp.do(c, "POST", tp.httpsURL(fmt.Sprintf("/api/v1/pod/authtoken/service_id/%d",
		notesSID)), nil, token)
	want(t, r, 200, "member token for the account")
	var mt struct {
		AuthToken string `json:"auth_token"`
	}
	r.json(t, &mt)
	want(t, tp.do(c, "GET", tp.httpsURL("/api/v1/pod/account"), nil, mt.AuthToken), 403,
		"member token on an account API")

	want(t, tp.do(c, "GET", tp.httpsURL("/livez"), nil, ""), 200, "livez")
	want(t, tp.do(c, "GET", tp.httpsURL("/readyz"), nil, ""), 200, "readyz")
}

func TestJoinRefusals(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	c := tp.client(nil, "")
	token := tp.accountToken()
	join := func(sid, version string) string {
		return tp.httpsURL("/api/v1/pod/member/service_id/" + sid + "/version/" + version)
	}

	tests := []struct {
		name   string
		url    string
		token  string
		status int
		detail string
	}{
		{"no credentials", join(fmt.Sprint(otherSID), "1"), "", 401, "authenticate"},
		{"unknown service", join("7", "1"), token, 404, "no service 7"},
		{"unknown version", join(fmt.Sprint(otherSID), "3"), token, 404, "version 1, not 3"},
		{"already a member", join(fmt.Sprint(notesSID), "1"), token, 409, "already"},
		{"bad service id", join("x", "1"), token, 400, "service id"},
		{"bad version", join(fmt.Sprint(otherSID), "0"), token, 400, "version"},
		{"garbage token", join(fmt.Sprint(otherSID), "1"), "abc.def.ghi", 401, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tp.do(c, "POST", tt.url, nil, tt.token)
			want(t, r, tt.status, tt.name)
			if !strings.Contains(r.detail(), tt.detail) {
				t.Fatalf("detail %q does not mention %q", r.detail(), tt.detail)
			}
		})
	}
	if _, ok := tp.pod.Membership(otherSID); ok {
		t.Fatal("a refused join left a membership")
	}

	// A contract whose signature does not verify is refused.
	m, _ := tp.pod.Membership(notesSID)
	tampered := bytes.Replace(m.doc, []byte("note-taking"), []byte("Note-taking"), 1)
	_, err := tp.pod.checkService(notesSID, tampered, m.ServiceData, m.CAChain)
	if !errors.Is(err, contract.ErrSignature) {
		t.Fatalf("tampered contract: %v, want ErrSignature", err)
	}
	other := tp.net.Services[otherSID].Secrets
	_, err = tp.pod.checkService(notesSID, m.doc, other.DataChain, m.CAChain)
	if err == nil {
		t.Fatal("a contract verified with another service's data certificate")
	}
}

func TestLogin(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	c := tp.client(nil, "")
	url := tp.httpsURL("/api/v1/pod/authtoken")
	user := tp.cfg.Username

	tests := []struct {
		name   string
		body   any
		status int
		detail string
	}{
		{"wrong password", map[string]any{"username": user, "password": "x",
			"target_type": "accounts"}, 401, "wrong username or password"},
		{"wrong username", map[string]any{"username": "someone", "password": accountPwd,
			"target_type": "accounts"}, 401, "wrong username or password"},
		{"not an object", "{", 400, "must be a JSON object"},
		{"member token without service", map[string]any{"username": user,
			"password": accountPwd}, 400, "service_id is required"},
		{"member token of another service", map[string]any{"username": user,
			"password": accountPwd, "service_id": 7}, 401, "not a member"},
		{"bad target type", map[string]any{"username": user, "password": accountPwd,
			"target_type": "apps-"}, 400, "target_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tp.do(c, "POST", url, tt.body, "")
			want(t, r, tt.status, tt.name)
			if !strings.Contains(r.detail(), tt.detail) {
				t.Fatalf("detail %q does not mention %q", r.detail(), tt.detail)
			}
		})
	}

	// Member tokens work on the member's own APIs, account tokens on the
	// account's.
	member := tp.login(map[string]any{"username": user, "password": accountPwd,
		"service_id": notesSID})
	who, err := tp.pod.tokenRequester(member)
	if err != nil || who.Type != pki.Member || who.ServiceID != notesSID {
		t.Fatalf("member token: %+v, %v", who, err)
	}

	// Expired, foreign and tampered tokens are refused.
	tp.pod.mu.RLock()
	key := tp.pod.account.key
	tp.pod.mu.RUnlock()
	issuer := tp.pod.tokenIssuer()
	id := parseMemberUUID(tp.cfg.AccountID)

	expired, err := auth.Sign(key, issuer.AccountClaims(id, time.Now().Add(-9*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := auth.Sign(ecKey(t), issuer.AccountClaims(id, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	good := tp.accountToken()
	parts := strings.Split(good, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	tampered := strings.Join(parts, ".")

	for name, tok := range map[string]string{"expired": expired, "foreign": foreign,
		"tampered": tampered} {
		r := tp.do(c, "GET", tp.httpsURL("/api/v1/pod/account"), nil, tok)
		want(t, r, 401, name+" token")
		if strings.Contains(r.detail(), tok) {
			t.Fatalf("%s token echoed in the detail", name)
		}
	}
	want(t, tp.do(c, "GET", tp.httpsURL("/api/v1/pod/account"), nil, good), 200, "good token")
}

func TestLoginThrottle(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n))
	c := tp.client(nil, "")
	url := tp.httpsURL("/api/v1/pod/authtoken")
	bad := map[string]any{"username": tp.cfg.Username, "password": "wrong",
		"target_type": "accounts"}

	throttled := false
	for i := 0; i < 20 && !throttled; i++ {
		r := tp.do(c, "POST", url, bad, "")
		throttled = r.status == 429
		if !throttled && r.status != 401 {
			t.Fatalf("failed login %d: status %d", i, r.status)
		}
	}
	if !throttled {
		t.Fatal("20 failed logins from one address were never slowed down")
	}

	// While throttled, even the right password waits.
	r := tp.do(c, "POST", url, map[string]any{"username": tp.cfg.Username,
		"password": accountPwd, "target_type": "accounts"}, "")
	want(t, r, 429, "right password while throttled")
}

// TestPodPortCertificates checks who the pod port lets in.
func TestPodPortCertificates(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	peer := startPod(t, n, newPodConfig(t, n, notesSID, otherSID))
	accountURL := tp.podURL("/api/v1/pod/account")

	r := tp.do(tp.client(nil, ""), "GET", accountURL, nil, "")
	want(t, r, 401, "no client certificate")

	want(t, tp.do(tp.client(tp.accountCert(), ""), "GET", accountURL, nil, ""), 200,
		"own account certificate")
	want(t, tp.do(tp.client(peer.accountCert(), ""), "GET", accountURL, nil, ""), 403,
		"another account's certificate")

	peerMember, _ := peer.pod.Membership(notesSID)
	memberCert := clientCert(peerMember.tls)
	want(t, tp.do(tp.client(memberCert, ""), "GET", tp.podURL("/api/v1/status"), nil, ""), 200,
		"a member of a shared service")
	want(t, tp.do(tp.client(memberCert, ""), "GET", accountURL, nil, ""), 403,
		"a member on an account API")

	peerOther, _ := peer.pod.Membership(otherSID)
	want(t, tp.do(tp.client(clientCert(peerOther.tls), ""), "GET", tp.podURL("/api/v1/status"),
		nil, ""), 403, "a member of a service this pod has not joined")

	// A members CA for the notes service minted under the other service's
	// CA: its member certificates chain to the root but not through the
	// notes service's own CA.
	svc := tp.net.Services[otherSID].Secrets
	serviceCA, err := pki.LoadCA(testnet.Network, svc.Paths.ServiceCACert(otherSID),
		svc.Paths.ServiceCAKey(otherSID), []byte(testnet.Password))
	if err != nil {
		t.Fatal(err)
	}
	forged := forgeMember(t, serviceCA, notesSID)
	want(t, tp.do(tp.client(forged, ""), "GET", tp.podURL("/api/v1/status"), nil, ""), 403,
		"a member under a forged members CA")

	// A certificate of another network with the same name.
	otherRoot, err := pki.NewRootCA(testnet.Network, ecKey(t))
	if err != nil {
		t.Fatal(err)
	}
	stranger := issueLeaf(t, otherRoot, pki.AccountName(testnet.Network, tp.cfg.AccountID))
	want(t, tp.do(tp.client(stranger, ""), "GET", accountURL, nil, ""), 403,
		"an account certificate of another network")
}

// forgeMember mints, with parent, a members CA named for service sid, and a
// member certificate under it.
func forgeMember(t *testing.T, parent *pki.CA, sid uint32) *tls.Certificate {
	t.Helper()
	caKey := ecKey(t)
	name := pki.NewName(pki.MembersCA, testnet.Network, sid)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      subjectOf(name.String()),
		DNSNames:     []string{name.String()},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, caKey.Public(),
		parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(der)
	ca := &pki.CA{Name: name, Cert: caCert, Chain: parent.IssuerChain(), Key: caKey}
	return issueLeaf(t, ca, pki.MemberName(testnet.Network, "8b4d1c43-2e0c-4b8e-9a51-"+
		"3f1c0e7a9d21", sid))
}

// issueLeaf has ca sign a TLS certificate for name, bypassing nothing: the
// CA's own review applies.
func issueLeaf(t *testing.T, ca *pki.CA, name pki.Name) *tls.Certificate {
	t.Helper()
	key := ecKey(t)
	csrPEM, err := pki.NewCSR(name, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	var cert *x509.Certificate
	if ca.Name.Type == pki.RootCA {
		// A root signs no accounts: make the account certificate by hand.
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: csr.Subject,
			DNSNames: []string{name.String()}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ = x509.ParseCertificate(der)
	} else if cert, _, err = ca.Sign(csr); err != nil {
		t.Fatal(err)
	}
	tc := pki.TLSCertificate(append([]*x509.Certificate{cert}, ca.IssuerChain()...), key)
	return &tc
}

func subjectOf(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

// TestRenewal renews every certificate while the pod serves.
func TestRenewal(t *testing.T) {
	n := startNet(t)
	tp := startPod(t, n, newPodConfig(t, n, notesSID))
	before := tp.accountCert().Leaf
	m, _ := tp.pod.Membership(notesSID)
	oldMember := m.tls.leaf()

	// Every certificate now counts as close to expiry.
	tp.pod.renewBefore.Store(int64(400 * 24 * time.Hour))
	if err := tp.pod.renewDue(context.Background()); err != nil {
		t.Fatalf("renewDue: %v", err)
	}
	tp.pod.renewBefore.Store(int64(DefaultRenewBefore))

	after := tp.accountCert().Leaf
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("the account certificate was not renewed")
	}
	renewed, _ := tp.pod.Membership(notesSID)
	if renewed.MemberID != m.MemberID || renewed.tls.leaf().SerialNumber.Cmp(
		oldMember.SerialNumber) == 0 {
		t.Fatal("the member certificate was not renewed, or changed identity")
	}

	// The pod serves with the new certificates at once, and keeps them over
	// a restart.
	r := tp.do(tp.client(nil, renewed.Name()), "GET", tp.podURL("/api/v1/status"), nil, "")
	if r.status != 401 || r.tls.PeerCertificates[0].SerialNumber.Cmp(
		renewed.tls.leaf().SerialNumber) != 0 {
		t.Fatalf("the pod does not serve the renewed member certificate: %d", r.status)
	}
	tp.stop()
	again := startPod(t, n, tp.cfg)
	if again.accountCert().Leaf.SerialNumber.Cmp(after.SerialNumber) != 0 {
		t.Fatal("the renewed account certificate was not kept")
	}
}
