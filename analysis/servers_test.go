package analysis

import (
	"regexp"
	"strings"
	"testing"
)

// TestServerGroupsMayNotOverlap: a pattern of one group that takes in the other's servers is refused,
// since its requests would be counted on the wrong side.
func TestServerGroupsMayNotOverlap(t *testing.T) {
	for _, c := range []struct {
		stable, canary []string
		overlap        bool
	}{
		{[]string{"stable*"}, []string{"canary*"}, false},
		{[]string{"app*"}, []string{"app-canary*"}, true},
		{[]string{"app-canary*"}, []string{"app*"}, true},
		{[]string{"app*"}, []string{"app-canary1"}, true},
		{[]string{"app1"}, []string{"app*"}, true},
		{[]string{"app1", "app2"}, []string{"canary1"}, false},
		{[]string{"s1"}, []string{"s1"}, true},
		{[]string{"stable*"}, []string{"canarystable1"}, false},
	} {
		err := checkServers(c.stable, c.canary)
		if got := err != nil; got != c.overlap {
			t.Errorf("%v / %v: error %v, want overlap %v", c.stable, c.canary, err, c.overlap)
		}
		if err != nil && !strings.Contains(err.Error(), "haproxy.") && !strings.Contains(err.Error(), "prefix") {
			t.Errorf("%v / %v: %v does not say what to fix", c.stable, c.canary, err)
		}
	}
}

// TestPrefixRegexp: the regex of a prefix matches exactly the names that begin with it, whatever
// characters the prefix holds, and holds no character that could end a regex literal.
func TestPrefixRegexp(t *testing.T) {
	for _, prefix := range []string{"stable", "s.t$(", "a/b", `x\y`, "ünï-", "[]{}*+?|^"} {
		re := prefixRegexp(prefix)
		if strings.ContainsAny(re, "/$") {
			t.Errorf("%q: regex %q holds a / or $", prefix, re)
		}
		r := regexp.MustCompile(re)
		for _, name := range []string{prefix, prefix + "1", prefix + "10"} {
			if !r.MatchString(name) {
				t.Errorf("%q: %q does not match %q", prefix, re, name)
			}
		}
		for _, name := range []string{"x" + prefix, prefix[:len(prefix)-1]} {
			if r.MatchString(name) {
				t.Errorf("%q: %q matches %q", prefix, re, name)
			}
		}
	}
}
