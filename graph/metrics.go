package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/metrics"
)

// Metrics is the gqlgen extension that counts each root field of each
// operation by outcome (ok, or its error's code), and logins,
// registrations, refreshes and rate-limit refusals by outcome. Field names
// come from this schema; anything else (__typename, __schema) is "other".
func Metrics(m *metrics.Metrics) graphql.HandlerExtension { return &opMetrics{m: m} }

type opMetrics struct {
	m     *metrics.Metrics
	known map[string]bool
}

func (o *opMetrics) ExtensionName() string { return "metrics" }

func (o *opMetrics) Validate(es graphql.ExecutableSchema) error {
	o.known = map[string]bool{}
	s := es.Schema()
	for _, t := range []*ast.Definition{s.Query, s.Mutation, s.Subscription} {
		if t == nil {
			continue
		}
		for _, f := range t.Fields {
			if len(f.Name) < 2 || f.Name[:2] != "__" {
				o.known[f.Name] = true
			}
		}
	}
	return nil
}

// InterceptOperation records the operation at its first response (for a
// subscription: its first event, or its refusal).
func (o *opMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	start := time.Now()
	rc := graphql.GetOperationContext(ctx)
	fields := rootFields(rc)
	handler := next(ctx)
	first := true
	return func(ctx context.Context) *graphql.Response {
		resp := handler(ctx)
		if first && resp != nil {
			first = false
			o.record(fields, resp.Errors, time.Since(start))
		}
		return resp
	}
}

type rootField struct{ name, key string }

func (o *opMetrics) record(fields []rootField, errs gqlerror.List, took time.Duration) {
	for _, f := range fields {
		name := f.name
		if !o.known[name] {
			name = "other"
		}
		code, reason := "ok", ""
		for _, e := range errs {
			if len(e.Path) == 0 || e.Path[0] == ast.PathName(f.key) {
				code, reason = extString(e, "code"), extString(e, "reason")
				if code == "" {
					code = string(auth.CodeInternal)
				}
				break
			}
		}
		o.m.Operation(name, code, took)
		o.authOutcome(name, code, reason)
	}
}

// authOutcome counts login, register and refreshToken by outcome, and the
// rate-limit refusals by kind.
func (o *opMetrics) authOutcome(field, code, reason string) {
	outcome := "success"
	switch code {
	case "ok":
	case string(auth.CodeInvalidCredentials):
		outcome = "invalid_credentials"
	case string(auth.CodeRateLimited):
		switch reason {
		case auth.ReasonAccount:
			outcome = "throttled"
			o.m.RateLimited("account")
		case auth.ReasonBusy:
			outcome = "busy"
		default:
			outcome = "rate_limited"
			if kind := limitKind(field); kind != "" {
				o.m.RateLimited(kind)
			}
		}
	case string(auth.CodeForbidden):
		outcome = reason
		if reason == auth.ReasonUserDisabled {
			outcome = "disabled"
		}
	case string(auth.CodeBadUserInput):
		outcome = "invalid_input"
	case string(auth.CodeInvalidRefresh):
		outcome = reason
	default:
		outcome = "error"
	}
	if outcome == "" {
		outcome = "error"
	}
	switch field {
	case "login":
		o.m.Login(outcome)
	case "register":
		o.m.Registration(outcome)
	case "refreshToken":
		o.m.Refresh(outcome)
	}
}

// limitKind is the per-IP limit a field's RATE_LIMITED (reason ip) comes from.
func limitKind(field string) string {
	switch field {
	case "login", "changePassword", "changeEmail", "deleteAccount":
		return "login"
	case "register":
		return "register"
	case "refreshToken":
		return "refresh"
	case "requestPasswordReset", "requestEmailVerification":
		return "mail"
	}
	return ""
}

func extString(e *gqlerror.Error, key string) string {
	s, _ := e.Extensions[key].(string)
	return s
}

// rootFields lists the operation's root fields (through fragments).
func rootFields(rc *graphql.OperationContext) []rootField {
	if rc == nil || rc.Operation == nil {
		return nil
	}
	var out []rootField
	var walk func(ast.SelectionSet, int)
	walk = func(set ast.SelectionSet, depth int) {
		if depth > 8 { // fragments nest; the document limits bound them anyway
			return
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				out = append(out, rootField{name: s.Name, key: key})
			case *ast.InlineFragment:
				walk(s.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if f := rc.Doc.Fragments.ForName(s.Name); f != nil {
					walk(f.SelectionSet, depth+1)
				}
			}
		}
	}
	walk(rc.Operation.SelectionSet, 0)
	return out
}

// refusedDocument counts a document refused before it ran (parse,
// validation, document limits) as field "other" with its code: called by
// the error presenter for gqlgen's own errors.
func refusedDocument(m *metrics.Metrics, e *gqlerror.Error) {
	if m == nil {
		return
	}
	code := extString(e, "code")
	if code == "" {
		return
	}
	m.Operation("other", code, 0)
}

// Observe makes srv count its operations in m (see Metrics), refused
// documents included.
func Observe(srv *handler.Server, logger *slog.Logger, m *metrics.Metrics) {
	srv.Use(Metrics(m))
	present := errorPresenter(logger)
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		ge := present(ctx, err)
		if raw, ok := err.(*gqlerror.Error); ok && raw.Unwrap() == nil && documentRefusals[extString(ge, "code")] {
			refusedDocument(m, ge)
		}
		return ge
	})
}

// documentRefusals are the codes of documents refused before they run.
var documentRefusals = map[string]bool{
	"GRAPHQL_PARSE_FAILED": true, "GRAPHQL_VALIDATION_FAILED": true, "COMPLEXITY_LIMIT_EXCEEDED": true,
	"DEPTH_LIMIT_EXCEEDED": true, "ALIAS_LIMIT_EXCEEDED": true, "PASSWORD_FIELD_LIMIT_EXCEEDED": true,
}
