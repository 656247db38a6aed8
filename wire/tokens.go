package wire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Tokens checks requests against a tokens file: one user a line, with the
// bcrypt hash of the user's token and, optionally, the commands the user
// may run (all when absent or "*"):
//
//	# USER:BCRYPT-HASH[:COMMAND,COMMAND...]
//	ann:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy
//	batch:$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3fPHSgH3.SfGkmp8q5iMIXe:get,put
//
// A request authenticates with its User and its token as Pass
// (client.Options.Credential sends them); `nsfd token` makes a token and
// its line, and `htpasswd -nbB USER TOKEN` makes a line too. It is the
// Perl framework's Auth (users, tokens) without its defects: the file holds
// slow, salted hashes, not md5 of the secrets, and there is no key compiled
// into the program.
//
// Why bcrypt: the tokens are random secrets that `nsfd token` makes, so a
// memory-hard hash (argon2id) would buy nothing against cracking over
// bcrypt's cost, while its memory per check (tens of MiB) would let a flood
// of wrong tokens exhaust a worker's memory limit; bcrypt checks in 4 KiB,
// compares in constant time, and its lines are what htpasswd writes.
//
// A check costs a bcrypt comparison (about 50 ms at the default cost) the
// first time a (user, token) pair is seen; a pair that matched is
// remembered, under an HMAC of the pair with a key made at random for each
// Tokens (the token itself is kept nowhere), so a hot path pays the hash
// once, not per request. A wrong token is never remembered: every guess
// pays the full hash. An unknown user is checked against a dummy hash, so
// that the time taken does not tell which users exist.
//
// The file is checked for changes at most once a second, at a request, and
// read again when it changed; what was remembered is forgotten then, so a
// removed user or a changed token stops working within a second. While the
// file does not load, every request is refused with CodeAuthentication.
type Tokens struct {
	// Logger receives why the file failed to load again; nil means
	// slog.Default().
	Logger *slog.Logger

	path string
	key  [32]byte // HMAC key of the cache of checked pairs

	mu      sync.RWMutex
	users   map[string]*tokenUser
	loadErr error // the last reload failed
	stamp   fileStamp
	checked time.Time
	ok      map[[32]byte]*tokenUser // pairs that matched
}

var _ Authenticator = (*Tokens)(nil)

// tokenUser is one line of the file.
type tokenUser struct {
	hash     []byte
	commands map[string]bool // nil: every command
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

const (
	// tokensCheckEvery is how often the file is checked for changes.
	tokensCheckEvery = time.Second
	// maxRemembered bounds the checked pairs kept; past it, they are all
	// forgotten.
	maxRemembered = 4096
	// maxToken is the longest token bcrypt can check.
	maxToken = 72
	// maxTokensFile bounds the file's size.
	maxTokensFile = 4 << 20
)

// LoadTokens reads the tokens file at path. Errors name the file and line;
// they never contain a hash.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path, ok: map[[32]byte]*tokenUser{}}
	if _, err := rand.Read(t.key[:]); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	users, stamp, err := readTokens(path)
	if err != nil {
		return nil, err
	}
	t.users, t.stamp, t.checked = users, stamp, time.Now()
	return t, nil
}

func readTokens(path string) (map[string]*tokenUser, fileStamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("tokens: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("tokens: %w", err)
	}
	if fi.Size() > maxTokensFile {
		return nil, fileStamp{}, fmt.Errorf("tokens: %s: larger than %d bytes", path, maxTokensFile)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fileStamp{}, fmt.Errorf("tokens: %w", err)
	}
	users, err := ParseTokens(path, data)
	if err != nil {
		return nil, fileStamp{}, err
	}
	return users2(users), stampOf(fi), nil
}

// users2 turns parsed lines into the lookup table.
func users2(lines []TokenLine) map[string]*tokenUser {
	m := make(map[string]*tokenUser, len(lines))
	for _, l := range lines {
		u := &tokenUser{hash: []byte(l.Hash)}
		if len(l.Commands) > 0 {
			u.commands = map[string]bool{}
			for _, c := range l.Commands {
				u.commands[c] = true
			}
		}
		m[l.User] = u
	}
	return m
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s
}

// TokenLine is one line of a tokens file.
type TokenLine struct {
	User     string
	Hash     string   // bcrypt
	Commands []string // empty: every command
}

