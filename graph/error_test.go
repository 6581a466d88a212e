package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/requestid"
)

func TestErrorPresenter(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	present := errorPresenter(logger)
	ctx := requestid.With(context.Background(), "req-42")

	driverErr := errors.New("E11000 duplicate key error collection: authgql.users index: username_key_unique")
	tests := []struct {
		name            string
		err             error
		wantCode        string
		wantMsg         string
		wantExt         map[string]string
		wantLogged      bool
		wantNotInClient string
	}{
		{"domain error", &auth.Error{Code: auth.CodeBadUserInput, Field: "email", Reason: "taken", Message: "email is already registered"},
			"BAD_USER_INPUT", "email is already registered", map[string]string{"field": "email", "reason": "taken"}, false, ""},
		{"wrapped domain error", fmt.Errorf("resolver: %w", auth.ErrTokenExpired),
			"UNAUTHENTICATED", auth.ErrTokenExpired.Message, map[string]string{"reason": "token_expired"}, false, ""},
		{"driver error", fmt.Errorf("auth: create user: %w", driverErr),
			"INTERNAL_SERVER_ERROR", "internal error", nil, true, "E11000"},
		{"gqlerror wrapping a driver error", gqlerror.WrapPath(nil, driverErr),
			"INTERNAL_SERVER_ERROR", "internal error", nil, true, "username_key"},
		{"gqlgen's own error", &gqlerror.Error{Message: "Cannot query field \"x\"", Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}},
			"GRAPHQL_VALIDATION_FAILED", "Cannot query field \"x\"", nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			got := present(ctx, tc.err)
			if code, _ := got.Extensions["code"].(string); code != tc.wantCode {
				t.Errorf("code = %q, want %q", code, tc.wantCode)
			}
			if got.Message != tc.wantMsg {
				t.Errorf("message = %q, want %q", got.Message, tc.wantMsg)
			}
			for k, v := range tc.wantExt {
				if got.Extensions[k] != v {
					t.Errorf("extensions.%s = %v, want %q", k, got.Extensions[k], v)
				}
			}
			if logged := strings.Contains(logs.String(), "req-42"); logged != tc.wantLogged {
				t.Errorf("logged with request id = %v, want %v: %s", logged, tc.wantLogged, logs.String())
			}
			if tc.wantNotInClient != "" && strings.Contains(fmt.Sprint(got.Message, got.Extensions), tc.wantNotInClient) {
				t.Errorf("client sees %q", tc.wantNotInClient)
			}
		})
	}
}

func TestRecoverFunc(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := requestid.With(context.Background(), "req-7")
	err := recoverFunc(logger)(ctx, "boom: secret detail")
	got := errorPresenter(logger)(ctx, err)
	if got.Message != "internal error" || got.Extensions["code"] != "INTERNAL_SERVER_ERROR" {
		t.Errorf("presented = %+v, want internal error", got)
	}
	if !strings.Contains(logs.String(), "req-7") || !strings.Contains(logs.String(), "boom: secret detail") ||
		!strings.Contains(logs.String(), "stack=") {
		t.Errorf("panic not logged with request id and stack: %s", logs.String())
	}
	if n := strings.Count(logs.String(), "req-7"); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
}
