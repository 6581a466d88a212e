package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// requestTimeout bounds one request. It is generous because a login queued
// behind a flood of bcrypt work can legitimately take seconds; the server's
// own write timeout is 30 s.
const requestTimeout = 30 * time.Second

// maxResponseBytes bounds what is read of one response: every expected
// response is well under a kilobyte.
const maxResponseBytes = 1 << 20

// client speaks GraphQL over HTTP to the server under test.
type client struct {
	hc  *http.Client
	url string
}

// newClient returns a client keeping up to maxConns keep-alive connections,
// so that every worker of the busiest phase reuses its own connection.
func newClient(baseURL string, maxConns int) *client {
	tr := &http.Transport{
		Proxy:               nil, // the server is on loopback: never via a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{hc: &http.Client{Transport: tr}, url: baseURL + "/query"}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// opError is a failed request; kind groups failures in the report
// ("http 503", "graphql RATE_LIMITED (busy)", "timeout", ...).
type opError struct {
	kind       string
	code       string        // the GraphQL extensions.code, if any
	retryAfter time.Duration // extensions.retryAfter of RATE_LIMITED
	err        error
}

func (e *opError) Error() string {
	if e.err == nil {
		return e.kind
	}
	return e.kind + ": " + e.err.Error()
}

func (e *opError) Unwrap() error { return e.err }

type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code       string `json:"code"`
		Reason     string `json:"reason"`
		RetryAfter int    `json:"retryAfter"`
	} `json:"extensions"`
}

// post sends one operation and decodes its data into out. Anything but
// HTTP 200 with non-null data and no errors entry is an *opError.
func (c *client) post(ctx context.Context, body []byte, bearer string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return &opError{kind: "request", err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return transportError(err)
	}
	if resp.StatusCode != http.StatusOK {
		return &opError{kind: fmt.Sprintf("http %d", resp.StatusCode), err: errors.New(truncate(string(raw), 200))}
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return &opError{kind: "bad json", err: err}
	}
	if len(env.Errors) > 0 {
		e := env.Errors[0]
		kind := "graphql " + e.Extensions.Code
		if e.Extensions.Reason != "" {
			kind += " (" + e.Extensions.Reason + ")"
		}
		return &opError{kind: kind, code: e.Extensions.Code, retryAfter: time.Duration(e.Extensions.RetryAfter) * time.Second,
			err: errors.New(e.Message)}
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return &opError{kind: "no data"}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return &opError{kind: "bad json", err: err}
	}
	return nil
}

func transportError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &opError{kind: "timeout", err: err}
	}
	return &opError{kind: "transport", err: err}
}

// operation encodes a GraphQL request body.
func operation(query string, vars map[string]any) []byte {
	b, err := json.Marshal(struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables,omitempty"`
	}{query, vars})
	if err != nil {
		panic(err) // only strings go in: cannot fail
	}
	return b
}

const (
	meQuery = `{ me { id username } }`
	// authPayload is the selection of every mutation that signs in.
	authPayload      = `{ accessToken refreshToken user { id username } }`
	loginMutation    = `mutation($i: LoginInput!) { login(input: $i) ` + authPayload + ` }`
	registerMutation = `mutation($i: RegisterInput!) { register(input: $i) ` + authPayload + ` }`
	refreshMutation  = `mutation($t: String!) { refreshToken(token: $t) ` + authPayload + ` }`
	logoutMutation   = `mutation { logout }`
)

// user is who a token belongs to, as `me` and the payloads name them.
type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

// session is the part of an AuthPayload the bench uses.
type session struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	User         user   `json:"user"`
}

// check verifies a payload: both tokens, and the account signed in.
func (s session) check(username string) error {
	if s.AccessToken == "" || s.RefreshToken == "" {
		return &opError{kind: "wrong answer", err: errors.New("payload without its tokens")}
	}
	if s.User.ID == "" || s.User.Username != username {
		return &opError{kind: "wrong answer", err: fmt.Errorf("payload for %q, want %q", s.User.Username, username)}
	}
	return nil
}

// me asks who the token's owner is and checks the answer is want. body is
// the encoded meQuery, made once by the caller.
func (c *client) me(ctx context.Context, body []byte, accessToken string, want user) error {
	var out struct {
		Me user `json:"me"`
	}
	if err := c.post(ctx, body, accessToken, &out); err != nil {
		return err
	}
	if out.Me != want {
		return &opError{kind: "wrong answer", err: fmt.Errorf("me is %+v, want %+v", out.Me, want)}
	}
	return nil
}

func (c *client) login(ctx context.Context, username, password string) (session, error) {
	body := operation(loginMutation, map[string]any{"i": map[string]string{"username": username, "password": password}})
	var out struct {
		Login session `json:"login"`
	}
	if err := c.post(ctx, body, "", &out); err != nil {
		return session{}, err
	}
	return out.Login, out.Login.check(username)
}

func (c *client) register(ctx context.Context, username, password string) (session, error) {
	body := operation(registerMutation, map[string]any{"i": map[string]string{
		"username": username, "email": username + "@bench.example.com", "password": password,
	}})
	var out struct {
		Register session `json:"register"`
	}
	if err := c.post(ctx, body, "", &out); err != nil {
		return session{}, err
	}
	return out.Register, out.Register.check(username)
}

// refresh rotates the session of refreshToken, which belongs to username.
func (c *client) refresh(ctx context.Context, refreshToken, username string) (session, error) {
	body := operation(refreshMutation, map[string]any{"t": refreshToken})
	var out struct {
		RefreshToken session `json:"refreshToken"`
	}
	if err := c.post(ctx, body, "", &out); err != nil {
		return session{}, err
	}
	if out.RefreshToken.RefreshToken == refreshToken {
		return session{}, &opError{kind: "wrong answer", err: errors.New("refreshToken returned the presented token")}
	}
	return out.RefreshToken, out.RefreshToken.check(username)
}

// logout ends the session of accessToken.
func (c *client) logout(ctx context.Context, accessToken string) error {
	var out struct {
		Logout bool `json:"logout"`
	}
	if err := c.post(ctx, operation(logoutMutation, nil), accessToken, &out); err != nil {
		return err
	}
	if !out.Logout {
		return &opError{kind: "wrong answer", err: errors.New("logout returned false")}
	}
	return nil
}

// healthy reports whether GET /healthz answers 200.
func (c *client) healthy(ctx context.Context, baseURL string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}
