package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
)

// algorithms are the JWT_ALGORITHMs me is measured with after the main run
// (which signs with HS256, as the floor verifies). HS256 comes first, on a
// fresh server like the others, measured the same way: the rate each
// asymmetric algorithm must keep 0.9 of (issue 13). The main run's me is not
// that reference: it ran minutes earlier, after other phases, on a server
// with another history.
var algorithms = []string{"HS256", "ES256", "EdDSA", "RS256"}

// referenceAlgorithm is the one the others are compared with.
const referenceAlgorithm = "HS256"

// AlgorithmResult is the me phase against a fresh server signing with
// Algorithm.
type AlgorithmResult struct {
	Algorithm string      `json:"algorithm"`
	Me        PhaseResult `json:"me"`
}

func algorithmPhase(alg string) string { return "me " + alg }

// runAlgorithms measures me once per algorithm, each time against a fresh
// server on the same database: for an asymmetric one the operator's switch
// first (`keys rotate --now` with the new JWT_ALGORITHM, so that a key of it
// signs at once rather than after JWT_KEY_PUBLISH_AHEAD), then the bench
// accounts sign in again for tokens of that algorithm, a warm-up, and the me
// phase as the main run's (the same concurrency; cfg.AlgDuration).
func runAlgorithms(ctx context.Context, cfg Config, bin string, env map[string]string, runID string,
	accounts []account, logf func(string, ...any)) ([]AlgorithmResult, error) {
	var out []AlgorithmResult
	for _, alg := range algorithms {
		algEnv := maps.Clone(env)
		algEnv["JWT_ALGORITHM"] = alg
		if alg != "HS256" {
			logf("%s: keys rotate --now", alg)
			if err := rotateKeys(ctx, bin, algEnv); err != nil {
				return nil, fmt.Errorf("%s: %w", alg, err)
			}
		}
		logf("%s: a fresh server", alg)
		err := withServer(ctx, bin, algEnv, logf, func(ctx context.Context, srv *serverProc) error {
			r := newRunner(srv, "", algEnv, cfg.PprofDir, runID, logf)
			if cfg.PerfDir != "" {
				r.perf = &perfRecorder{dir: cfg.PerfDir}
			}
			defer r.close()
			logf("%s: signing in %d accounts", alg, len(accounts))
			if err := r.signIn(ctx, accounts, alg); err != nil {
				return err
			}
			runPhase(ctx, r.mePhase(r.c, "warmup", meConcurrency, cfg.Warmup))
			name := algorithmPhase(alg)
			logf("phase %s (%s)", name, cfg.AlgDuration)
			res := r.step(ctx, srv, r.mePhase(r.c, name, meConcurrency, cfg.AlgDuration))
			out = append(out, AlgorithmResult{Algorithm: alg, Me: res[0]})
			return ctx.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", alg, err)
		}
	}
	return out, nil
}

// rotateKeys runs `server keys rotate --now` with env: a key of env's
// JWT_ALGORITHM that signs at once. The server must be stopped: the embedded
// database belongs to one process at a time.
func rotateKeys(ctx context.Context, bin string, env map[string]string) error {
	cmd := exec.CommandContext(ctx, bin, "keys", "rotate", "--now")
	cmd.Env = serverEnv(os.Environ(), env)
	cmd.SysProcAttr = serverProcAttr()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("keys rotate --now: %w\n%s", err, b)
	}
	return nil
}

// signIn logs accounts in and makes them the runner's, with the sessions
// just begun: access tokens that must be signed with alg.
func (r *runner) signIn(ctx context.Context, accounts []account, alg string) error {
	out := make([]account, len(accounts))
	err := onePerCore(len(accounts), func(i int) error {
		a := accounts[i]
		s, err := untilAdmitted(ctx, func() (session, error) { return r.c.login(ctx, a.name, a.password) })
		if err != nil {
			return err
		}
		if got, err := tokenAlgorithm(s.AccessToken); err != nil || got != alg {
			return fmt.Errorf("%s's access token is signed with %q (%v), want %s", a.name, got, err, alg)
		}
		a.session, out[i] = s, a
		return nil
	})
	if err != nil {
		return fmt.Errorf("sign in the bench accounts: %w", err)
	}
	r.accounts = out
	return nil
}

// tokenAlgorithm is the alg of a JWT's header.
func tokenAlgorithm(raw string) (string, error) {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	return h.Alg, nil
}
