package pod

import (
	"net/http"
	"strconv"

	"github.com/byoda/byoda-go/internal/api"
	"github.com/byoda/byoda-go/internal/dataapi"
	"github.com/byoda/byoda-go/internal/pki"
)

// dataRequest hands a Data API request to the membership it is for, with
// the requester the pod authenticated.
func (p *Pod) dataRequest(w http.ResponseWriter, r *http.Request) error {
	m, who, err := p.dataTarget(r)
	if err != nil {
		return err
	}
	return m.API.Serve(w, r, who, r.PathValue("class"), r.PathValue("action"))
}

// dataWebsocket hands an updates or counter websocket to its membership.
func (p *Pod) dataWebsocket(w http.ResponseWriter, r *http.Request) error {
	m, who, err := p.dataTarget(r)
	if err != nil {
		return err
	}
	return m.API.ServeWebsocket(w, r, who, r.PathValue("class"), r.PathValue("action"))
}

// dataTarget returns the membership a Data API request names and who sent
// it.
func (p *Pod) dataTarget(r *http.Request) (*Membership, dataapi.Requester, error) {
	sid, err := pathServiceID(r)
	if err != nil {
		return nil, dataapi.Requester{}, err
	}
	m, ok := p.Membership(sid)
	if !ok {
		return nil, dataapi.Requester{}, api.Errorf(http.StatusNotFound,
			"this pod is not a member of service %d", sid)
	}

	who, err := p.dataRequester(r)
	if err != nil {
		return nil, dataapi.Requester{}, err
	}
	return m, who, nil
}

// dataRequester maps the pod's requester to the Data API's. Account
// credentials are for the pod's own API, never for data.
func (p *Pod) dataRequester(r *http.Request) (dataapi.Requester, error) {
	addr, err := api.ClientAddr(r)
	if err != nil {
		return dataapi.Requester{}, err
	}
	who, err := p.requester(r)
	if err != nil {
		return dataapi.Requester{}, err
	}

	switch who.Type {
	case 0:
		return dataapi.Requester{IDType: dataapi.IDTypeAnonymous, Addr: addr}, nil
	case pki.Member:
		return dataapi.Requester{IDType: dataapi.IDTypeMember, ID: who.ID,
			ServiceID: who.ServiceID, Addr: addr}, nil
	case pki.Service:
		return dataapi.Requester{IDType: dataapi.IDTypeService,
			ID: strconv.FormatUint(uint64(who.ServiceID), 10), ServiceID: who.ServiceID,
			Addr: addr}, nil
	}
	return dataapi.Requester{}, api.Errorf(http.StatusForbidden,
		"account credentials cannot be used for the Data API; use a member's")
}
