package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/verify"
)

// keysSecret is the JWT_SECRET every instance and every keys command of a
// test shares: the private keys are sealed under it. A fixture.
const keysSecret = "keys-test-master-secret-0123456789abcdef"

// keysDB starts an embedded database for the test, shared by every server
// and keys command the test runs (each on a database of its own name), and
// returns its URI. It stops after the servers the test started.
func keysDB(t *testing.T) string {
	t.Helper()
	db, err := devdb.Start(filepath.Join(t.TempDir(), "db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	return db.URI()
}

// keysEnv is the environment of a server (or keys command) on database name
// of uri, in development mode, plus extra (key, value pairs).
func keysEnv(t *testing.T, uri, name string, extra ...string) map[string]string {
	t.Helper()
	env := map[string]string{
		"HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": t.TempDir(),
		"MONGODB_URI": uri, "MONGODB_DATABASE": name, "JWT_SECRET": keysSecret,
		"BCRYPT_COST": "10", "RATE_LIMIT_LOGIN": "off", "RATE_LIMIT_REGISTER": "off", "RATE_LIMIT_REFRESH": "off",
		"MAIL_DISABLED": "true",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// keysWith is env plus extra (key, value pairs), env unchanged.
func keysWith(env map[string]string, extra ...string) map[string]string {
	out := make(map[string]string, len(env)+len(extra)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// keysFreePort is a loopback port nothing listens on (just now).
func keysFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startKeys is start, stopped (and its error checked) when the test ends,
// before the database it uses.
func startKeys(t *testing.T, env map[string]string) string {
	t.Helper()
	base, out, stop := start(t, env)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("%s: run after cancel: %v\n%s", base, err, out.String())
		}
	})
	return base
}

// keysCmd runs "server keys args..." with env, as an operator would.
func keysCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, append([]string{"server", "keys"}, args...), fakeEnv(env), &out, &out)
	return out.String(), err
}

// keysRow is a row of the keys list table.
type keysRow struct{ KID, Alg, State string }

// keysListed reads the last keys table in out (rotate and revoke print one after
// their own line; the log lines around it start with time=).
func keysListed(t *testing.T, out string) []keysRow {
	t.Helper()
	lines := strings.Split(out, "\n")
	head := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "KID ") {
			head = i
		}
	}
	if head < 0 {
		t.Fatalf("no keys table in:\n%s", out)
	}
	var rows []keysRow
	for _, l := range lines[head+1:] {
		f := strings.Fields(l)
		if len(f) < 7 || strings.HasPrefix(l, "time=") {
			break
		}
		rows = append(rows, keysRow{KID: f[0], Alg: f[1], State: f[2]})
	}
	return rows
}

// keysStateOf is the state of kid in rows ("" when absent).
func keysStateOf(rows []keysRow, kid string) string {
	for _, r := range rows {
		if r.KID == kid {
			return r.State
		}
	}
	return ""
}

// keysTokenHeader decodes the header of a compact JWT.
func keysTokenHeader(t *testing.T, raw string) (kid, alg string) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct{ Kid, Alg string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid, h.Alg
}

func keysKID(t *testing.T, raw string) string {
	t.Helper()
	kid, _ := keysTokenHeader(t, raw)
	if kid == "" {
		t.Fatalf("token without kid: %s", raw)
	}
	return kid
}

// keysPublished are the kids of base's JWKS.
func keysPublished(t *testing.T, base string) []string {
	t.Helper()
	res, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/.well-known/jwks.json: %d", base, res.StatusCode)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if _, private := k["d"]; private {
			t.Errorf("%s publishes a private key part", base)
		}
		kid, _ := k["kid"].(string)
		kids = append(kids, kid)
	}
	return kids
}

