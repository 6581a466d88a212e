package tracing

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// MongoMonitor makes a client span for each MongoDB command, a child of the
// span of the request that ran it, with the database semantic conventions'
// names: the command, the collection, the database — never the command's
// document (it holds usernames, emails, hashes).
//
// The official go.opentelemetry.io/contrib otelmongo instruments the v1
// driver; its v2 package has no release the module proxy serves, so the
// server keeps this small monitor instead.
func MongoMonitor() *event.CommandMonitor {
	var spans sync.Map // request id → trace.Span
	end := func(id int64, err error) {
		v, ok := spans.LoadAndDelete(id)
		if !ok {
			return
		}
		span := v.(trace.Span)
		if err != nil {
			span.SetStatus(codes.Error, "command failed")
		}
		span.End()
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			attrs := []attribute.KeyValue{
				attribute.String("db.system.name", "mongodb"),
				attribute.String("db.operation.name", e.CommandName),
				attribute.String("db.namespace", e.DatabaseName),
			}
			if coll, ok := collectionOf(e); ok {
				attrs = append(attrs, attribute.String("db.collection.name", coll))
			}
			_, span := Tracer().Start(ctx, "mongodb."+e.CommandName, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attrs...))
			spans.Store(e.RequestID, span)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID, nil) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { end(e.RequestID, e.Failure) },
	}
}

// collectionOf is the collection a CRUD command names as its first element
// ({find: "users", ...}).
func collectionOf(e *event.CommandStartedEvent) (string, bool) {
	switch e.CommandName {
	case "find", "insert", "update", "delete", "findAndModify", "aggregate", "count", "distinct", "createIndexes",
		"listIndexes":
	default:
		return "", false
	}
	el, err := e.Command.IndexErr(0)
	if err != nil {
		return "", false
	}
	return el.Value().StringValueOK()
}
