package release

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewID returns a release ID that sorts by start time and is unique enough to tell concurrent releases
// apart: "r20261122-143005-9f3a".
func NewID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "r" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}
