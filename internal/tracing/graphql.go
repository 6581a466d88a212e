package tracing

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// GraphQL is the gqlgen extension that makes a span for each operation and
// one for each resolver of this schema (fields computed by a resolver; plain
// struct fields are not worth a span). Attributes name the operation type,
// the root fields and the field being resolved; never an argument, a
// variable or a result.
func GraphQL() graphql.HandlerExtension { return gqlTracing{} }

type gqlTracing struct{}

func (gqlTracing) ExtensionName() string                   { return "tracing" }
func (gqlTracing) Validate(graphql.ExecutableSchema) error { return nil }

func (gqlTracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rc := graphql.GetOperationContext(ctx)
	kind := "query"
	var fields []string
	if rc != nil && rc.Operation != nil {
		kind = string(rc.Operation.Operation)
		for _, f := range graphql.CollectFields(rc, rc.Operation.SelectionSet, nil) {
			fields = append(fields, f.Name)
		}
	}
	ctx, span := Tracer().Start(ctx, "graphql."+kind, trace.WithAttributes(
		attribute.String("graphql.operation.type", kind),
		attribute.StringSlice("graphql.root_fields", fields),
	))
	handler := next(ctx)
	done := false
	return func(ctx context.Context) *graphql.Response {
		resp := handler(ctx)
		if !done {
			done = true
			if resp != nil && len(resp.Errors) > 0 {
				code, _ := resp.Errors[0].Extensions["code"].(string)
				span.SetAttributes(codeAttr(code))
				span.SetStatus(codes.Error, code)
			}
			span.End() // a subscription's span ends at its first event
		}
		return resp
	}
}

func (gqlTracing) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver {
		return next(ctx)
	}
	ctx, span := Tracer().Start(ctx, fmt.Sprintf("graphql.resolve %s.%s", fc.Object, fc.Field.Name),
		trace.WithAttributes(attribute.String("graphql.field.parent", fc.Object),
			attribute.String("graphql.field.name", fc.Field.Name)))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "resolver error")
	}
	return res, err
}