// ParseTokens parses the text of a tokens file (name is for the errors,
// which say "name:line: ..."): blank lines and lines starting with # are
// skipped; every other line is USER:HASH[:COMMANDS]. A user may appear
// once; a user name is printable, without ':' or white space.
func ParseTokens(name string, data []byte) ([]TokenLine, error) {
	var (
		out  []TokenLine
		seen = map[string]int{}
		errs []error
		n    int
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), 64<<10)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, args...)))
		}
		parts := strings.Split(line, ":")
		if len(parts) < 2 || len(parts) > 3 {
			fail("want USER:HASH or USER:HASH:COMMANDS")
			continue
		}
		user, hash := parts[0], parts[1]
		if msg := checkUser(user); msg != "" {
			fail("%s", msg)
			continue
		}
		if first, dup := seen[user]; dup {
			fail("user %q again (first on line %d)", user, first)
			continue
		}
		seen[user] = n
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			fail("user %q: the hash is not bcrypt (make one with `nsfd token %s`)", user, user)
			continue
		}
		l := TokenLine{User: user, Hash: hash}
		if len(parts) == 3 && strings.TrimSpace(parts[2]) != "*" {
			for c := range strings.SplitSeq(parts[2], ",") {
				if c = strings.TrimSpace(c); c != "" {
					l.Commands = append(l.Commands, c)
				}
			}
			if len(l.Commands) == 0 {
				fail("user %q: no command listed (use * for all)", user)
				continue
			}
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, n+1, err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tokens: %w", errors.Join(errs...))
	}
	return out, nil
}

// checkUser returns what is wrong with a user name, or "".
func checkUser(u string) string {
	if u == "" {
		return "empty user name"
	}
	if len(u) > 256 {
		return "user name longer than 256 bytes"
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f || r == ':' {
			return fmt.Sprintf("user name %q has a space, a control character or ':'", u)
		}
	}
	return ""
}

// HashToken returns the bcrypt hash of token at bcrypt's default cost, for
// a tokens file's line. A token is at most 72 bytes.
func HashToken(token string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(token), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash token: %w", err)
	}
	return string(h), nil
}

// compareHash checks a token against its bcrypt hash, in constant time; a
// seam for the tests, which count the checks.
var compareHash = bcrypt.CompareHashAndPassword

// dummy is a hash that an unknown user's token is checked against, so that
// checking one takes as long as checking a known user's.
var dummy = sync.OnceValue(func() []byte {
	var b [16]byte
	rand.Read(b[:])
	h, _ := bcrypt.GenerateFromPassword(b[:], bcrypt.DefaultCost)
	return h
})

// Authorize is Authenticator's: see Tokens.
func (t *Tokens) Authorize(_ context.Context, req *Request) error {
	if req.User == "" || req.Pass == "" {
		return Errorf(CodeInvalidAuthInfo, "a user and a token are required")
	}
	if len(req.Pass) > maxToken || checkUser(req.User) != "" {
		return Errorf(CodeInvalidAuthInfo, "malformed user or token")
	}
	t.refresh()
	key := t.pairKey(req.User, req.Pass)
	t.mu.RLock()
	u, known, loadErr := t.ok[key], t.users[req.User], t.loadErr
	t.mu.RUnlock()
	if loadErr != nil {
		return Errorf(CodeAuthentication, "the daemon's tokens file does not load")
	}
	if u == nil || u != known {
		hash := dummy()
		if known != nil {
			hash = known.hash
		}
		if compareHash(hash, []byte(req.Pass)) != nil || known == nil {
			return Errorf(CodeAuthentication, "unknown user or wrong token")
		}
		t.remember(key, req.User, known)
		u = known
	}
	if u.commands != nil && !u.commands[req.Command] {
		return Errorf(CodeAuthorization, "user %q may not run %q", req.User, req.Command)
	}
	return nil
}

// pairKey is the cache's key of a (user, token) pair: an HMAC, so that the
// token is not kept and map lookups time nothing an attacker can steer.
func (t *Tokens) pairKey(user, token string) [32]byte {
	m := hmac.New(sha256.New, t.key[:])
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(token))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// remember records that the pair of key matched user u.
func (t *Tokens) remember(key [32]byte, user string, u *tokenUser) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.users[user] != u {
		return // the file was read again meanwhile
	}
	if len(t.ok) >= maxRemembered {
		clear(t.ok)
	}
	t.ok[key] = u
}

// refresh reads the file again if it changed, at most once per
// tokensCheckEvery.
func (t *Tokens) refresh() {
	t.mu.RLock()
	due := time.Since(t.checked) >= tokensCheckEvery
	t.mu.RUnlock()
	if !due {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checked) < tokensCheckEvery {
		return
	}
	t.checked = time.Now()
	fi, err := os.Stat(t.path)
	if err == nil && stampOf(fi) == t.stamp && t.loadErr == nil {
		return
	}
	users, stamp, err := readTokens(t.path)
	if err != nil {
		if t.loadErr == nil || t.loadErr.Error() != err.Error() {
			t.logger().Error("wire: tokens file does not load; refusing every request until it does", "error", err)
		}
		t.loadErr = err
		t.users = nil
		clear(t.ok)
		return
	}
	t.users, t.stamp, t.loadErr = users, stamp, nil
	clear(t.ok)
}

func (t *Tokens) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}
