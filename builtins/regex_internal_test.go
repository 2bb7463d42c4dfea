package builtins

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestLongStringSearchAgrees: a string too long to search in one go gives
// the matches regexp's FindAll gives, also for patterns that look at the
// rune before a match (^, \b) and for empty matches and invalid UTF-8.
func TestLongStringSearchAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "b", "ab", " ", "\n", "_", "é", "\xff", "\xe2\x82", "x"}
	var sb strings.Builder
	for sb.Len() < 6<<10 {
		sb.WriteString(pieces[rng.IntN(len(pieces))])
	}
	s := sb.String()
	// The reader searches the start of s, the string search its last
	// direct bytes.
	const direct = 1 << 10
	for _, expr := range []string{
		`a`, `^a`, `(?m)^a`, `(?m)^`, `$`, `(?m)$`, `\b`, `\B`, `\ba\w*`, `a*`, `(a)|(b)`, `y*`,
		`é+`, `(?i)A+`, ``, `(?s).`, `\xff`, `[^a]+`, `(a)(b)?`, `\Aa|b`, `a\z|b$`, `(?m)^x|\bb`, `ab`, `ab\b`, `é\xff`, `x\n`,
	} {
		p, err := compileRegex("re.findall", expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{-1, 7} {
			want := p.re.FindAllStringSubmatchIndex(s, n)
			var got [][]int
			if err := p.each(&poll{name: "test"}, s, n, direct, func(m []int) { got = append(got, slices.Clone(m)) }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Errorf("%q, n=%d: %d matches, want %d", expr, n, len(got), len(want))
				continue
			}
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("%q, n=%d: match %d at %v, want %v", expr, n, i, got[i], want[i])
					break
				}
			}
		}
	}
}
