package builtins

import (
	"fmt"
	"testing"
)

// TestRegexCacheIsBounded: scripts with ever new patterns do not grow the
// process's cache without end.
func TestRegexCacheIsBounded(t *testing.T) {
	for i := range 3 * maxCachedRegexps {
		if _, err := compileRegex("re.search", fmt.Sprintf("^bounded-%d$", i)); err != nil {
			t.Fatal(err)
		}
	}
	regexCache.Lock()
	n := len(regexCache.m)
	regexCache.Unlock()
	if n > maxCachedRegexps {
		t.Errorf("%d patterns cached, want at most %d", n, maxCachedRegexps)
	}
}
