package metrics

import (
	"sync/atomic"
	"time"
)

// lastSync remembers when the revocation sync last succeeded.
type lastSync struct{ at atomic.Int64 }

func (l *lastSync) mark() { l.at.Store(time.Now().UnixNano()) }

// lag is the seconds since the last successful sync (0 before the first:
// the server syncs before it serves).
func (l *lastSync) lag() float64 {
	at := l.at.Load()
	if at == 0 {
		return 0
	}
	return time.Since(time.Unix(0, at)).Seconds()
}
