package pod

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/contract"
	"github.com/byoda/byoda-go/internal/dataapi"
	"github.com/byoda/byoda-go/internal/logring"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/web"
)

// sessionCookie holds the account token of a signed-in web page. The
// __Host- prefix makes browsers insist on Secure, Path=/ and no Domain, so
// the cookie belongs to exactly the name it was set for.
const sessionCookie = "__Host-byoda-session"

// Limits of the overview: the log records it shows and how much of
// ROOT_DIR it adds up.
const (
	overviewLogRecords = 100
	diskWalkFiles      = 100_000
	diskWalkTime       = 2 * time.Second
)

// browserPortKey marks, in a request's context, a request that came in on
// the HTTPS port, the only port where the session cookie counts.
type browserPortKey struct{}

// withWeb adds the web page and its API to the routes of the HTTPS port.
// The handler it returns marks requests as the HTTPS port's and keeps
// browsers from caching API answers.
func (p *Pod) withWeb(mux *http.ServeMux) http.Handler {
	page, err := web.New()
	if err != nil {
		// The files are embedded: a failure is a broken build.
		panic(fmt.Sprintf("loading the embedded web page: %v", err))
	}
	mux.Handle("GET /{$}", p.webPage(page))
	mux.Handle("GET /app/", p.webPage(page))

	h := func(pattern string, f api.HandlerFunc) {
		mux.Handle(pattern, api.Handle(p.logger, f))
	}
	h("POST /api/v1/pod/web/session", p.postSession)
	h("GET /api/v1/pod/web/session", p.getSession)
	h("DELETE /api/v1/pod/web/session", p.deleteSession)
	h("GET /api/v1/pod/web/overview", p.webOverview)
	h("GET /api/v1/pod/web/services", p.webServices)
	h("GET /api/v1/pod/web/service/{sid}", p.webService)
	h("POST /api/v1/pod/web/data/{sid}/{class}/{action}", p.webData)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		ctx := context.WithValue(r.Context(), browserPortKey{}, true)
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

// webPage serves the page on the names a browser manages the account by:
// the account's name and the custom domain. Other names, such as those of
// memberships, answer 404 as before.
func (p *Pod) webPage(page *web.Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.isWebHost(r) {
			api.NotFound(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
}

// isWebHost reports whether r was sent to the account's name or the custom
// domain.
func (p *Pod) isWebHost(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if r.TLS != nil && r.TLS.ServerName != "" {
		host = r.TLS.ServerName
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == pki.AccountName(p.cfg.Network, p.cfg.AccountID).String() ||
		(p.cfg.CustomDomain != "" && host == strings.ToLower(p.cfg.CustomDomain))
}

// sessionRequester authenticates a request by the web page's session
// cookie. The cookie counts only on the HTTPS port, and only with the
// page's X-Byoda-Web header, which another origin cannot add without a CORS
// preflight that the pod never grants; elsewhere the request is anonymous.
// A request with the header that the browser marks as cross-site is
// refused.
func (p *Pod) sessionRequester(r *http.Request) (Requester, error) {
	if on, _ := r.Context().Value(browserPortKey{}).(bool); !on {
		return Requester{}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || r.Header.Get(web.Header) == "" {
		return Requester{}, nil
	}
	if err := checkSameOrigin(r); err != nil {
		return Requester{}, err
	}

	who, err := p.tokenRequester(c.Value)
	if err != nil {
		detail := "the session is no longer valid"
		var e *api.Error
		if errors.As(err, &e) {
			detail += " (" + e.Detail + ")"
		}
		return Requester{}, api.Wrap(http.StatusUnauthorized, err, detail+"; sign in again")
	}
	if who.Type != pki.Account {
		return Requester{}, api.Errorf(http.StatusUnauthorized,
			"the session does not hold an account token; sign in again")
	}
	return who, nil
}

// checkSameOrigin refuses a request of the web page that its browser says
// came from another site, or whose Origin is not the pod's.
func checkSameOrigin(r *http.Request) error {
	if r.Header.Get(web.Header) == "" {
		return api.Errorf(http.StatusBadRequest,
			"the %s header is required: this endpoint serves the pod's own web page",
			web.Header)
	}
	err := http.NewCrossOriginProtection().Check(r)
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		err = fmt.Errorf("Sec-Fetch-Site is %q", site)
	}
	if err != nil {
		return api.Wrap(http.StatusForbidden, err,
			"the session is accepted only from the pod's own web page")
	}
	return nil
}

// requireWebAccount authenticates the pod's own account on the endpoints of
// the web page, telling a request without credentials to sign in.
func (p *Pod) requireWebAccount(r *http.Request) error {
	who, err := p.requester(r)
	switch {
	case err != nil:
		return err
	case who.Type == 0:
		return api.Errorf(http.StatusUnauthorized,
			"not signed in: sign in with the account's username and password")
	case who.Type != pki.Account || who.ID != p.cfg.AccountID:
		return api.Errorf(http.StatusForbidden, "only this pod's account may do this")
	}
	return nil
}

// webMembership authenticates the account on an endpoint of the web page
// and returns the membership the {sid} path value names.
func (p *Pod) webMembership(r *http.Request) (*Membership, error) {
	if err := p.requireWebAccount(r); err != nil {
		return nil, err
	}
	sid, err := pathServiceID(r)
	if err != nil {
		return nil, err
	}
	m, ok := p.Membership(sid)
	if !ok {
		return nil, api.Errorf(http.StatusNotFound, "not a member of service %d", sid)
	}
	return m, nil
}

// sessionRequest is the body of a sign-in.
type sessionRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// postSession signs the web page in: the login of postAuthToken, with its
// throttle and password check, and an account token in a cookie that
// scripts cannot read instead of the body.
func (p *Pod) postSession(w http.ResponseWriter, r *http.Request) error {
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	var req sessionRequest
	if err := api.DecodeJSON(w, r, 4<<10, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return api.Errorf(http.StatusBadRequest, "enter both the username and the password")
	}

	login := tokenRequest{Username: req.Username, Password: req.Password}
	if err := p.checkLogin(w, r, login); err != nil {
		return err
	}
	token, err := p.accountToken()
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/",
		MaxAge: int(p.cfg.TokenLifetime.Seconds()), Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	p.logger.Info("web session started", "client", r.RemoteAddr)
	return p.writeSession(w)
}

// getSession tells the page whether it is signed in, and as whom.
func (p *Pod) getSession(w http.ResponseWriter, r *http.Request) error {
	if err := p.requireWebAccount(r); err != nil {
		return err
	}
	return p.writeSession(w)
}

func (p *Pod) writeSession(w http.ResponseWriter) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"account_id": p.cfg.AccountID,
		"username":   p.cfg.Username,
		"network":    p.cfg.Network,
	})
	return nil
}

// deleteSession signs the web page out by clearing its cookie. The token
// itself stays valid until it expires, but no script could read it.
func (p *Pod) deleteSession(w http.ResponseWriter, r *http.Request) error {
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	api.WriteJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
	return nil
}

// webCert is one of the pod's certificates as the overview shows it.
type webCert struct {
	Use      string    `json:"use"`
	Name     string    `json:"name"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
}

// webMembership is one membership as the overview shows it.
type webMembership struct {
	ServiceID uint32 `json:"service_id"`
	Name      string `json:"name"`
	MemberID  string `json:"member_id"`
	Version   int    `json:"version"`
}

// webOverview describes the account for the page's first screen: who it
// is, its certificates and when they expire, the disk ROOT_DIR takes and
// the latest log records, newest first (null when the pod keeps none).
func (p *Pod) webOverview(w http.ResponseWriter, r *http.Request) error {
	if err := p.requireWebAccount(r); err != nil {
		return err
	}

	members := p.sortedMemberships()
	list := make([]webMembership, len(members))
	for i, m := range members {
		list[i] = webMembership{ServiceID: m.ServiceID, Name: m.Contract.Name,
			MemberID: m.MemberID, Version: m.Contract.Version}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"account_id":    p.cfg.AccountID,
		"account_name":  pki.AccountName(p.cfg.Network, p.cfg.AccountID).String(),
		"custom_domain": p.cfg.CustomDomain,
		"network":       p.cfg.Network,
		"username":      p.cfg.Username,
		"started":       p.started.UTC(),
		"root_dir":      p.cfg.RootDir,
		"disk":          measureDisk(r.Context(), p.cfg.RootDir),
		"certificates":  p.webCerts(members),
		"memberships":   list,
		"recent_log":    p.recentLog(),
	})
	return nil
}

// sortedMemberships returns the memberships by service id.
func (p *Pod) sortedMemberships() []*Membership {
	members := p.Memberships()
	slices.SortFunc(members, func(a, b *Membership) int {
		return cmp.Compare(a.ServiceID, b.ServiceID)
	})
	return members
}

// webCerts lists the certificates of the account and of members.
func (p *Pod) webCerts(members []*Membership) []webCert {
	now := p.now()
	var certs []webCert
	add := func(use string, s *secret) {
		if s == nil {
			return
		}
		leaf := s.leaf()
		certs = append(certs, webCert{Use: use, Name: leaf.Subject.CommonName,
			NotAfter: leaf.NotAfter.UTC(), DaysLeft: int(leaf.NotAfter.Sub(now).Hours() / 24)})
	}

	p.mu.RLock()
	account, accountData := p.account, p.accountData
	p.mu.RUnlock()
	add("account", account)
	add("account data", accountData)
	for _, m := range members {
		add(fmt.Sprintf("member of %s", m.Contract.Name), m.tls)
		add(fmt.Sprintf("member data of %s", m.Contract.Name), m.data)
	}
	return certs
}

// recentLog returns the latest kept log records, newest first, or nil when
// the pod keeps none.
func (p *Pod) recentLog() []logring.Record {
	if p.cfg.RecentLog == nil {
		return nil
	}
	recs := p.cfg.RecentLog.Recent()
	recs = recs[max(0, len(recs)-overviewLogRecords):]
	slices.Reverse(recs)
	return append([]logring.Record{}, recs...)
}

// diskUsage is what the files under ROOT_DIR take.
type diskUsage struct {
	Bytes int64 `json:"bytes"`
	Files int   `json:"files"`

	// Complete is false when the count stopped early: too many files, too
	// long a walk, or directories that could not be read.
	Complete bool `json:"complete"`
}

// measureDisk adds up the sizes of the files under root, for at most
// diskWalkFiles files and diskWalkTime.
func measureDisk(ctx context.Context, root string) diskUsage {
	ctx, cancel := context.WithTimeout(ctx, diskWalkTime)
	defer cancel()

	u := diskUsage{Complete: true}
	errStop := errors.New("stop")
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			u.Complete = false
			return nil
		case ctx.Err() != nil || u.Files >= diskWalkFiles:
			return errStop
		case !d.Type().IsRegular():
			return nil
		}
		info, err := d.Info()
		if err != nil {
			u.Complete = false
			return nil
		}
		u.Bytes += info.Size()
		u.Files++
		return nil
	})
	if err != nil {
		u.Complete = false
	}
	return u
}

// webServiceInfo is one service of the network as the page lists it.
type webServiceInfo struct {
	ServiceID   uint32 `json:"service_id"`
	Name        string `json:"name"`
	Description string `json:"description"`

	// Version is the contract version the directory lists; zero when the
	// directory could not be asked.
	Version int `json:"version"`

	Member          bool   `json:"member"`
	MemberID        string `json:"member_id,omitempty"`
	AcceptedVersion int    `json:"accepted_version,omitempty"`
}

// webServices lists the services of the network, saying which the pod is a
// member of. When the directory cannot be reached, it lists the
// memberships and says why the rest is missing.
func (p *Pod) webServices(w http.ResponseWriter, r *http.Request) error {
	if err := p.requireWebAccount(r); err != nil {
		return err
	}

	byID := map[uint32]*webServiceInfo{}
	for _, m := range p.Memberships() {
		c := m.Contract
		byID[m.ServiceID] = &webServiceInfo{ServiceID: m.ServiceID, Name: c.Name,
			Description: c.Description, Member: true, MemberID: m.MemberID,
			AcceptedVersion: c.Version}
	}
	out := map[string]any{}
	listed, err := p.listServices(r.Context())
	if err != nil {
		p.logger.Warn("listing services for the web page", "err", err)
		out["directory_error"] = "the network's directory could not be reached, so only " +
			"the services this pod is a member of are listed"
	}
	for _, s := range listed {
		info, ok := byID[s.ServiceID]
		if !ok {
			info = &webServiceInfo{ServiceID: s.ServiceID, Name: s.Name,
				Description: s.Description}
			byID[s.ServiceID] = info
		}
		info.Version = s.Version
	}

	list := make([]*webServiceInfo, 0, len(byID))
	for _, s := range byID {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b *webServiceInfo) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ServiceID, b.ServiceID))
	})
	out["services"] = list
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

// webClass is a data class of a membership's contract as the page shows it.
type webClass struct {
	Name        string         `json:"name"`
	Kind        string         `json:"kind"`
	Description string         `json:"description"`
	Record      string         `json:"record"`
	CacheOnly   string         `json:"cache_only,omitempty"`
	Access      []webGrant     `json:"access"`
	Summary     string         `json:"access_summary"`
	Owner       webOwnerRights `json:"owner"`
	Fields      []webField     `json:"fields"`
	Required    []string       `json:"required"`
}

// webGrant is one line of a class's access rules, in words: Label names
// the entity, Meaning says who that is with the conditions of the rights,
// and Words what they may do. Who and What are the contract's terms.
type webGrant struct {
	Entity  string   `json:"entity"`
	Label   string   `json:"label"`
	Who     string   `json:"who"`
	Meaning string   `json:"meaning"`
	What    []string `json:"what"`
	Words   string   `json:"words"`
}

// webOwnerRights says what the owner may do with a class through the Data
// API: the actions the page offers.
type webOwnerRights struct {
	Read   bool `json:"read"`
	Add    bool `json:"add"`
	Edit   bool `json:"edit"`
	Delete bool `json:"delete"`
}

// webField is a field of a class's records.
type webField struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	ItemType    string   `json:"item_type,omitempty"`
	Format      string   `json:"format,omitempty"`
	Description string   `json:"description,omitempty"`
	Required    bool     `json:"required"`
	Operators   []string `json:"operators,omitempty"`
}

// entityLabels name the entities of access rules for people.
var entityLabels = map[contract.Entity]string{
	contract.EntityMember:    "Owner",
	contract.EntityAnyMember: "Any member",
	contract.EntityNetwork:   "Network",
	contract.EntityService:   "Service",
	contract.EntityAnonymous: "Anonymous",
}

// entityMeanings say who each entity of an access rule is, to the owner.
var entityMeanings = map[contract.Entity]string{
	contract.EntityMember:    "you, the owner of this membership",
	contract.EntityAnyMember: "any member of the service",
	contract.EntityNetwork:   "members you have a network link with",
	contract.EntityService:   "the service itself",
	contract.EntityAnonymous: "anyone, signed in or not",
}

// permissionWords say what each permission lets one do.
var permissionWords = map[string]string{
	"read": "read", "read (default)": "read (by default)", "update": "change",
	"delete": "delete", "append": "add", "subscribe": "follow changes", "search": "search",
	"persist": "keep a copy", "create": "create", "mutate": "mutate", "none": "nothing",
}

// filterOperators are the operators of the Data API's filters by field
// type, as store.Filter takes them.
var filterOperators = map[contract.FieldType][]string{
	contract.TypeString:   {"eq", "ne", "glob", "regex"},
	contract.TypeUUID:     {"eq", "ne"},
	contract.TypeDateTime: {"at", "after", "before", "atafter", "atbefore", "nat"},
	contract.TypeInteger:  {"eq", "ne", "gt", "lt", "egt", "elt"},
	contract.TypeNumber:   {"eq", "ne", "gt", "lt", "egt", "elt"},
	contract.TypeBoolean:  {"eq", "ne"},
}

// webService describes a membership's service and every data class of its
// contract: access rules in words, what the owner may do, and the fields of
// its records.
func (p *Pod) webService(w http.ResponseWriter, r *http.Request) error {
	m, err := p.webMembership(r)
	if err != nil {
		return err
	}
	c := m.Contract
	classes := make([]webClass, 0, len(c.Classes))
	for _, name := range c.ClassNames() {
		classes = append(classes, describeClass(c.Classes[name]))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"service_id":  m.ServiceID,
		"name":        c.Name,
		"description": c.Description,
		"version":     c.Version,
		"member_id":   m.MemberID,
		"member_name": m.Name(),
		"classes":     classes,
	})
	return nil
}

// describeClass puts a data class in the page's terms.
func describeClass(cl *contract.Class) webClass {
	rec := cl.Record()
	out := webClass{Name: cl.Name, Kind: cl.Kind.String(), Description: cl.Description,
		Record: rec.Name, Summary: cl.Access.Summary(), Required: rec.Required,
		Fields: []webField{}}
	if cl.CacheOnly > 0 {
		out.CacheOnly = formatKeep(cl.CacheOnly)
	}

	for _, g := range cl.Access.Describe() {
		words := make([]string, len(g.What))
		for i, what := range g.What {
			words[i] = cmp.Or(permissionWords[what], what)
		}
		out.Access = append(out.Access, webGrant{Entity: string(g.Entity),
			Label: entityLabels[g.Entity], Who: g.Who, Meaning: grantMeaning(g), What: g.What,
			Words: strings.Join(words, ", ")})
	}

	owner := contract.Requester{Member: true, Owner: true}
	may := func(perm contract.Permission) bool { return cl.Access.Allows(owner, perm, 0) }
	out.Owner.Read = may(contract.PermissionRead)
	out.Owner.Edit = may(contract.PermissionUpdate)
	if cl.Kind == contract.ArrayClass {
		out.Owner.Add = may(contract.PermissionAppend)
		out.Owner.Delete = may(contract.PermissionDelete)
	}

	for _, f := range rec.Fields {
		wf := webField{Name: f.Name, Type: f.Type.String(), Format: f.Format,
			Description: f.Description, Required: f.Required,
			Operators: filterOperators[f.Type]}
		switch {
		case f.ItemClass != nil:
			wf.ItemType = f.ItemClass.Name
		case f.Type == contract.TypeArray:
			wf.ItemType = f.ItemType.String()
		}
		out.Fields = append(out.Fields, wf)
	}
	return out
}

// grantMeaning says who a grant is for, with the conditions of its rights,
// as in "members linked to you as friend or family, up to 1 link away".
func grantMeaning(g contract.Grant) string {
	meaning := entityMeanings[g.Entity]
	if g.Entity != contract.EntityNetwork {
		if _, cond, ok := strings.Cut(g.Who, " ("); ok {
			meaning += " (" + cond
		}
		return meaning
	}

	if n := len(g.Relations); n > 0 {
		meaning = "members linked to you as " + strings.Join(g.Relations[:n-1], ", ")
		if n > 1 {
			meaning += " or "
		}
		meaning += g.Relations[n-1]
	}
	switch {
	case g.Distance == 1:
		meaning += ", up to 1 link away"
	case g.Distance > 1:
		meaning += fmt.Sprintf(", up to %d links away", g.Distance)
	}
	return meaning
}

// formatKeep says how long cache-only records are kept, in whole days or
// hours where it can.
func formatKeep(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}

// webData serves the Data API to the page as the owner: the account, signed
// in, acts as its own member of the service, as it could with a member
// token from POST /api/v1/pod/authtoken/service_id/{sid}.
func (p *Pod) webData(w http.ResponseWriter, r *http.Request) error {
	m, err := p.webMembership(r)
	if err != nil {
		return err
	}
	addr, err := api.ClientAddr(r)
	if err != nil {
		return err
	}
	who := dataapi.Requester{IDType: dataapi.IDTypeMember, ID: m.MemberID,
		ServiceID: m.ServiceID, Addr: addr}
	return m.API.Serve(w, r, who, r.PathValue("class"), r.PathValue("action"))
}
