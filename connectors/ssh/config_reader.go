package ssh

// This file reads OpenSSH client config files for one host, as readconf.c
// does: the tokenizer (quotes, "=", comments), Host and Match blocks,
// Include, and a table of the keywords we honour, each validated even
// inside blocks that do not apply. config.go turns what it collects into
// settings.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// configReader evaluates ssh config files for one host.
type configReader struct {
	env     configEnv
	hostArg string // the host as named, for Match originalhost and %n
	// hostName is what Host lines match: hostArg, and in the final pass
	// the HostName, as ssh(1) re-reads its config after expanding it.
	hostName  string
	final     bool // the final pass: Match final and canonical hold
	wantFinal bool // a Match final was read: read everything again
	o         *sshOptions
	keywords  map[string]keywordFunc
}

func newConfigReader(env configEnv, host string, o *sshOptions) *configReader {
	return &configReader{env: env, hostArg: host, hostName: host, o: o, keywords: configKeywords()}
}

// configFile is one top-level config file and how it is read.
type configFile struct {
	path string
	fl   readFlags
}

// readFlags are OpenSSH's SSHCONF_* flags for one file.
type readFlags struct {
	explicit   bool   // named by ssh_config_file: a missing file is an error
	checkPerm  bool   // refuse files others can write (~/.ssh/config, Includes)
	neverMatch bool   // included from a block that does not apply: parse only
	includeDir string // where a relative Include is looked up ("" means ~/.ssh)
}

// read reads the files in order, each starting outside any block. When a
// file asked for "Match final", it reads them all again, as ssh(1) does:
// values already set stay (the first wins), Match final and canonical
// hold, and Host lines match the HostName.
func (r *configReader) read(files []configFile) error {
	for pass := 0; pass < 2; pass++ {
		for _, f := range files {
			active := true
			if err := r.readFile(f.path, &active, f.fl, 0); err != nil {
				return err
			}
		}
		if !r.wantFinal || r.final {
			return nil
		}
		if err := r.startFinal(); err != nil {
			return err
		}
	}
	return nil
}

// startFinal prepares the final pass: ssh(1) fixes the host name to the
// expanded HostName (lower-cased unless an address), so a HostName in a
// final block no longer changes it.
func (r *configReader) startFinal() error {
	h := r.hostArg
	if r.o.hostname.ok {
		var err error
		if h, err = expandHostname(r.o.hostname.v, r.hostArg); err != nil {
			return fmt.Errorf("%s: HostName: %w", r.o.hostname.from, err)
		}
	}
	if net.ParseIP(h) == nil {
		h = strings.ToLower(h)
	}
	r.o.hostname = opt[string]{v: strings.ReplaceAll(h, "%", "%%"), ok: true, from: "the host name"}
	r.final, r.hostName = true, h
	return nil
}

func (r *configReader) readFile(path string, active *bool, fl readFlags, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("ssh config %s: more than %d nested Includes (a loop?)", path, maxIncludeDepth)
	}
	what := "ssh config"
	if fl.explicit {
		what = "ssh_config_file"
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !fl.explicit {
			return nil
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if fl.checkPerm {
		if err := checkConfigPerm(f); err != nil {
			return err
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if err := r.line(path, i+1, line, active, fl, depth); err != nil {
			return err
		}
	}
	return nil
}

// checkConfigPerm refuses a config file that someone else could have
// written, as ssh(1) does for ~/.ssh/config and included files.
func checkConfigPerm(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("ssh config: %w", err)
	}
	bad := fi.Mode().Perm()&0o022 != 0
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		bad = true
	}
	if bad {
		return fmt.Errorf("ssh config %s: bad owner or permissions: it must belong to you and not be writable by others (chmod go-w %s)", f.Name(), f.Name())
	}
	return nil
}

// configLine is one config line, split, and the state it is read in.
type configLine struct {
	at      string   // file:line, for messages and for opt.from
	keyword string   // as written
	rest    string   // the text after the keyword and "=", unsplit
	args    []string // rest split as argv_split does
	active  *bool    // the current Host or Match block applies
	fl      readFlags
	depth   int // Include depth
}

// on reports whether a value on this line applies to the host.
func (l *configLine) on() bool { return *l.active && !l.fl.neverMatch }

// one returns the single argument of the keyword.
func (l *configLine) one() (string, error) {
	if len(l.args) != 1 {
		return "", fmt.Errorf("%s: %s takes one value, got %d (quote a value that contains spaces)", l.at, l.keyword, len(l.args))
	}
	return l.args[0], nil
}

