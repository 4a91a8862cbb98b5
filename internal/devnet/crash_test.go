package devnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/byoda/byoda-go/internal/contracts"
	"github.com/byoda/byoda-go/internal/pki"
	"github.com/byoda/byoda-go/internal/testnet"
)

// TestCrashDuringAppends kills a pod with SIGKILL while a client streams
// appends to it: after the devnet restarts the pod, every append the pod
// acknowledged is there.
func TestCrashDuringAppends(t *testing.T) {
	bin := testnet.BuildByoda(t)
	cfg := Config{Dir: t.TempDir(), Pods: 1, Contracts: [][]byte{contracts.AddressBook()},
		Binary: bin}
	info, stop := runDevnet(t, cfg)
	defer stop()

	pod := info.Pods[0]
	m := pod.Members[0]
	c := podClient(t, info, m.Cert, m.Key, pki.MemberName(info.Network, m.MemberID,
		m.ServiceID).String())
	url := fmt.Sprintf("%s/api/v1/data/%d/network_assets/append", pod.PodURL, m.ServiceID)
	appendOne := func(id string) bool {
		body, _ := json.Marshal(map[string]any{"data": map[string]any{
			"asset_id": id, "asset_type": "note",
			"created_timestamp": time.Now().UTC().Format(time.RFC3339Nano)}})
		resp, err := c.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	pid := podPID(t, pod.RootDir)
	var acked []string
	for i := 0; i < 400; i++ {
		id := uuid.NewString()
		if appendOne(id) {
			acked = append(acked, id)
		}
		if i == 150 {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(acked) < 150 {
		t.Fatalf("only %d appends acknowledged before the crash", len(acked))
	}

	waitFor(t, 60*time.Second, func() bool {
		p := podPID(t, pod.RootDir)
		return p != 0 && p != pid && readyz(t, info, 0) == nil
	})

	stored := map[string]bool{}
	after := ""
	for range 100 {
		body, _ := json.Marshal(map[string]any{"first": 1000, "after": after})
		resp, err := c.Post(fmt.Sprintf("%s/api/v1/data/%d/network_assets/query", pod.PodURL,
			m.ServiceID), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Edges []struct {
				Node map[string]any `json:"node"`
			} `json:"edges"`
			PageInfo struct {
				HasNextPage bool   `json:"has_next_page"`
				EndCursor   string `json:"end_cursor"`
			} `json:"page_info"`
		}
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		for _, e := range page.Edges {
			id, _ := e.Node["asset_id"].(string)
			stored[id] = true
		}
		if !page.PageInfo.HasNextPage {
			break
		}
		after = page.PageInfo.EndCursor
	}

	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged append %s is missing after the crash (%d acknowledged, "+
				"%d stored)", id, len(acked), len(stored))
		}
	}
	t.Logf("%d appends acknowledged, %d stored after kill -9", len(acked), len(stored))
}
