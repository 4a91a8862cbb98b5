package dirstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testStore runs the conformance tests that every Store must pass. open
// returns a new, empty store that is closed when the test ends.
func testStore(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"addresses", testAddresses},
		{"invalid address input", testInvalidAddressInput},
		{"create service", testCreateService},
		{"data cert", testDataCert},
		{"contract version must rise", testContractVersion},
		{"list services", testListServices},
		{"extreme ids", testExtremeIDs},
		{"concurrent contract", testConcurrentContract},
		{"empty blobs", testEmptyBlobs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

func testAddresses(t *testing.T, s Store) {
	ctx := t.Context()
	if _, err := s.Address(ctx, "nobody.accounts.byoda.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Address of unknown name: err = %v, want ErrNotFound", err)
	}

	// Steps run in order; each sets an address and reads a name back.
	steps := []struct {
		name    string
		set     string
		addr    string
		get     string
		want    string
		wantOld string // name that must keep its earlier address
	}{
		{"ipv4", "a.accounts.byoda.test", "192.0.2.1", "a.accounts.byoda.test", "192.0.2.1", ""},
		{"replace", "a.accounts.byoda.test", "192.0.2.2", "a.accounts.byoda.test", "192.0.2.2", ""},
		{"second name", "b.members-42.byoda.test", "192.0.2.9", "b.members-42.byoda.test",
			"192.0.2.9", "a.accounts.byoda.test"},
		{"case folded on set", "SERVICE.Service-42.Byoda.Test", "198.51.100.4",
			"service.service-42.byoda.test", "198.51.100.4", ""},
		{"case folded on get", "c.accounts.byoda.test", "198.51.100.5",
			"C.ACCOUNTS.BYODA.TEST", "198.51.100.5", ""},
		{"trailing dot", "d.accounts.byoda.test.", "198.51.100.6", "d.accounts.byoda.test",
			"198.51.100.6", ""},
		{"ipv6", "a.accounts.byoda.test", "2001:db8::1", "a.accounts.byoda.test",
			"2001:db8::1", ""},
		{"ipv4-mapped stored as ipv4", "e.accounts.byoda.test", "::ffff:192.0.2.77",
			"e.accounts.byoda.test", "192.0.2.77", ""},
	}
	for _, st := range steps {
		if err := s.SetAddress(ctx, st.set, netip.MustParseAddr(st.addr)); err != nil {
			t.Fatalf("%s: SetAddress: %v", st.name, err)
		}

		got, err := s.Address(ctx, st.get)
		if err != nil {
			t.Fatalf("%s: Address: %v", st.name, err)
		}
		if got != netip.MustParseAddr(st.want) {
			t.Fatalf("%s: Address(%q) = %v, want %s", st.name, st.get, got, st.want)
		}

		if st.wantOld != "" {
			if old, err := s.Address(ctx, st.wantOld); err != nil || old.String() != "192.0.2.2" {
				t.Fatalf("%s: Address(%q) = %v, %v; want 192.0.2.2", st.name, st.wantOld, old, err)
			}
		}
	}
}

func testInvalidAddressInput(t *testing.T, s Store) {
	tests := []struct {
		name  string
		fqdn  string
		addr  netip.Addr
		query bool // also try Address with fqdn
	}{
		{"empty name", "", netip.MustParseAddr("192.0.2.1"), true},
		{"only a dot", ".", netip.MustParseAddr("192.0.2.1"), true},
		{"name too long", strings.Repeat("a", 254), netip.MustParseAddr("192.0.2.1"), true},
		{"zero address", "a.accounts.byoda.test", netip.Addr{}, false},
		{"zoned address", "a.accounts.byoda.test", netip.MustParseAddr("fe80::1%eth0"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetAddress(t.Context(), tt.fqdn, tt.addr)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("SetAddress: err = %v, want ErrInvalid", err)
			}
			if !tt.query {
				return
			}
			if _, err := s.Address(t.Context(), tt.fqdn); !errors.Is(err, ErrInvalid) {
				t.Errorf("Address: err = %v, want ErrInvalid", err)
			}
		})
	}
}