// line processes one config line (readconf.c process_config_line_depth).
// Keywords we do not use are skipped without a word, as there are many and
// OpenSSH itself checks them.
func (r *configReader) line(file string, n int, text string, active *bool, fl readFlags, depth int) error {
	at := fmt.Sprintf("%s:%d", file, n)
	text = strings.TrimRight(text, " \t\r\n\f")
	text = strings.TrimLeft(text, " \t\r\n")
	if text == "" || text[0] == '#' {
		return nil
	}
	end := strings.IndexAny(text, " \t=\"")
	if end < 0 {
		end = len(text)
	}
	keyword, rest := text[:end], strings.TrimLeft(text[end:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	if rest == "" {
		return fmt.Errorf("%s: no value after %s", at, keyword)
	}
	args, err := splitArgs(rest)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", at, keyword, err)
	}
	handle, ok := r.keywords[strings.ToLower(keyword)]
	if !ok {
		return nil
	}
	return handle(r, &configLine{at: at, keyword: keyword, rest: rest, args: args, active: active, fl: fl, depth: depth})
}

// keywordFunc validates one keyword's line and, where the line applies,
// records its value.
type keywordFunc func(r *configReader, l *configLine) error

// configKeywords maps each keyword we honour, in lower case, to its
// handler (readconf.c's keywords[] table and the cases of its switch).
func configKeywords() map[string]keywordFunc {
	return map[string]keywordFunc{
		"host":                  (*configReader).hostKeyword,
		"match":                 (*configReader).matchKeyword,
		"include":               (*configReader).includeKeyword,
		"hostname":              oneValue(asIs, into(func(o *sshOptions) *opt[string] { return &o.hostname })),
		"user":                  oneValue(asIs, into(func(o *sshOptions) *opt[string] { return &o.user })),
		"hostkeyalias":          oneValue(asIs, into(func(o *sshOptions) *opt[string] { return &o.hostKeyAlias })),
		"identityagent":         oneValue(asIs, into(func(o *sshOptions) *opt[string] { return &o.identityAgent })),
		"identityfile":          oneValue(asIs, (*sshOptions).addIdentity),
		"identitiesonly":        oneValue(flagValue, into(func(o *sshOptions) *opt[bool] { return &o.identitiesOnly })),
		"forwardagent":          oneValue(forwardAgentValue, into(func(o *sshOptions) *opt[bool] { return &o.forwardAgent })),
		"port":                  oneValue(portValue, into(func(o *sshOptions) *opt[int] { return &o.port })),
		"stricthostkeychecking": oneValue(strictValue, into(func(o *sshOptions) *opt[string] { return &o.strict })),
		"connecttimeout":        oneValue(timeValue, into(func(o *sshOptions) *opt[time.Duration] { return &o.connectTimeout })),
		"serveraliveinterval":   oneValue(timeValue, into(func(o *sshOptions) *opt[time.Duration] { return &o.aliveInterval })),
		"serveralivecountmax":   oneValue(countValue, into(func(o *sshOptions) *opt[int] { return &o.aliveCountMax })),
		"proxyjump":             proxyJumpKeyword,
		"proxycommand":          proxyCommandKeyword,
		"userknownhostsfile":    knownHostsKeyword,
	}
}

// hostKeyword starts a Host block: it applies when some pattern matches
// the host and no negated one does.
func (r *configReader) hostKeyword(l *configLine) error {
	*l.active = false
	if l.fl.neverMatch {
		return nil
	}
	for _, p := range l.args {
		neg := strings.HasPrefix(p, "!")
		if matchPattern(r.hostName, strings.TrimPrefix(p, "!")) {
			if neg {
				*l.active = false
				break
			}
			*l.active = true
		}
	}
	return nil
}

// matchKeyword starts a Match block.
func (r *configReader) matchKeyword(l *configLine) error {
	m, err := r.match(l.at, l.args, l.fl.neverMatch)
	if err != nil {
		return err
	}
	*l.active = m && !l.fl.neverMatch
	return nil
}

// includeKeyword reads the files that match each glob, in place. A
// relative name is looked up in ~/.ssh for the user's config and beside
// the system-wide config for that one, as for ssh(1).
func (r *configReader) includeKeyword(l *configLine) error {
	dir := l.fl.includeDir
	if dir == "" {
		dir = "~/.ssh"
	}
	for _, a := range l.args {
		pat := a
		if !strings.HasPrefix(a, "~") && !filepath.IsAbs(a) {
			pat = dir + "/" + a
		}
		pat, err := expandTilde(pat, r.env.Home)
		if err != nil {
			return fmt.Errorf("%s: Include: %w", l.at, err)
		}
		files, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("%s: Include %s: %w", l.at, a, err)
		}
		was := *l.active
		for _, f := range files {
			sub := readFlags{checkPerm: true, neverMatch: l.fl.neverMatch || !was, includeDir: l.fl.includeDir}
			if err := r.readFile(f, l.active, sub, l.depth+1); err != nil {
				return err
			}
			*l.active = was // Host and Match lines inside do not leak out
		}
	}
	return nil
}