func keysRegister(t *testing.T, base, name string) {
	t.Helper()
	resp := gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken } }`,
		map[string]any{"i": map[string]any{"username": name, "email": name + "@example.com", "password": fixturePassword}})
	field(t, resp, "register", "accessToken")
}

func keysLogin(t *testing.T, base, name string) string {
	t.Helper()
	resp := gql(t, base, "", `mutation($i: LoginInput!) { login(input: $i) { accessToken } }`,
		map[string]any{"i": map[string]any{"username": name, "password": fixturePassword}})
	return field(t, resp, "login", "accessToken")
}

// keysSession is a signed-in session on one instance: refresh gives a new
// access token without the cost of a password check, so a test can poll
// which key an instance signs with.
type keysSession struct {
	base, refresh string
}

func keysSignIn(t *testing.T, base, name string) *keysSession {
	t.Helper()
	resp := gql(t, base, "", `mutation($i: LoginInput!) { login(input: $i) { refreshToken } }`,
		map[string]any{"i": map[string]any{"username": name, "password": fixturePassword}})
	return &keysSession{base: base, refresh: field(t, resp, "login", "refreshToken")}
}

// token is a new access token of the session, signed now.
func (s *keysSession) token(t *testing.T) string {
	t.Helper()
	resp := gql(t, s.base, "", `mutation($r: String!) { refreshToken(token: $r) { accessToken refreshToken } }`,
		map[string]any{"r": s.refresh})
	s.refresh = field(t, resp, "refreshToken", "refreshToken")
	return field(t, resp, "refreshToken", "accessToken")
}

// keysMe asks base who holds tok: the user id, or the error code and reason.
func keysMe(t *testing.T, base, tok string) (id, code, reason string) {
	t.Helper()
	resp := gql(t, base, tok, `{ me { id } }`, nil)
	if errs, ok := resp["errors"].([]any); ok && len(errs) > 0 {
		e, _ := errs[0].(map[string]any)
		ext, _ := e["extensions"].(map[string]any)
		code, _ = ext["code"].(string)
		reason, _ = ext["reason"].(string)
		return "", code, reason
	}
	return field(t, resp, "me", "id"), "", ""
}

// keysEventually polls cond until it holds or within has passed, and returns how
// long it took.
func keysEventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		if cond() {
			took := time.Since(begin)
			t.Logf("%s: after %v", what, took.Round(time.Millisecond))
			if took > within {
				t.Fatalf("%s: after %v, want within %v", what, took.Round(time.Millisecond), within)
			}
			return took
		}
		if time.Since(begin) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// keysTwoInstances starts A and B on one database, with A's URL as the public URL
// and issuer of both, so that a token of either verifies on both.
func keysTwoInstances(t *testing.T, name string) (a, b string, env map[string]string) {
	t.Helper()
	uri := keysDB(t)
	portA, portB := keysFreePort(t), keysFreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(portA)
	env = keysEnv(t, uri, name, "PUBLIC_URL", url, "JWT_ISSUER", url,
		"REVOCATION_SYNC_INTERVAL", "200ms", "ACCESS_TOKEN_TTL", "1m")
	a = startKeys(t, keysWith(env, "PORT", strconv.Itoa(portA)))
	b = startKeys(t, keysWith(env, "PORT", strconv.Itoa(portB)))
	if a != url {
		t.Fatalf("A listens at %s, want %s", a, url)
	}
	return a, b, env
}

// TestKeysListFreshDatabase: on a fresh database "keys list" shows no key
// and creates none (looking changes nothing); the first server creates the
// first key, ES256 and current, signs with it, and "keys list" shows it.
func TestKeysListFreshDatabase(t *testing.T) {
	env := keysEnv(t, keysDB(t), "fresh")
	out, err := keysCmd(t, env, "list")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if rows := keysListed(t, out); len(rows) != 0 || !strings.Contains(out, "no signing keys yet") {
		t.Fatalf("keys list on a fresh database: got %+v, want none and a hint\n%s", rows, out)
	}

	base := startKeys(t, env)
	keysRegister(t, base, "lister")
	out, err = keysCmd(t, env, "list")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	rows := keysListed(t, out)
	if len(rows) != 1 || rows[0].Alg != "ES256" || rows[0].State != "current" {
		t.Fatalf("keys list after the first server started: got %+v, want one current ES256 key\n%s", rows, out)
	}
	kid, alg := keysTokenHeader(t, keysLogin(t, base, "lister"))
	if kid != rows[0].KID || alg != "ES256" {
		t.Errorf("token header kid %q alg %q, want the listed key %q, ES256", kid, alg, rows[0].KID)
	}
	if got := keysPublished(t, base); !slices.Equal(got, []string{rows[0].KID}) {
		t.Errorf("JWKS kids = %v, want [%s]", got, rows[0].KID)
	}
	// Listing again, the server running, changes nothing.
	out, err = keysCmd(t, env, "list")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if again := keysListed(t, out); !slices.Equal(again, rows) {
		t.Errorf("second keys list = %+v, want %+v", again, rows)
	}
}

// TestKeysRotationAcrossInstances: "keys rotate" publishes a successor on
// every instance before it signs; "keys rotate --now" makes every instance
// sign with a new key within the sync interval, and tokens of the old key
// keep working on both.
func TestKeysRotationAcrossInstances(t *testing.T) {
	a, b, env := keysTwoInstances(t, "rotation")
	keysRegister(t, a, "rotor")
	t1 := keysLogin(t, a, "rotor")
	k1 := keysKID(t, t1)
	if got := keysKID(t, keysLogin(t, b, "rotor")); got != k1 {
		t.Fatalf("B signs with %s, A with %s: one database, one key", got, k1)
	}
	userID, _, _ := keysMe(t, a, t1)
	sessions := []*keysSession{keysSignIn(t, a, "rotor"), keysSignIn(t, b, "rotor")}

	out, err := keysCmd(t, env, "rotate")
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	rows := keysListed(t, out)
	if len(rows) != 2 || rows[0].KID != k1 || rows[0].State != "current" || rows[1].State != "next" {
		t.Fatalf("after keys rotate: %+v, want %s current and a next key\n%s", rows, k1, out)
	}
	k2 := rows[1].KID
	if !strings.Contains(out, "created "+k2) {
		t.Errorf("keys rotate does not say it created %s:\n%s", k2, out)
	}
	keysEventually(t, time.Second, "the next key in both JWKS", func() bool {
		return slices.Contains(keysPublished(t, a), k2) && slices.Contains(keysPublished(t, b), k2)
	})
	for _, base := range []string{a, b} {
		if got := keysKID(t, keysLogin(t, base, "rotor")); got != k1 {
			t.Errorf("%s: a login after keys rotate signs with %s, want %s until the next key's time", base, got, k1)
		}
	}
	for _, s := range sessions {
		if got := keysKID(t, s.token(t)); got != k1 {
			t.Errorf("%s: a refresh after keys rotate signs with %s, want %s until the next key's time", s.base, got, k1)
		}
	}

	out, err = keysCmd(t, env, "rotate", "--now")
	if err != nil {
		t.Fatalf("keys rotate --now: %v\n%s", err, out)
	}
	rows = keysListed(t, out)
	if len(rows) != 3 || rows[2].State != "current" || keysStateOf(rows, k1) != "retired" {
		t.Fatalf("after keys rotate --now: %+v, want %s retired and a third key current\n%s", rows, k1, out)
	}
	k3 := rows[2].KID
	switched := map[string]bool{}
	keysEventually(t, time.Second, "new tokens on both instances signed with the newest key", func() bool {
		for _, s := range sessions {
			switched[s.base] = switched[s.base] || keysKID(t, s.token(t)) == k3
		}
		return switched[a] && switched[b]
	})
	tokens := map[string]string{}
	for _, base := range []string{a, b} {
		tok := keysLogin(t, base, "rotor")
		if got := keysKID(t, tok); got != k3 {
			t.Errorf("%s: a login after keys rotate --now signs with %s, want %s", base, got, k3)
		}
		tokens[base] = tok
	}
	for _, base := range []string{a, b} {
		if id, code, _ := keysMe(t, base, t1); id != userID {
			t.Errorf("%s: me with the token of the retired key %s: id %q code %q, want %q", base, k1, id, code, userID)
		}
		for from, tok := range tokens {
			if id, code, _ := keysMe(t, base, tok); id != userID {
				t.Errorf("%s: me with a token of %s from %s: id %q code %q, want %q", base, k3, from, id, code, userID)
			}
		}
		kids := keysPublished(t, base)
		if !slices.Contains(kids, k1) || !slices.Contains(kids, k3) {
			t.Errorf("%s: JWKS kids %v, want both %s (retired, its tokens live) and %s (current)", base, kids, k1, k3)
		}
	}
}

// TestKeysRevokeAcrossInstances: "keys revoke" of the signing key makes every
// instance refuse its tokens (even ones it verified before) and drop it from
// the JWKS within the bound, and sign with a successor.
func TestKeysRevokeAcrossInstances(t *testing.T) {
	a, b, env := keysTwoInstances(t, "revoke")
	keysRegister(t, a, "revoker")
	old := map[string]string{a: keysLogin(t, a, "revoker"), b: keysLogin(t, b, "revoker")}
	k1 := keysKID(t, old[a])
	if got := keysKID(t, old[b]); got != k1 {
		t.Fatalf("B signs with %s, A with %s", got, k1)
	}
	userID, _, _ := keysMe(t, a, old[a])
	for _, base := range []string{a, b} {
		for _, tok := range old { // each instance has verified (and remembers) both
			if id, code, _ := keysMe(t, base, tok); id != userID {
				t.Fatalf("%s: me before the revocation: id %q code %q", base, id, code)
			}
		}
	}

	out, err := keysCmd(t, env, "revoke", k1)
	if err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, out)
	}
	rows := keysListed(t, out)
	if len(rows) != 2 || keysStateOf(rows, k1) != "revoked" || rows[1].State != "current" {
		t.Fatalf("after keys revoke: %+v, want %s revoked and a successor current\n%s", rows, k1, out)
	}
	k2 := rows[1].KID
	keysEventually(t, 2*time.Second, "both instances refuse tokens of the revoked key and leave it out of the JWKS", func() bool {
		for _, base := range []string{a, b} {
			if slices.Contains(keysPublished(t, base), k1) {
				return false
			}
			for _, tok := range old {
				if _, code, _ := keysMe(t, base, tok); code != "UNAUTHENTICATED" {
					return false
				}
			}
		}
		return true
	})
	for _, base := range []string{a, b} {
		if _, code, reason := keysMe(t, base, old[a]); code != "UNAUTHENTICATED" || reason != "token_invalid" {
			t.Errorf("%s: a token of the revoked key: code %q reason %q, want UNAUTHENTICATED token_invalid", base, code, reason)
		}
	}
	fresh := map[string]string{}
	for _, base := range []string{a, b} {
		tok := keysLogin(t, base, "revoker")
		if got := keysKID(t, tok); got != k2 {
			t.Errorf("%s: a login after the revocation signs with %s, want the successor %s", base, got, k2)
		}
		fresh[base] = tok
	}
	for _, base := range []string{a, b} {
		for from, tok := range fresh {
			if id, code, _ := keysMe(t, base, tok); id != userID {
				t.Errorf("%s: me with a new token from %s: id %q code %q, want %q", base, from, id, code, userID)
			}
		}
		if kids := keysPublished(t, base); !slices.Equal(kids, []string{k2}) {
			t.Errorf("%s: JWKS kids %v, want [%s]", base, kids, k2)
		}
	}
	// Revoking it again changes nothing: no error, no further key.
	out, err = keysCmd(t, env, "revoke", k1)
	if err != nil {
		t.Fatalf("keys revoke of a revoked key: %v\n%s", err, out)
	}
	if rows := keysListed(t, out); len(rows) != 2 || keysStateOf(rows, k1) != "revoked" || keysStateOf(rows, k2) != "current" {
		t.Errorf("after revoking %s again: %+v, want it revoked and %s current, nothing else", k1, rows, k2)
	}
}

// keysStored reads the signing_keys collection of database name: each
// document's _id (the key's generation), kid and revoked_at.
func keysStored(t *testing.T, uri, name string) []bson.M {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := client.Database(name).Collection("signing_keys").Find(ctx, bson.D{},
		options.Find().SetProjection(bson.D{{Key: "kid", Value: 1}, {Key: "revoked_at", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestKeysFirstKeyOnce: instances that start at once on an empty database
// create one first key between them, which both sign with.
func TestKeysFirstKeyOnce(t *testing.T) {
	uri := keysDB(t)
	const rounds, instances = 4, 2
	for round := range rounds {
		name := fmt.Sprintf("first%d", round)
		env := keysEnv(t, uri, name)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel) // on a failure, before the database stops
		type instance struct {
			addrFile string
			out      *syncBuffer
			done     chan error
		}
		var all []instance
		gate := make(chan struct{})
		var ready sync.WaitGroup
		for range instances {
			in := instance{addrFile: filepath.Join(t.TempDir(), "addr"), out: &syncBuffer{}, done: make(chan error, 1)}
			all = append(all, in)
			e := keysWith(env, "ADDR_FILE", in.addrFile, "DATA_DIR", t.TempDir())
			ready.Add(1)
			go func() {
				ready.Done()
				<-gate
				in.done <- run(ctx, []string{"server"}, fakeEnv(e), in.out, in.out)
			}()
		}
		ready.Wait()
		close(gate)
		var bases []string
		for i, in := range all {
			base := ""
			deadline := time.Now().Add(30 * time.Second)
			for base == "" && time.Now().Before(deadline) {
				select {
				case err := <-in.done:
					cancel()
					t.Fatalf("round %d: instance %d returned early: %v\n%s", round, i, err, in.out.String())
				default:
				}
				if b, err := os.ReadFile(in.addrFile); err == nil {
					base = "http://" + strings.TrimSpace(string(b))
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if base == "" {
				cancel()
				t.Fatalf("round %d: instance %d did not start:\n%s", round, i, in.out.String())
			}
			waitHealthy(t, base)
			bases = append(bases, base)
		}
		docs := keysStored(t, uri, name)
		if len(docs) != 1 || docs[0]["_id"] != int64(1) {
			t.Errorf("round %d: %d instances starting at once stored %v, want one key of generation 1", round, instances, docs)
		}
		for i, base := range bases {
			if kids := keysPublished(t, base); len(docs) == 1 && !slices.Equal(kids, []string{docs[0]["kid"].(string)}) {
				t.Errorf("round %d: instance %d publishes %v, want the one stored key %v", round, i, kids, docs[0]["kid"])
			}
		}
		cancel()
		for i, in := range all {
			select {
			case err := <-in.done:
				if err != nil {
					t.Errorf("round %d: instance %d: run after cancel: %v", round, i, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: instance %d did not stop", round, i)
			}
		}
	}
}

// TestVerifyRealServer: the public verify package against a running server
// of each asymmetric algorithm, found by its discovery document.
func TestVerifyRealServer(t *testing.T) {
	uri := keysDB(t)
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			port := keysFreePort(t)
			url := "http://127.0.0.1:" + strconv.Itoa(port)
			base := startKeys(t, keysEnv(t, uri, "verify"+alg, "PORT", strconv.Itoa(port),
				"PUBLIC_URL", url, "JWT_ISSUER", url, "JWT_ALGORITHM", alg))
			keysRegister(t, base, "checker")
			tok := keysLogin(t, base, "checker")
			if _, got := keysTokenHeader(t, tok); got != alg {
				t.Fatalf("token alg %q, want %q", got, alg)
			}
			who := gql(t, base, tok, `{ me { id roles emailVerified } sessions { id current } }`, nil)
			var want verify.Claims
			want.UserID = field(t, who, "me", "id")
			want.EmailVerified = who["data"].(map[string]any)["me"].(map[string]any)["emailVerified"].(bool)
			for _, r := range who["data"].(map[string]any)["me"].(map[string]any)["roles"].([]any) {
				want.Roles = append(want.Roles, r.(string))
			}
			for _, s := range who["data"].(map[string]any)["sessions"].([]any) {
				if s := s.(map[string]any); s["current"] == true {
					want.SessionID = s["id"].(string)
				}
			}

			v, err := verify.New(t.Context(), url, "authgql")
			if err != nil {
				t.Fatalf("verify.New(%s): %v", url, err)
			}
			got, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify of a token from login: %v", err)
			}
			if got.UserID != want.UserID || got.SessionID != want.SessionID || !slices.Equal(got.Roles, want.Roles) ||
				got.EmailVerified != want.EmailVerified || want.SessionID == "" || !slices.Equal(got.Roles, []string{"USER"}) {
				t.Errorf("claims: got %+v, want %+v (roles [USER])", got, want)
			}
			if got.TokenID == "" || got.IssuedAt.IsZero() || got.ExpiresAt.Sub(got.IssuedAt) != 15*time.Minute {
				t.Errorf("claims: got jti %q iat %v exp %v, want a jti and 15 minutes of life", got.TokenID, got.IssuedAt, got.ExpiresAt)
			}

			parts := strings.Split(tok, ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			sig := []byte(parts[2])
			mid := len(sig) / 2 // not the last character, whose low bits may be padding
			if sig[mid] == 'A' {
				sig[mid] = 'B'
			} else {
				sig[mid] = 'A'
			}
			tampered := map[string]string{
				"signature": parts[0] + "." + parts[1] + "." + string(sig),
				"payload": parts[0] + "." + base64.RawURLEncoding.EncodeToString(
					bytes.Replace(payload, []byte(want.UserID), []byte(strings.Repeat("0", len(want.UserID))), 1)) + "." + parts[2],
				"truncated": parts[0] + "." + parts[1] + ".",
			}
			for name, raw := range tampered {
				if raw == tok {
					t.Fatalf("%s: tampering changed nothing", name)
				}
				if c, err := v.Verify(t.Context(), raw); !errors.Is(err, verify.ErrTokenInvalid) {
					t.Errorf("tampered %s: got %+v, %v; want %v", name, c, err, verify.ErrTokenInvalid)
				}
				if _, code, _ := keysMe(t, base, raw); code != "UNAUTHENTICATED" {
					t.Errorf("tampered %s: the server answers me with code %q, want UNAUTHENTICATED", name, code)
				}
			}

			other, err := verify.New(t.Context(), url, "another-audience")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Verify(t.Context(), tok); !errors.Is(err, verify.ErrTokenInvalid) {
				t.Errorf("a verifier for another audience: %v, want %v", err, verify.ErrTokenInvalid)
			}
			if _, err := verify.New(t.Context(), url+"/", "authgql"); err == nil {
				t.Errorf("verify.New with an issuer that differs from the discovery document's (trailing /) succeeded")
			}
		})
	}

	// HS256 publishes no key: the verify package says so at New.
	t.Run("HS256", func(t *testing.T) {
		port := keysFreePort(t)
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		startKeys(t, keysEnv(t, uri, "verifyHS256", "PORT", strconv.Itoa(port),
			"PUBLIC_URL", url, "JWT_ISSUER", url, "JWT_ALGORITHM", "HS256"))
		if _, err := verify.New(t.Context(), url, "authgql"); err == nil || !strings.Contains(err.Error(), "HS256") {
			t.Errorf("verify.New against an HS256 server: %v, want an error naming HS256", err)
		}
	})
}

// TestKeysCommandErrors: bad usage and an unknown kid are errors that change
// nothing.
func TestKeysCommandErrors(t *testing.T) {
	uri := keysDB(t)
	env := keysEnv(t, uri, "errors")
	out, err := keysCmd(t, env, "rotate")
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	before := keysStored(t, uri, "errors")
	if len(before) != 1 {
		t.Fatalf("%d keys after keys rotate on a fresh database, want 1", len(before))
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"rotate", "--later"}, {"revoke"}} {
		if out, err := keysCmd(t, env, args...); !errors.Is(err, errKeysUsage) || !strings.Contains(err.Error(), "usage") {
			t.Errorf("keys %q: %v, want the usage\n%s", args, err, out)
		}
	}
	if out, err := keysCmd(t, env, "revoke", "no-such-kid"); !errors.Is(err, auth.ErrNotFound) || !strings.Contains(err.Error(), "no-such-kid") {
		t.Errorf("keys revoke of an unknown kid: %v, want not found naming it\n%s", err, out)
	}
	if after := keysStored(t, uri, "errors"); len(after) != 1 || after[0]["kid"] != before[0]["kid"] || after[0]["revoked_at"] != nil {
		t.Errorf("the failed commands changed the keys: before %v, after %v", before, after)
	}

	hs := keysEnv(t, uri, "errorsHS256", "JWT_ALGORITHM", "HS256")
	if out, err := keysCmd(t, hs, "rotate"); err == nil || !strings.Contains(err.Error(), "HS256") {
		t.Errorf("keys rotate with JWT_ALGORITHM=HS256: %v, want an error naming HS256\n%s", err, out)
	}
	if n := len(keysStored(t, uri, "errorsHS256")); n != 0 {
		t.Errorf("HS256: %d keys stored, want none", n)
	}
}

// TestKeysAlgorithmChangeRollingDeploy: JWT_ALGORITHM changes by a rolling
// restart, so for a while instances with the old and the new setting share
// the database. The change must make a bounded number of keys (a successor
// of the new algorithm), not one more key at every sync of every instance.
func TestKeysAlgorithmChangeRollingDeploy(t *testing.T) {
	uri := keysDB(t)
	env := keysEnv(t, uri, "rolling", "REVOCATION_SYNC_INTERVAL", "200ms")
	startKeys(t, env)                                     // still ES256 (the default)
	startKeys(t, keysWith(env, "JWT_ALGORITHM", "EdDSA")) // restarted with the new setting
	time.Sleep(2 * time.Second)                           // ten sync intervals
	first := len(keysStored(t, uri, "rolling"))
	time.Sleep(time.Second)
	if then := len(keysStored(t, uri, "rolling")); first > 3 || then != first {
		t.Errorf("an ES256 and an EdDSA instance on one database: %d keys after 2 s, %d after 3 s; "+
			"want at most 3, and no more being made", first, then)
	}
}