func testCreateService(t *testing.T, s Store) {
	ctx := t.Context()
	ca := []byte("-----BEGIN CERTIFICATE-----\nfirst\n-----END CERTIFICATE-----\n")
	if err := s.CreateService(ctx, 42, ca); err != nil {
		t.Fatalf("CreateService: %v", err)
	}

	err := s.CreateService(ctx, 42, []byte("second"))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second CreateService: err = %v, want ErrExists", err)
	}

	svc, err := s.Service(ctx, 42)
	if err != nil {
		t.Fatalf("Service: %v", err)
	}
	if svc.ID != 42 || !bytes.Equal(svc.CACertChain, ca) {
		t.Errorf("Service = id %d, ca %q; want 42, %q", svc.ID, svc.CACertChain, ca)
	}
	if svc.DataCertChain != nil || svc.Contract != nil || svc.Version != 0 {
		t.Errorf("new service has data cert %q, contract %q, version %d; want none",
			svc.DataCertChain, svc.Contract, svc.Version)
	}
	if svc.Created.IsZero() || !svc.Updated.Equal(svc.Created) {
		t.Errorf("new service created %v, updated %v; want equal and set",
			svc.Created, svc.Updated)
	}

	if _, err := s.Service(ctx, 43); !errors.Is(err, ErrNotFound) {
		t.Errorf("Service of unknown id: err = %v, want ErrNotFound", err)
	}
}

func testDataCert(t *testing.T, s Store) {
	ctx := t.Context()
	err := s.SetServiceDataCert(ctx, 7, []byte("chain"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetServiceDataCert of unknown service: err = %v, want ErrNotFound", err)
	}

	mustCreate(t, s, 7)
	for _, chain := range []string{"data chain one", "data chain two"} {
		if err := s.SetServiceDataCert(ctx, 7, []byte(chain)); err != nil {
			t.Fatalf("SetServiceDataCert(%q): %v", chain, err)
		}

		svc := mustService(t, s, 7)
		if string(svc.DataCertChain) != chain {
			t.Errorf("DataCertChain = %q, want %q", svc.DataCertChain, chain)
		}
		if string(svc.CACertChain) != "ca of 7" {
			t.Errorf("CACertChain = %q, want it unchanged", svc.CACertChain)
		}
		if svc.Updated.Before(svc.Created) {
			t.Errorf("updated %v before created %v", svc.Updated, svc.Created)
		}
	}
}

func testContractVersion(t *testing.T, s Store) {
	ctx := t.Context()
	err := s.SetContract(ctx, 9, 1, []byte(`{}`))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetContract of unknown service: err = %v, want ErrNotFound", err)
	}

	mustCreate(t, s, 9)
	// Whitespace and key order must survive: the contract is signed as stored.
	c1 := "{\"version\": 1,  \"name\":\"caf\u00e9\"}\n"
	c3 := `{"version":3}`
	steps := []struct {
		name         string
		version      int
		contract     string
		wantErr      error
		wantVersion  int
		wantContract string
	}{
		{"first", 1, c1, nil, 1, c1},
		{"equal", 1, `{"version":1,"evil":true}`, ErrStaleVersion, 1, c1},
		{"zero", 0, `{"version":0}`, ErrStaleVersion, 1, c1},
		{"negative", -5, `{"version":-5}`, ErrStaleVersion, 1, c1},
		{"skip ahead", 3, c3, nil, 3, c3},
		{"lower", 2, `{"version":2}`, ErrStaleVersion, 3, c3},
	}
	for _, st := range steps {
		err := s.SetContract(ctx, 9, st.version, []byte(st.contract))
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: SetContract: err = %v, want %v", st.name, err, st.wantErr)
		}

		svc := mustService(t, s, 9)
		if svc.Version != st.wantVersion || string(svc.Contract) != st.wantContract {
			t.Fatalf("%s: stored version %d %q, want %d %q", st.name,
				svc.Version, svc.Contract, st.wantVersion, st.wantContract)
		}
	}
}