// oneValue handles a keyword of one value: parse checks it (on every
// line, as ssh(1) does) and record keeps it where the line applies. parse
// returns false for a value that leaves the option unset.
func oneValue[T any](parse func(l *configLine, v string) (T, bool, error), record func(o *sshOptions, v T, at string)) keywordFunc {
	return func(r *configReader, l *configLine) error {
		v, err := l.one()
		if err != nil {
			return err
		}
		x, set, err := parse(l, v)
		if err != nil || !set || !l.on() {
			return err
		}
		record(r.o, x, l.at)
		return nil
	}
}

// into records a value in an option, unless it is already set.
func into[T any](field func(*sshOptions) *opt[T]) func(o *sshOptions, v T, at string) {
	return func(o *sshOptions, v T, at string) { field(o).set(v, at) }
}

// asIs keeps a value as written.
func asIs(_ *configLine, v string) (string, bool, error) { return v, true, nil }

func flagValue(l *configLine, v string) (bool, bool, error) {
	b, ok := parseFlag(v)
	if !ok {
		return false, false, fmt.Errorf("%s: %s %s: want yes or no", l.at, l.keyword, v)
	}
	return b, true, nil
}

// forwardAgentValue takes yes or no; OpenSSH's other form, a socket to
// forward instead of the agent's, is refused with the way out.
func forwardAgentValue(l *configLine, v string) (bool, bool, error) {
	b, ok := parseFlag(v)
	if !ok {
		return false, false, fmt.Errorf("%s: %s %s: star-deploy forwards only the agent it uses (IdentityAgent or SSH_AUTH_SOCK): want yes or no", l.at, l.keyword, v)
	}
	return b, true, nil
}

func portValue(l *configLine, v string) (int, bool, error) {
	p, err := strconv.Atoi(v)
	if err != nil {
		p, err = net.LookupPort("tcp", v) // ssh(1) takes service names too
	}
	if err != nil || p < 1 || p > 65535 {
		return 0, false, fmt.Errorf("%s: %s %s: want a port number from 1 to 65535", l.at, l.keyword, v)
	}
	return p, true, nil
}

func strictValue(l *configLine, v string) (string, bool, error) {
	s, err := parseStrictness(v)
	if err != nil {
		return "", false, fmt.Errorf("%s: %s: %w (ask counts as yes)", l.at, l.keyword, err)
	}
	return s, true, nil
}

// timeValue parses a time; none leaves the option unset, as in ssh(1), so
// that a later line may still set it.
func timeValue(l *configLine, v string) (time.Duration, bool, error) {
	if strings.EqualFold(v, "none") {
		return 0, false, nil
	}
	d, ok := parseConvtime(v)
	if !ok {
		return 0, false, fmt.Errorf("%s: %s %s: want seconds, or a time such as 30s, 5m or 1h30m", l.at, l.keyword, v)
	}
	return d, true, nil
}

func countValue(l *configLine, v string) (int, bool, error) {
	c, err := strconv.Atoi(v)
	if err != nil || c < 0 {
		return 0, false, fmt.Errorf("%s: %s %s: want a count, 0 or more", l.at, l.keyword, v)
	}
	return c, true, nil
}

// proxyJumpKeyword takes the whole rest of the line, as ssh(1) reads it.
// ProxyJump and ProxyCommand exclude each other: the first one read wins.
func proxyJumpKeyword(r *configReader, l *configLine) error {
	v, _, _ := strings.Cut(l.rest, "#")
	hops, err := parseJump(v)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", l.at, l.keyword, err)
	}
	if l.on() && !r.o.proxyCommand.ok {
		r.o.proxyJump.set(hops, l.at)
	}
	return nil
}

func proxyCommandKeyword(r *configReader, l *configLine) error {
	if l.on() && !r.o.proxyJump.ok {
		r.o.proxyCommand.set(l.rest, l.at)
	}
	return nil
}

func knownHostsKeyword(r *configReader, l *configLine) error {
	for i, a := range l.args {
		if strings.EqualFold(a, "none") && (i > 0 || len(l.args) > 1) {
			return fmt.Errorf("%s: %s: none must stand alone", l.at, l.keyword)
		}
	}
	if l.on() {
		r.o.knownHosts.set(l.args, l.at)
	}
	return nil
}

