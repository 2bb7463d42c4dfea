// Package spell suggests the known name nearest to a misspelt one, for the
// "did you mean" of error messages: undefined names in scripts, unknown
// facts, stdlib modules and operations, and subcommands.
package spell

import "strings"

// Nearest returns the candidate closest to name, ignoring case, or "" when
// none is close enough to be a likely typo: at most one edit for names of
// up to three letters, two for longer ones (a swap of two neighbouring
// letters is one edit). Ties go to the earlier candidate.
func Nearest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	limit := 1
	if len([]rune(name)) > 3 {
		limit = 2
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := distance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of neighbours.
func distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// rows i-2, i-1 and i of the table
	prev2, prev, cur := make([]int, len(y)+1), make([]int, len(y)+1), make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}

// Suffix is " (did you mean NEAREST?)" for the candidate nearest to name,
// or "" when there is none.
func Suffix(name string, candidates []string) string {
	if n := Nearest(name, candidates); n != "" {
		return " (did you mean " + n + "?)"
	}
	return ""
}
