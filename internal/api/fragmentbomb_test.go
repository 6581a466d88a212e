package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fragmentBomb is a document of levels fragments, each spreading the next
// one twice: about 37 bytes a level that expand to 2^(levels-1) fields, and
// under the parser's token limit up to 190 levels.
func fragmentBomb(levels int) string {
	var b strings.Builder
	b.WriteString("query Q{...F0}")
	for i := range levels - 1 {
		fmt.Fprintf(&b, " fragment F%d on Query{...F%d ...F%d}", i, i+1, i+1)
	}
	fmt.Fprintf(&b, " fragment F%d on Query{__typename}", levels-1)
	return b.String()
}

// Each further level once doubled the time spent before the document was
// refused (3.4 s at 25 levels): 1.6 KB held a core for hours, before any
// authentication or rate limit.
func TestFragmentBombsRefusedQuickly(t *testing.T) {
	e := newEnv(t)
	for _, levels := range []int{20, 25, 40, 190} {
		doc := fragmentBomb(levels)
		start := time.Now()
		res := e.post(t, "", doc, nil)
		elapsed := time.Since(start)
		t.Logf("%d levels, %d bytes: %v", levels, len(doc), elapsed)
		if res.Status != http.StatusOK { // as for every other document limit
			t.Errorf("%d levels: status %d", levels, res.Status)
		}
		if got := res.code(t); got != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Errorf("%d levels: code = %q, want COMPLEXITY_LIMIT_EXCEEDED: %.300s", levels, got, res.Raw)
		}
		// A safety check, not a benchmark: it takes well under a millisecond.
		if elapsed > 100*time.Millisecond {
			// A bigger bomb would hold the test (and its server's Close) for hours.
			t.Fatalf("%d levels took %v", levels, elapsed)
		}
	}
}

// While clients send fragment bombs, the server keeps answering everyone
// else, and refuses every bomb quickly.
func TestFragmentBombsKeepServing(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "olga", "olga@example.com")
	client := &http.Client{Timeout: 10 * time.Second}
	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bombs int
	var slowest time.Duration
	for range 4 { // two per core
		wg.Go(func() {
			for time.Now().Before(stop) {
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query",
					strings.NewReader(fmt.Sprintf(`{"query": %q}`, fragmentBomb(25))))
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("bomb: %v", err)
					return
				}
				res.Body.Close()
				mu.Lock()
				bombs++
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			}
		})
	}
	var served int
	var slowestMe time.Duration
	for time.Now().Before(stop) {
		start := time.Now()
		u := me(t, e.post(t, p.AccessToken, meQuery, nil))
		slowestMe = max(slowestMe, time.Since(start))
		if u.Username != "olga" {
			t.Fatalf("me = %+v", u)
		}
		served++
	}
	wg.Wait()
	t.Logf("%d bombs refused (slowest %v) while %d me queries were answered (slowest %v)", bombs, slowest, served, slowestMe)
	if slowest > 500*time.Millisecond {
		t.Errorf("a bomb took %v", slowest)
	}
	if slowestMe > 500*time.Millisecond || served < 10 {
		t.Errorf("%d me queries answered, slowest in %v", served, slowestMe)
	}
}