// match evaluates the criteria of a Match line (readconf.c
// match_cfg_line). final holds only in the final pass, which it asks for.
// Criteria we cannot evaluate (exec, canonical outside the final pass,
// ...) are an error only when the line would otherwise apply, so a config
// that uses them for other hosts keeps working.
func (r *configReader) match(at string, args []string, neverMatch bool) (bool, error) {
	if len(args) == 0 {
		return false, fmt.Errorf("%s: Match needs criteria: all, host, originalhost, user or localuser", at)
	}
	result, attributes, passes := true, 0, 0
	var unsupported []string
	for i := 0; i < len(args); i++ {
		crit := args[i]
		neg := strings.HasPrefix(crit, "!")
		name := strings.ToLower(strings.TrimPrefix(crit, "!"))
		if name == "all" {
			if attributes > passes || i != len(args)-1 { // only "canonical all" or "final all"
				return false, fmt.Errorf("%s: Match all cannot be combined with other criteria", at)
			}
			if neg {
				result = false
			}
			break
		}
		attributes++
		if name == "canonical" || name == "final" {
			passes++
			switch {
			case r.final:
				if neg {
					result = false
				}
			case name == "final":
				r.wantFinal = r.wantFinal || !neg
				if !neg {
					result = false
				}
			default:
				unsupported = append(unsupported, crit)
			}
			continue
		}
		if i+1 == len(args) {
			return false, fmt.Errorf("%s: Match %s needs a value", at, crit)
		}
		i++
		ok, known, err := r.criterion(name, args[i])
		if err != nil {
			return false, err
		}
		switch {
		case known == criterionUnknown:
			return false, fmt.Errorf("%s: unknown Match criterion %q; write all, host, originalhost, user or localuser", at, crit)
		case known == criterionUnsupported:
			unsupported = append(unsupported, crit+" "+strconv.Quote(args[i]))
		case ok == neg:
			result = false
		}
	}
	if result && len(unsupported) > 0 && !neverMatch {
		return false, fmt.Errorf("%s: Match %s: not supported by star-deploy's SSH connector, which evaluates all, final, host, originalhost, user and localuser; put these settings under Host or Match host patterns, or in connector data", at, strings.Join(unsupported, " "))
	}
	return result, nil
}

// What criterion knows of a Match criterion's name.
const (
	criterionKnown = iota
	criterionUnsupported
	criterionUnknown
)

// criterion evaluates one Match criterion that takes a value.
func (r *configReader) criterion(name, arg string) (ok bool, known int, err error) {
	switch name {
	case "host":
		h := r.hostArg
		if r.o.hostname.ok {
			if h, err = expandHostname(r.o.hostname.v, r.hostArg); err != nil {
				return false, criterionKnown, fmt.Errorf("%s: HostName: %w", r.o.hostname.from, err)
			}
		}
		return matchPatternList(strings.ToLower(h), arg, true), criterionKnown, nil
	case "originalhost":
		return matchPatternList(strings.ToLower(r.hostArg), arg, true), criterionKnown, nil
	case "user":
		u := r.env.User
		if r.o.user.ok {
			u = r.o.user.v
		}
		return matchPatternList(u, arg, false), criterionKnown, nil
	case "localuser":
		return matchPatternList(r.env.User, arg, false), criterionKnown, nil
	case "exec", "tagged", "command", "version", "sessiontype", "localnetwork":
		return false, criterionUnsupported, nil
	}
	return false, criterionUnknown, nil
}

// parseFlag parses a yes/no keyword value, case-insensitively.
func parseFlag(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

// parseConvtime parses an ssh_config time ("30", "30s", "1m30s", "1h",
// "2d", "1w"), as OpenSSH's convtime.
func parseConvtime(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var total time.Duration
	for v != "" {
		i := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(v[:i], 10, 32)
		if err != nil {
			return 0, false
		}
		unit := time.Second
		v = v[i:]
		if v != "" {
			switch v[0] {
			case 's', 'S':
			case 'm', 'M':
				unit = time.Minute
			case 'h', 'H':
				unit = time.Hour
			case 'd', 'D':
				unit = 24 * time.Hour
			case 'w', 'W':
				unit = 7 * 24 * time.Hour
			default:
				return 0, false
			}
			v = v[1:]
		}
		total += time.Duration(n) * unit
		if total > (1<<31-1)*time.Second {
			return 0, false
		}
	}
	return total, true
}

// splitArgs splits the arguments of a config line like OpenSSH's
// argv_split: whitespace-separated, "double" or 'single' quotes, \\ \" \'
// and "\ " escapes, and a # at the start of an argument ends the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				b.WriteByte(c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		args = append(args, b.String())
	}
	return args, nil
}

// matchPatternList matches s against a comma-separated list of patterns
// (ssh's match_pattern_list): true when some pattern matches and no
// negated (!) one does. lower folds the patterns to lower case.
func matchPatternList(s, list string, lower bool) bool {
	positive := false
	for p := range strings.SplitSeq(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if lower {
			p = strings.ToLower(p)
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

// matchPattern matches s against a pattern of * (any run) and ? (any one
// byte), case-sensitively, as ssh's match_pattern.
func matchPattern(s, p string) bool {
	// Iterative glob with single-star backtracking.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
