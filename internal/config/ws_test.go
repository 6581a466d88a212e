package config_test

import "testing"

func TestLoadWebSocketLimits(t *testing.T) {
	c := load(t, map[string]string{})
	if c.WSMaxPerIP != 50 || c.WSMaxPerUser != 10 || c.WSMaxSubscriptions != 20 {
		t.Errorf("defaults: got %d, %d, %d, want 50, 10, 20", c.WSMaxPerIP, c.WSMaxPerUser, c.WSMaxSubscriptions)
	}
	c = load(t, map[string]string{"WS_MAX_CONNECTIONS_PER_IP": "5000", "WS_MAX_CONNECTIONS_PER_USER": "1",
		"WS_MAX_SUBSCRIPTIONS": "3"})
	if c.WSMaxPerIP != 5000 || c.WSMaxPerUser != 1 || c.WSMaxSubscriptions != 3 {
		t.Errorf("set: got %d, %d, %d", c.WSMaxPerIP, c.WSMaxPerUser, c.WSMaxSubscriptions)
	}
	for _, key := range []string{"WS_MAX_CONNECTIONS_PER_IP", "WS_MAX_CONNECTIONS_PER_USER", "WS_MAX_SUBSCRIPTIONS"} {
		for _, bad := range []string{"0", "-1", "many"} {
			loadErr(t, map[string]string{key: bad}, key)
		}
	}
}
