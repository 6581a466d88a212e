package metrics

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/event"
)

// commands are the command names reported as themselves; others are "other".
var commands = map[string]bool{
	"find": true, "insert": true, "update": true, "delete": true, "findAndModify": true, "aggregate": true,
	"getMore": true, "count": true, "distinct": true, "createIndexes": true, "listIndexes": true, "ping": true,
	"hello": true, "isMaster": true, "endSessions": true, "killCursors": true, "listCollections": true,
	"commitTransaction": true, "abortTransaction": true,
}

// MongoMonitors returns the driver monitors that time every command and
// track the pool's connections in use (nil, nil when m is nil).
func (m *Metrics) MongoMonitors() (*event.CommandMonitor, *event.PoolMonitor) {
	if m == nil {
		return nil, nil
	}
	name := func(n string) string {
		if commands[n] {
			return n
		}
		return "other"
	}
	cmd := &event.CommandMonitor{
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			m.MongoCommand(name(e.CommandName), true, e.Duration)
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			m.MongoCommand(name(e.CommandName), false, e.Duration)
		},
	}
	pool := &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		switch e.Type {
		case event.ConnectionCheckedOut:
			m.MongoCheckedOut()
		case event.ConnectionCheckedIn:
			m.MongoCheckedIn()
		}
	}}
	return cmd, pool
}
