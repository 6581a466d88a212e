package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The query cache kept the text of the last 1,000 documents, whatever their
// size: `{ __typename }` followed by a megabyte of comment, a hundred times,
// held on to 180 MB. Documents that long are no longer cached at all.
//
// 40 requests (the old cache keeps 35 MB of them) against a bound of twice
// the cache's 8 MiB: more would only slow the race detector's run.
func TestQueryCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 36 MB")
	}
	e := newEnv(t)
	comment := strings.Repeat("x", 900<<10)
	before := heapInUse()
	for i := range 40 {
		body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf("{ __typename } # %d %s", i, comment)})
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res := e.send(t, req)
		if res.Status != http.StatusOK || len(res.Errors) > 0 {
			t.Fatalf("request %d: status %d: %.300s", i, res.Status, res.Raw)
		}
	}
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("live heap %d MB before, %d MB after 40 documents of 900 KB", before>>20, after>>20)
	if grown > 16<<20 {
		t.Errorf("live heap grew by %d MB", grown>>20)
	}
}
