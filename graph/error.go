package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/requestid"
)

// errorPresenter is the one place where errors become GraphQL errors. Domain
// errors carry a code and a safe message; gqlgen's own errors (parse,
// validation, limits) keep theirs; anything else is an internal error whose
// details go only to the log.
func errorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		ae, isAuth := errors.AsType[*auth.Error](err)
		if isAuth && ae.Code == auth.CodeInternal {
			return internalError(ctx) // already logged where it was made
		}
		if isAuth {
			ext := map[string]any{"code": string(ae.Code)}
			if ae.Field != "" {
				ext["field"] = ae.Field
			}
			if ae.Reason != "" {
				ext["reason"] = ae.Reason
			}
			if ae.RetryAfter > 0 {
				ext["retryAfter"] = ae.RetryAfter
			}
			if ae.RequiredRole != "" {
				ext["requiredRole"] = ae.RequiredRole
			}
			return &gqlerror.Error{Message: ae.Message, Path: graphql.GetPath(ctx), Extensions: ext}
		}
		if ge, ok := err.(*gqlerror.Error); ok && ge.Unwrap() == nil {
			// Made by gqlgen itself (parse, validation, complexity, variable
			// coercion): safe, and clients know their codes. One that wraps
			// another error carries that error's text, which is not ours to show.
			return ge
		}
		logger.ErrorContext(ctx, "graphql: internal error",
			"request_id", requestid.From(ctx), "path", graphql.GetPath(ctx).String(), "err", err)
		return internalError(ctx)
	}
}

func internalError(ctx context.Context) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    "internal error",
		Path:       graphql.GetPath(ctx),
		Extensions: map[string]any{"code": string(auth.CodeInternal)},
	}
}

// recoverFunc turns a panic in a resolver into an internal error, logging the
// stack with the request id.
func recoverFunc(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "graphql: panic",
			"request_id", requestid.From(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return &auth.Error{Code: auth.CodeInternal, Message: "internal error"}
	}
}
