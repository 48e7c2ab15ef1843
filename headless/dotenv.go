package headless

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// writeDotenv writes vars to path as a dotenv file for later CI jobs (GitLab's
// artifacts:reports:dotenv), one KEY=value line each, sorted by key.
func writeDotenv(path string, vars map[string]string) error {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		// dotenv values are single-line; GitLab reads them unquoted.
		fmt.Fprintf(&b, "%s=%s\n", k, strings.Join(strings.Fields(vars[k]), " "))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
