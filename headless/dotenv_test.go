package headless

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDotenv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.env")
	if err := writeDotenv(path, map[string]string{"B": "two\nlines", "A": "1"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if string(raw) != "A=1\nB=two lines\n" {
		t.Errorf("dotenv %q", raw)
	}
}
