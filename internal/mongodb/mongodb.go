// Package mongodb keeps the auth domain's data in MongoDB (or any server that
// speaks its wire protocol, such as the embedded FerretDB).
package mongodb

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Backend says which server a store talks to, where their abilities differ.
type Backend int

const (
	// MongoDB (a replica set or Atlas) isolates single-document updates and
	// uses its indexes for any filter.
	MongoDB Backend = iota
	// Embedded is the embedded FerretDB: it answers from an index only a
	// filter that is exactly {_id: v} and scans for anything else, and it does
	// not isolate updates anyway. Stores then read by _id, check the rest of
	// the condition in Go, and write by _id alone: the same guarantees it
	// gave with a conditional update, without a scan per write.
	Embedded
)

// Connect opens a client for uri with majority, journaled writes and checks
// that the server answers.
func Connect(ctx context.Context, uri string, monitors ...Monitors) (*mongo.Client, error) {
	journal := true
	// Timeouts are defaults that the URI may override (serverSelectionTimeoutMS,
	// timeoutMS); the write concern is not negotiable.
	opts := options.Client().
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(10 * time.Second).
		ApplyURI(uri).
		SetWriteConcern(&writeconcern.WriteConcern{W: writeconcern.WCMajority, Journal: &journal})
	if cmd, pool := combine(monitors); cmd != nil || pool != nil {
		if cmd != nil {
			opts.SetMonitor(cmd)
		}
		if pool != nil {
			opts.SetPoolMonitor(pool)
		}
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("mongodb: ping: %w", err)
	}
	return client, nil
}

// Monitors observe the driver (metrics, traces).
type Monitors struct {
	Command *event.CommandMonitor
	Pool    *event.PoolMonitor
}

// combine makes one command monitor and one pool monitor of several (the
// driver takes one of each).
func combine(ms []Monitors) (*event.CommandMonitor, *event.PoolMonitor) {
	var cmds []*event.CommandMonitor
	var pools []*event.PoolMonitor
	for _, m := range ms {
		if m.Command != nil {
			cmds = append(cmds, m.Command)
		}
		if m.Pool != nil {
			pools = append(pools, m.Pool)
		}
	}
	var cmd *event.CommandMonitor
	switch len(cmds) {
	case 0:
	case 1:
		cmd = cmds[0]
	default:
		cmd = &event.CommandMonitor{
			Started: func(ctx context.Context, e *event.CommandStartedEvent) {
				for _, c := range cmds {
					if c.Started != nil {
						c.Started(ctx, e)
					}
				}
			},
			Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
				for _, c := range cmds {
					if c.Succeeded != nil {
						c.Succeeded(ctx, e)
					}
				}
			},
			Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
				for _, c := range cmds {
					if c.Failed != nil {
						c.Failed(ctx, e)
					}
				}
			},
		}
	}
	var pool *event.PoolMonitor
	switch len(pools) {
	case 0:
	case 1:
		pool = pools[0]
	default:
		pool = &event.PoolMonitor{Event: func(e *event.PoolEvent) {
			for _, p := range pools {
				if p.Event != nil {
					p.Event(e)
				}
			}
		}}
	}
	return cmd, pool
}

// Pinger reports whether the database answers, for readiness checks.
type Pinger struct{ client *mongo.Client }

// NewPinger returns a Pinger for client.
func NewPinger(client *mongo.Client) *Pinger { return &Pinger{client: client} }

// Ping asks the primary to answer within ctx.
func (p *Pinger) Ping(ctx context.Context) error {
	return p.client.Ping(ctx, readpref.Primary())
}

// findAll runs a query and converts every document it returns.
func findAll[D, T any](ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, conv func(*D) T) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: find in %s: %w", coll.Name(), err)
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: read from %s: %w", coll.Name(), err)
	}
	out := make([]T, len(docs))
	for i := range docs {
		out[i] = conv(&docs[i])
	}
	return out, nil
}
