package testnet

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildByoda builds the byoda binary into a temporary directory of t and
// returns its path, for tests that run it as its own process.
func BuildByoda(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "byoda")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/byoda/byoda-go/cmd/byoda")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building byoda: %v\n%s", err, out)
	}
	return bin
}