func testListServices(t *testing.T, s Store) {
	ctx := t.Context()
	for _, id := range []uint32{7, 3, 9, 1, 5} {
		mustCreate(t, s, id)
	}
	for _, id := range []uint32{9, 3, 5} {
		contract := fmt.Appendf(nil, `{"id":%d}`, id)
		if err := s.SetContract(ctx, id, int(id)*10, contract); err != nil {
			t.Fatalf("SetContract(%d): %v", id, err)
		}
	}

	tests := []struct {
		skip, count int
		want        []uint32
	}{
		{0, 0, []uint32{3, 5, 9}},
		{0, -1, []uint32{3, 5, 9}},
		{0, 2, []uint32{3, 5}},
		{1, 1, []uint32{5}},
		{2, 5, []uint32{9}},
		{3, 0, nil},
		{10, 10, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("skip %d count %d", tt.skip, tt.count), func(t *testing.T) {
			list, err := s.Services(ctx, tt.skip, tt.count)
			if err != nil {
				t.Fatalf("Services: %v", err)
			}

			var ids []uint32
			for _, svc := range list {
				ids = append(ids, svc.ID)
				wantContract := fmt.Sprintf(`{"id":%d}`, svc.ID)
				if string(svc.Contract) != wantContract || svc.Version != int(svc.ID)*10 ||
					string(svc.CACertChain) != fmt.Sprintf("ca of %d", svc.ID) {
					t.Errorf("listed service %d = %+v", svc.ID, svc)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("Services ids = %v, want %v", ids, tt.want)
			}
		})
	}

	if _, err := s.Services(ctx, -1, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Services with negative skip: err = %v, want ErrInvalid", err)
	}
}

func testExtremeIDs(t *testing.T, s Store) {
	ctx := t.Context()
	ids := []uint32{^uint32(0), 4294929430, 0}
	for _, id := range ids {
		mustCreate(t, s, id)
		if err := s.SetContract(ctx, id, 1, []byte("{}")); err != nil {
			t.Fatalf("SetContract(%d): %v", id, err)
		}
		if svc := mustService(t, s, id); svc.ID != id {
			t.Errorf("Service(%d).ID = %d", id, svc.ID)
		}
	}

	list, err := s.Services(ctx, 0, 0)
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	var got []uint32
	for _, svc := range list {
		got = append(got, svc.ID)
	}
	if want := []uint32{0, 4294929430, 4294967295}; !slices.Equal(got, want) {
		t.Errorf("Services ids = %v, want %v", got, want)
	}
}

func testConcurrentContract(t *testing.T, s Store) {
	mustCreate(t, s, 11)
	for version := 1; version <= 3; version++ {
		raceContract(t, []Store{s}, 11, version)
	}
}

// raceContract has several goroutines, spread over stores, offer different
// contracts with the same version at once, and checks that exactly one wins.
func raceContract(t *testing.T, stores []Store, id uint32, version int) {
	t.Helper()
	const writers = 8

	var (
		start sync.WaitGroup
		done  sync.WaitGroup
		errs  [writers]error
	)
	start.Add(1)
	for i := range writers {
		done.Go(func() {
			start.Wait()
			body := fmt.Appendf(nil, `{"version":%d,"writer":%d}`, version, i)
			errs[i] = stores[i%len(stores)].SetContract(t.Context(), id, version, body)
		})
	}
	start.Done()
	done.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("version %d: writers %d and %d both won", version, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, ErrStaleVersion):
			t.Fatalf("version %d: writer %d: %v", version, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("version %d: no writer won", version)
	}

	svc := mustService(t, stores[0], id)
	want := fmt.Sprintf(`{"version":%d,"writer":%d}`, version, winner)
	if svc.Version != version || string(svc.Contract) != want {
		t.Fatalf("stored version %d %q, want %d %q", svc.Version, svc.Contract, version, want)
	}
}

func testEmptyBlobs(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.CreateService(ctx, 1, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateService with no chain: err = %v, want ErrInvalid", err)
	}

	mustCreate(t, s, 2)
	if err := s.SetServiceDataCert(ctx, 2, []byte{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetServiceDataCert with no chain: err = %v, want ErrInvalid", err)
	}
	if err := s.SetContract(ctx, 2, 1, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetContract with no contract: err = %v, want ErrInvalid", err)
	}

	if svc := mustService(t, s, 2); svc.DataCertChain != nil || svc.Version != 0 {
		t.Errorf("rejected writes changed the service: %+v", svc)
	}
}

// mustCreate creates service id with the CA chain "ca of <id>".
func mustCreate(t *testing.T, s Store, id uint32) {
	t.Helper()
	if err := s.CreateService(t.Context(), id, fmt.Appendf(nil, "ca of %d", id)); err != nil {
		t.Fatalf("CreateService(%d): %v", id, err)
	}
}

func mustService(t *testing.T, s Store, id uint32) Service {
	t.Helper()
	svc, err := s.Service(t.Context(), id)
	if err != nil {
		t.Fatalf("Service(%d): %v", id, err)
	}

	return svc
}

func TestIsPostgresSource(t *testing.T) {
	tests := []struct {
		source string
		want   bool
	}{
		{"postgres://u@127.0.0.1:5432/db?sslmode=disable", true},
		{"postgresql://u@127.0.0.1/db", true},
		{"host=127.0.0.1 port=5432 dbname=dir sslmode=disable", true},
		{"dbname=dir host=/run/postgresql", true},
		{"/var/lib/byoda/directory.db", false},
		{"directory.db", false},
		{"/data/host=a/directory.db", false},
		{"dbname=dir", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			if got := isPostgresSource(tt.source); got != tt.want {
				t.Errorf("isPostgresSource(%q) = %v, want %v", tt.source, got, tt.want)
			}
		})
	}
}

func TestOpenPicksSQLiteForPath(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "directory.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	if _, ok := s.(*SQLiteStore); !ok {
		t.Errorf("Open of a path returned %T, want *SQLiteStore", s)
	}
}
